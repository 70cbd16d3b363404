package stack

import "testing"

func TestLastLines(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"", 3, ""},
		{"one\n\n  two  \n\nthree\n", 2, "two | three"},
		{"a\nb\nc\nd", 8, "a | b | c | d"},
		{"\n\n\n", 2, ""},
	} {
		if got := LastLines(c.in, c.n); got != c.want {
			t.Errorf("LastLines(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}
