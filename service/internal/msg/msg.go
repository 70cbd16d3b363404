// Package msg is the vocabulary of what forgebox tells its users: every message the server sends
// to the web app (plan reasons, progress, field errors, refusals, doctor results) is a Code with
// named arguments. The English text is rendered here from the catalogue (catalogue.go), for the
// CLI and for API clients that read "message"; the web app renders the same code in the user's
// language from ui/web/messages-i18n.js. A test keeps the two catalogues in step.
package msg

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Msg is one message: a code from the catalogue and its arguments. An argument is a string, an
// integer, another Msg, or a []Msg (a list, joined by "; " in English).
type Msg struct {
	Code string         `json:"code,omitempty"`
	Args map[string]any `json:"args,omitempty"`
}

// New builds a message from its code and name/value pairs.
func New(code string, kv ...any) Msg {
	m := Msg{Code: code}
	if len(kv)%2 != 0 {
		panic("msg.New " + code + ": odd number of name/value arguments")
	}
	for i := 0; i < len(kv); i += 2 {
		if m.Args == nil {
			m.Args = make(map[string]any, len(kv)/2)
		}
		m.Args[kv[i].(string)] = kv[i+1]
	}
	return m
}

// Q quotes a value the way Go's %q does; templates show user input quoted.
func Q(s string) string { return strconv.Quote(s) }

// IsZero reports whether m carries no message.
func (m Msg) IsZero() bool { return m.Code == "" }

var placeholder = regexp.MustCompile(`\{(\w+)\}`)

// String renders m in English. A code missing from the catalogue (a bug the catalogue test
// catches) shows as the code and its arguments rather than nothing.
func (m Msg) String() string {
	tmpl, ok := english[m.Code]
	if !ok {
		if m.Code == "" {
			return ""
		}
		return fmt.Sprintf("%s %v", m.Code, m.Args)
	}
	return placeholder.ReplaceAllStringFunc(tmpl, func(p string) string {
		name := p[1 : len(p)-1]
		v, ok := m.Args[name]
		if !ok {
			return p
		}
		return argString(v)
	})
}

// Raw is an argument in someone else's words: an error from the engine, the network or
// PostgreSQL. It is shown as it is in every language (the web app sets it apart as quoted).
type Raw string

// MarshalJSON sends a Raw as {"raw": "..."} so the web app can tell it from translatable text.
func (r Raw) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"raw": string(r)})
}

func argString(v any) string {
	switch x := v.(type) {
	case Raw:
		return string(x)
	case Msg:
		return x.String()
	case []Msg:
		parts := make([]string, len(x))
		for i, m := range x {
			parts[i] = m.String()
		}
		return strings.Join(parts, "; ")
	default:
		return fmt.Sprint(x)
	}
}

// Template is a code's English template, and whether the catalogue has it.
func Template(code string) (string, bool) {
	t, ok := english[code]
	return t, ok
}

// Codes lists every code of the catalogue, sorted.
func Codes() []string {
	out := make([]string, 0, len(english))
	for c := range english {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// Params lists the placeholder names of a template, in order of first use.
func Params(tmpl string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range placeholder.FindAllStringSubmatch(tmpl, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	return out
}

// Error is an error that carries its message, so the API edge can send the code to the browser.
type Error struct{ Msg Msg }

func (e *Error) Error() string { return e.Msg.String() }

// Errorf is shorthand for &Error{New(code, kv...)}.
func Err(code string, kv ...any) error { return &Error{Msg: New(code, kv...)} }
