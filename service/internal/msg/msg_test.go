package msg

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the English half of ui/web/messages-i18n.js from the catalogue")

const uiCatalogue = "../../../ui/web/messages-i18n.js"

// jsEntry is one "'key': 'text'," line of a dictionary in messages-i18n.js.
var jsEntry = regexp.MustCompile(`^\s*'((?:[^'\\]|\\.)*)':\s*'((?:[^'\\]|\\.)*)',?\s*$`)

func unquoteJS(s string) string {
	s = strings.ReplaceAll(s, `\'`, `'`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	out, err := strconv.Unquote(`"` + s + `"`)
	if err != nil {
		return s
	}
	return out
}

func quoteJS(s string) string {
	q := strconv.Quote(s)
	q = q[1 : len(q)-1]
	q = strings.ReplaceAll(q, `\"`, `"`)
	return "'" + strings.ReplaceAll(q, `'`, `\'`) + "'"
}

// readUI returns the named dictionaries of messages-i18n.js ("en", "zh") by key, and the file.
func readUI(t *testing.T) (map[string]map[string]string, []string) {
	t.Helper()
	src, err := os.ReadFile(uiCatalogue)
	if err != nil {
		t.Fatalf("the web app's catalogue: %v", err)
	}
	lines := strings.Split(string(src), "\n")
	dicts := map[string]map[string]string{}
	current := ""
	for _, l := range lines {
		if m := regexp.MustCompile(`^const (\w+) = \{`).FindStringSubmatch(l); m != nil {
			current = m[1]
			dicts[current] = map[string]string{}
			continue
		}
		if strings.HasPrefix(l, "};") {
			current = ""
			continue
		}
		if current == "" {
			continue
		}
		if m := jsEntry.FindStringSubmatch(l); m != nil {
			if _, dup := dicts[current][m[1]]; dup {
				t.Errorf("%s: %s is in the %s dictionary twice", uiCatalogue, m[1], current)
			}
			dicts[current][unquoteJS(m[1])] = unquoteJS(m[2])
		} else if s := strings.TrimSpace(l); s != "" && !strings.HasPrefix(s, "//") {
			t.Errorf("%s: cannot read line %q", uiCatalogue, l)
		}
	}
	return dicts, lines
}

// TestEveryCodeHasBothLanguages: every code of the catalogue is in the web app in English (the
// same template) and Simplified Chinese (with the same arguments), and the app has no code the
// server does not send.
func TestEveryCodeHasBothLanguages(t *testing.T) {
	if *update {
		writeEnglish(t)
	}
	dicts, _ := readUI(t)
	en, zh := dicts["en"], dicts["zh"]
	if len(en) == 0 || len(zh) == 0 {
		t.Fatalf("%s has no en or zh dictionary", uiCatalogue)
	}
	for _, code := range Codes() {
		tmpl, _ := Template(code)
		if got, ok := en[code]; !ok {
			t.Errorf("%s: no English for %s (run go test ./service/internal/msg -update)", uiCatalogue, code)
		} else if got != tmpl {
			t.Errorf("%s: English of %s is %q, the server's is %q (run -update)", uiCatalogue, code, got, tmpl)
		}
		z, ok := zh[code]
		if !ok || strings.TrimSpace(z) == "" {
			t.Errorf("%s: no Simplified Chinese for %s (%q)", uiCatalogue, code, tmpl)
			continue
		}
		want, have := Params(tmpl), Params(z)
		slices.Sort(want)
		slices.Sort(have)
		if !slices.Equal(want, have) {
			t.Errorf("%s: the Chinese of %s uses %v, the English %v", uiCatalogue, code, have, want)
		}
	}
	for _, d := range []string{"en", "zh"} {
		for code := range dicts[d] {
			if _, ok := Template(code); !ok {
				t.Errorf("%s: %s dictionary has %s, which the server never sends", uiCatalogue, d, code)
			}
		}
	}
}

// TestMissingTranslationFails shows the check above can fail: a code with no Chinese is found.
func TestMissingTranslationFails(t *testing.T) {
	english["test.only.untranslated"] = "nobody translated {this}"
	defer delete(english, "test.only.untranslated")
	dicts, _ := readUI(t)
	if _, ok := dicts["zh"]["test.only.untranslated"]; ok {
		t.Fatal("the UI has a test-only code")
	}
	missing := 0
	for _, code := range Codes() {
		if _, ok := dicts["zh"][code]; !ok {
			missing++
		}
	}
	if missing == 0 {
		t.Error("a code with no Chinese went unnoticed")
	}
}

func writeEnglish(t *testing.T) {
	dicts, lines := readUI(t)
	_ = dicts
	var out []string
	skip := false
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "const en = {"):
			out = append(out, l)
			for _, code := range Codes() {
				tmpl, _ := Template(code)
				out = append(out, "  "+quoteJS(code)+": "+quoteJS(tmpl)+",")
			}
			skip = true
		case skip && strings.HasPrefix(l, "};"):
			out = append(out, l)
			skip = false
		case !skip:
			out = append(out, l)
		}
	}
	if err := os.WriteFile(uiCatalogue, []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// codeLiteral is a literal code where the sources pass one: msg.New("x", ...), msg.Err, the
// validator's mc, the runner note, Stack.say's event then code, and planStart's add and wait.
var codeLiteral = regexp.MustCompile(`(?:(?:msg\.New|msg\.Err|mc|note)\(|\}, |(?:add|wait)\([^()"]+, )"([a-z][A-Za-z0-9\-]*\.[A-Za-z0-9.\-]*)"`)

// TestEveryUsedCodeIsCatalogued reads the Go sources that import this package: every literal
// code they pass is in the catalogue.
func TestEveryUsedCodeIsCatalogued(t *testing.T) {
	seen := 0
	goSources(t, func(p, src string) {
		if !strings.Contains(src, `internal/msg"`) {
			return
		}
		for _, m := range codeLiteral.FindAllStringSubmatch(src, -1) {
			code := m[1]
			if strings.HasSuffix(code, ".") { // a prefix completed at run time, e.g. "action."+kind
				continue
			}
			seen++
			if _, ok := Template(code); !ok {
				t.Errorf("%s uses code %s, which the catalogue lacks", p, code)
			}
		}
	})
	if seen < 50 {
		t.Errorf("found only %d codes in the sources: is the scan broken?", seen)
	}
}

// goSources calls fn with each Go source file of the service outside tests and stand-ins.
func goSources(t *testing.T, fn func(path, src string)) {
	t.Helper()
	err := filepath.WalkDir("../..", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") || strings.Contains(p, "standins") {
			return err
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fn(p, string(src))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// eventLiteral is an events.Event literal that sets its English Message itself.
var eventLiteral = regexp.MustCompile(`events\.Event\{[^{}]*\bMessage:[^{}]*\}`)

// TestEveryEventCarriesACode reads the Go sources: an event that sets its English Message by
// hand must carry its code too (Msg:), else the web app could only show the English. Events
// built with .With(msg) carry both by construction.
func TestEveryEventCarriesACode(t *testing.T) {
	seen := 0
	goSources(t, func(p, src string) {
		seen += strings.Count(src, ".With(")
		for _, lit := range eventLiteral.FindAllString(src, -1) {
			if !strings.Contains(lit, "Msg:") {
				t.Errorf("%s: an event with English only: %s", p, lit)
			}
		}
	})
	if seen < 40 {
		t.Errorf("found only %d coded events: is the scan broken?", seen)
	}
}
