package config

import (
	"reflect"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the strict decoder. It must never panic; whatever it accepts
// must survive Encode and Parse unchanged, and whatever it rejects must say which key and why.
func FuzzParse(f *testing.F) {
	f.Add(DefaultTOML())
	f.Add([]byte("version = 1\n[gitlab]\nhttp_port = 5000\n"))
	f.Add([]byte("version = 1\n[[runner.profiles]]\nname = \"a\"\nimage = \"alpine\"\ntags = [\"x\", \"x\"]\n"))
	f.Add([]byte("[gitlab]\nhost = \"localhost\"\nfoo = 1\n"))
	f.Add([]byte("version = \"1\"\n"))
	f.Add([]byte("[[runner.profiles]]\n[[runner.profiles]]\nname = \"b\"\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse(src)
		if err != nil {
			errs, ok := err.(*Errors)
			if !ok || len(errs.List) == 0 {
				t.Fatalf("rejection without field errors: %T %v", err, err)
			}
			for _, fe := range errs.List {
				if fe.Msg == "" {
					t.Fatalf("field error without a message: %+v", fe)
				}
			}
			return
		}
		out, err := Encode(c)
		if err != nil {
			t.Fatalf("accepted config does not encode: %v", err)
		}
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("encoded config does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(c, back) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", c, back)
		}
	})
}
