package config

import (
	"bufio"
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/forgebox/forgebox/service/internal/msg"
)

// FieldError is one problem with one key. The API returns these as they are, so a form can put
// each message beside its field.
type FieldError struct {
	Key  string `json:"key"`            // dotted path, e.g. "gitlab.http_port" or "runner.profiles[1].image"
	Line int    `json:"line,omitempty"` // 1-based line in the file, 0 when unknown
	Msg  string `json:"message"`        // what is wrong
	Hint string `json:"hint,omitempty"` // what is allowed, or what to do
	// Text and Advice are Msg and Hint as message codes, for the web app's languages; zero when
	// the problem was found by code that has no code for it yet (the app shows the English).
	Text   msg.Msg `json:"text,omitzero"`
	Advice msg.Msg `json:"advice,omitzero"`
}

// NewFieldError is a problem with key said as message codes, with the English rendered.
func NewFieldError(key string, line int, m, hint msg.Msg) FieldError {
	return FieldError{Key: key, Line: line, Msg: m.String(), Hint: hint.String(), Text: m, Advice: hint}
}

func (e FieldError) Error() string {
	var b strings.Builder
	if e.Key != "" {
		b.WriteString(e.Key)
	} else {
		b.WriteString("config")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Errors is every problem found in one config, in file order.
type Errors struct {
	List []FieldError
}

func (e *Errors) Error() string {
	if len(e.List) == 1 {
		return e.List[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems:", len(e.List))
	for _, fe := range e.List {
		b.WriteString("\n  ")
		b.WriteString(fe.Error())
	}
	return b.String()
}

var (
	tableHeader = regexp.MustCompile(`^\s*\[\[?\s*([A-Za-z0-9_.\-" ]+?)\s*\]\]?`)
	arrayHeader = regexp.MustCompile(`^\s*\[\[`)
	keyIndex    = regexp.MustCompile(`\[(\d+)\]`)
)

// lineOfKey finds the 1-based line where a dotted key is set in src, or where its table starts
// when the key itself is not in the file (a default that fails validation in context). The
// decoder keeps key positions to itself, so this reads the file the simple way TOML is written
// by people: one key per line, tables in headers. "runner.profiles[1].image" finds the second
// [[runner.profiles]] table. It returns 0 when nothing matches.
func lineOfKey(src []byte, key string) int {
	wantIndex := -1
	if m := keyIndex.FindStringSubmatch(key); m != nil {
		fmt.Sscan(m[1], &wantIndex)
		key = keyIndex.ReplaceAllString(key, "")
	}
	table, leaf := "", key
	if i := strings.LastIndex(key, "."); i >= 0 {
		table, leaf = key[:i], key[i+1:]
	}
	var (
		current    string
		seen       = map[string]int{}
		tableLine  int
		lineNumber int
	)
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		lineNumber++
		line := sc.Text()
		if m := tableHeader.FindStringSubmatch(line); m != nil && strings.HasPrefix(strings.TrimSpace(line), "[") {
			current = strings.ReplaceAll(m[1], " ", "")
			if current == key && wantIndex < 0 { // the key is a table: [unknown]
				return lineNumber
			}
			index := 0
			if arrayHeader.MatchString(line) {
				index = seen[current]
				seen[current]++
			}
			if current == table && (wantIndex < 0 || index == wantIndex) && tableLine == 0 {
				tableLine = lineNumber
			}
			continue
		}
		if current != table {
			continue
		}
		if wantIndex >= 0 && seen[current]-1 != wantIndex {
			continue
		}
		k, _, ok := strings.Cut(line, "=")
		if ok && strings.Trim(strings.TrimSpace(k), `"`) == leaf {
			return lineNumber
		}
	}
	return tableLine
}

// allowedKeysHint names the keys that the table holding key accepts, so a typo shows its fix.
func allowedKeysHint(key string) msg.Msg {
	parts := strings.Split(key, ".")
	t := reflect.TypeOf(Config{})
	for _, p := range parts[:len(parts)-1] {
		f, ok := fieldByTag(t, p)
		if !ok {
			return msg.Msg{}
		}
		t = f.Type
		if t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return msg.Msg{}
		}
	}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		names = append(names, strings.Split(t.Field(i).Tag.Get("toml"), ",")[0])
	}
	return KeysHint(strings.Join(parts[:len(parts)-1], "."), names)
}

// KeysHint names the keys a table accepts (table "" is the top level).
func KeysHint(table string, names []string) msg.Msg {
	names = slices.Sorted(slices.Values(names))
	if table == "" {
		return msg.New("hint.keysTop", "keys", strings.Join(names, ", "))
	}
	return msg.New("hint.keysIn", "table", "["+table+"]", "keys", strings.Join(names, ", "))
}

func fieldByTag(t reflect.Type, tag string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		if strings.Split(t.Field(i).Tag.Get("toml"), ",")[0] == tag {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}
