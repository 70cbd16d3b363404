package main

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// params are a request's parameters from the query string and a JSON or form body, merged the
// way Grape (GitLab's API framework) does: a body value wins over the query.
type params map[string]any

// badParam is a 400 in Grape's words: {"error":"<name> is invalid"}.
type badParam struct{ msg string }

func (e *badParam) Error() string { return e.msg }

func readParams(r *http.Request) (params, error) {
	p := params{}
	addValues(p, r.URL.Query())
	if r.Body == nil {
		return p, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return p, nil
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/x-www-form-urlencoded":
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, &badParam{"the form body is malformed"}
		}
		addValues(p, vals)
	default: // GitLab parses JSON bodies whatever the client calls them
		var obj map[string]any
		if err := json.Unmarshal(body, &obj); err != nil {
			return nil, &badParam{"the JSON body is not an object"}
		}
		for k, v := range obj {
			p[k] = v
		}
	}
	return p, nil
}

func addValues(p params, vals url.Values) {
	for k, vs := range vals {
		if base, ok := strings.CutSuffix(k, "[]"); ok {
			list := make([]any, len(vs))
			for i, v := range vs {
				list[i] = v
			}
			p[base] = list
			continue
		}
		p[k] = vs[len(vs)-1]
	}
}

func (p params) has(k string) bool { _, ok := p[k]; return ok }

func (p params) str(k string) (string, error) {
	switch v := p[k].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	default:
		return "", &badParam{k + " is invalid"}
	}
}

func (p params) boolean(k string, def bool) (bool, error) {
	switch v := p[k].(type) {
	case nil:
		return def, nil
	case bool:
		return v, nil
	case string:
		switch strings.ToLower(v) {
		case "true", "1", "t", "yes":
			return true, nil
		case "false", "0", "f", "no":
			return false, nil
		}
	}
	return false, &badParam{k + " is invalid"}
}

func (p params) integer(k string) (*int64, error) {
	switch v := p[k].(type) {
	case nil:
		return nil, nil
	case float64:
		if v == float64(int64(v)) {
			n := int64(v)
			return &n, nil
		}
	case string:
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return &n, nil
		}
	}
	return nil, &badParam{k + " is invalid"}
}

// strList takes an array of strings or a comma-separated string, trims, drops empties and
// duplicates (acts-as-taggable-on's parsing).
func (p params) strList(k string) ([]string, error) {
	var raw []string
	switch v := p[k].(type) {
	case nil:
		return nil, nil
	case string:
		raw = strings.Split(v, ",")
	case []any:
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil, &badParam{k + " is invalid"}
			}
			raw = append(raw, strings.Split(s, ",")...)
		}
	default:
		return nil, &badParam{k + " is invalid"}
	}
	out := []string{}
	for _, s := range raw {
		s = strings.TrimSpace(s)
		if s != "" && !contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (p params) oneOf(k string, allowed ...string) (string, error) {
	v, err := p.str(k)
	if err != nil || v == "" {
		return v, err
	}
	if !contains(allowed, v) {
		return "", &badParam{fmt.Sprintf("%s does not have a valid value", k)}
	}
	return v, nil
}
