package front

import "strings"

// Header is a request's or an answer's header fields, in the order they came, names in
// canonical form (Content-Type). A slice rather than textproto's map: a CGI request carries
// a dozen fields, and a map's tables and textproto's table of common names are a measurable
// part of a process that lives a few milliseconds (bench/README.md, "The DSM app window").
type Header []Field

// Field is one header field.
type Field struct{ Name, Value string }

// Get is the first value of name, "" when it is absent.
func (h Header) Get(name string) string {
	name = CanonicalName(name)
	for _, f := range h {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// Values is every value of name, in order.
func (h Header) Values(name string) []string {
	name = CanonicalName(name)
	var out []string
	for _, f := range h {
		if f.Name == name {
			out = append(out, f.Value)
		}
	}
	return out
}

// Add appends a value of name.
func (h *Header) Add(name, value string) {
	*h = append(*h, Field{CanonicalName(name), value})
}

// Set replaces every value of name with value.
func (h *Header) Set(name, value string) {
	h.Del(name)
	h.Add(name, value)
}

// Del drops every value of name.
func (h *Header) Del(name string) {
	name = CanonicalName(name)
	kept := (*h)[:0]
	for _, f := range *h {
		if f.Name != name {
			kept = append(kept, f)
		}
	}
	clear((*h)[len(kept):])
	*h = kept
}

// CanonicalName is name with its first letter and every letter after a hyphen upper case and
// the rest lower case, as net/textproto writes header names; a name with a byte that is not
// a token character is left as it is.
func CanonicalName(name string) string {
	upper := true
	ok := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !isTokenChar(c) {
			return name
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			ok = false
		}
		upper = c == '-'
	}
	if ok {
		return name
	}
	b := []byte(name)
	upper = true
	for i, c := range b {
		switch {
		case upper && 'a' <= c && c <= 'z':
			b[i] = c - ('a' - 'A')
		case !upper && 'A' <= c && c <= 'Z':
			b[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
	return string(b)
}

// isTokenChar is RFC 9110's tchar.
func isTokenChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c < 0x7f && strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
