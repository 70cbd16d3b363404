package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Kind is the type of a value in the Ruby subset.
type Kind int

// The value kinds forgebox may write.
const (
	KindString Kind = iota
	KindInt
	KindBool
	KindNil
	KindArray
)

// Value is one right-hand side of `key['sub'] = value`.
type Value struct {
	Kind Kind
	Str  string
	Int  int64
	Bool bool
	List []string
}

func (v Value) String() string {
	switch v.Kind {
	case KindString:
		return "'" + v.Str + "'"
	case KindInt:
		return strconv.FormatInt(v.Int, 10)
	case KindBool:
		return strconv.FormatBool(v.Bool)
	case KindNil:
		return "nil"
	default:
		q := make([]string, len(v.List))
		for i, s := range v.List {
			q[i] = "'" + s + "'"
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
}

// OmnibusConfig is a parsed GITLAB_OMNIBUS_CONFIG.
type OmnibusConfig struct {
	ExternalURL string
	Settings    map[string]Value // key "gitlab_rails['db_host']"
}

// Get returns the value of "name['sub']".
func (o *OmnibusConfig) Get(key string) (Value, bool) {
	v, ok := o.Settings[key]
	return v, ok
}

var (
	assignHead   = regexp.MustCompile(`^([a-z][a-z0-9_]*)\['([a-z0-9_]+)'\]\s*=\s*`)
	externalHead = regexp.MustCompile(`^external_url\s+`)
	intLiteral   = regexp.MustCompile(`^-?[0-9]+`)
	wordLiteral  = regexp.MustCompile(`^(true|false|nil)\b`)
)

// ParseOmnibus parses the subset of Ruby forgebox writes into GITLAB_OMNIBUS_CONFIG: one
// statement per line, either `external_url 'http://host:port'` or `name['key'] = value` where
// value is a single-quoted string, an integer, true, false, nil, or an array of single-quoted
// strings; blank lines and # comments. Anything else (hashes, double quotes, method calls,
// semicolons, a key set twice) is an error naming the line: Omnibus would eval it as Ruby, and
// forgebox has no business writing it.
func ParseOmnibus(src string) (*OmnibusConfig, error) {
	cfg := &OmnibusConfig{Settings: map[string]Value{}}
	for i, raw := range strings.Split(src, "\n") {
		n := i + 1
		line := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		switch {
		case externalHead.MatchString(line):
			if cfg.ExternalURL != "" {
				return nil, fmt.Errorf("line %d: external_url is set twice", n)
			}
			rest := line[len(externalHead.FindString(line)):]
			s, rest, err := parseQuoted(rest)
			if err != nil {
				return nil, fmt.Errorf("line %d: external_url: %v", n, err)
			}
			if err := endOfStatement(rest); err != nil {
				return nil, fmt.Errorf("line %d: %v", n, err)
			}
			if s == "" {
				return nil, fmt.Errorf("line %d: external_url is empty", n)
			}
			cfg.ExternalURL = s
		case assignHead.MatchString(line):
			m := assignHead.FindStringSubmatch(line)
			key := m[1] + "['" + m[2] + "']"
			if _, dup := cfg.Settings[key]; dup {
				return nil, fmt.Errorf("line %d: %s is set twice", n, key)
			}
			v, rest, err := parseValue(line[len(m[0]):])
			if err != nil {
				return nil, fmt.Errorf("line %d: %s: %v", n, key, err)
			}
			if err := endOfStatement(rest); err != nil {
				return nil, fmt.Errorf("line %d: %v", n, err)
			}
			cfg.Settings[key] = v
		default:
			return nil, fmt.Errorf("line %d: %q is not `external_url '...'` or `name['key'] = value`", n, clip(line))
		}
	}
	return cfg, nil
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// endOfStatement allows only blanks and a trailing comment after a value.
func endOfStatement(rest string) error {
	rest = strings.TrimSpace(rest)
	if rest == "" || strings.HasPrefix(rest, "#") {
		return nil
	}
	return fmt.Errorf("unexpected %q after the value", clip(rest))
}

func parseValue(s string) (Value, string, error) {
	switch {
	case strings.HasPrefix(s, "'"):
		str, rest, err := parseQuoted(s)
		return Value{Kind: KindString, Str: str}, rest, err
	case strings.HasPrefix(s, "["):
		return parseArray(s)
	case wordLiteral.MatchString(s):
		w := wordLiteral.FindString(s)
		rest := s[len(w):]
		switch w {
		case "nil":
			return Value{Kind: KindNil}, rest, nil
		default:
			return Value{Kind: KindBool, Bool: w == "true"}, rest, nil
		}
	case intLiteral.MatchString(s):
		lit := intLiteral.FindString(s)
		rest := s[len(lit):]
		if rest != "" && (rest[0] == '.' || rest[0] == '_' || isIdent(rest[0])) {
			return Value{}, "", fmt.Errorf("%q is not an integer", clip(s))
		}
		n, err := strconv.ParseInt(lit, 10, 64)
		if err != nil {
			return Value{}, "", fmt.Errorf("%q is not an integer", lit)
		}
		return Value{Kind: KindInt, Int: n}, rest, nil
	case strings.HasPrefix(s, `"`):
		return Value{}, "", fmt.Errorf("double-quoted strings are not in the subset (Ruby would interpolate #{...}); use single quotes")
	case strings.HasPrefix(s, "{"):
		return Value{}, "", fmt.Errorf("hashes are not in the subset")
	default:
		return Value{}, "", fmt.Errorf("%q is not a single-quoted string, integer, true, false, nil or array of strings", clip(s))
	}
}

func isIdent(b byte) bool {
	return b == '_' || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9')
}

// parseQuoted reads a Ruby single-quoted string: only \\ and \' are escapes.
func parseQuoted(s string) (string, string, error) {
	if !strings.HasPrefix(s, "'") {
		return "", "", fmt.Errorf("expected a single-quoted string, got %q", clip(s))
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) && (s[i+1] == '\\' || s[i+1] == '\'') {
				b.WriteByte(s[i+1])
				i++
			} else {
				b.WriteByte(c)
			}
		case '\'':
			return b.String(), s[i+1:], nil
		default:
			b.WriteByte(c)
		}
	}
	return "", "", fmt.Errorf("unterminated string")
}

func parseArray(s string) (Value, string, error) {
	v := Value{Kind: KindArray, List: []string{}}
	rest := strings.TrimSpace(s[1:])
	if strings.HasPrefix(rest, "]") {
		return v, rest[1:], nil
	}
	for {
		str, r, err := parseQuoted(rest)
		if err != nil {
			return Value{}, "", fmt.Errorf("array: %v", err)
		}
		v.List = append(v.List, str)
		r = strings.TrimSpace(r)
		switch {
		case strings.HasPrefix(r, ","):
			rest = strings.TrimSpace(r[1:])
			if strings.HasPrefix(rest, "]") {
				return Value{}, "", fmt.Errorf("array: trailing comma")
			}
		case strings.HasPrefix(r, "]"):
			return v, r[1:], nil
		default:
			return Value{}, "", fmt.Errorf("array: expected , or ] but got %q", clip(r))
		}
	}
}
