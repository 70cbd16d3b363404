package front

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
)

// The CGI side, written out rather than taken from net/http/cgi: net/http links crypto/tls
// and HTTP/2, whose package initialisation is a large part of a process start that happens on
// every request of the app window (bench/README.md, "The DSM app window").

// Request is the one request of this CGI process (RFC 3875, section 4.1).
type Request struct {
	Context       context.Context
	Method        string
	Host          string
	RawQuery      string // as sent, SynoToken included
	Header        Header
	RemoteAddr    string // host:port, or the host alone
	HTTPS         bool
	ContentLength int64 // -1: not known
	Body          io.Reader
}

// Query returns the first value of a query parameter, read as url.ParseQuery reads it (a pair
// with a semicolon or a bad escape counts as absent) without building its map.
func (r *Request) Query(key string) string {
	for rest := r.RawQuery; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if k, err := url.QueryUnescape(k); err != nil || k != key {
			continue
		}
		if v, err := url.QueryUnescape(v); err == nil {
			return v
		}
	}
	return ""
}

// RequestFromEnv reads the request from the CGI variables, with body as its body.
func RequestFromEnv(getenv func(string) string, environ []string, body io.Reader) (*Request, error) {
	r := &Request{Context: context.Background(), Method: getenv("REQUEST_METHOD"), RawQuery: getenv("QUERY_STRING"),
		ContentLength: -1, Body: body}
	if r.Method == "" {
		return nil, fmt.Errorf("no REQUEST_METHOD: not run as a CGI")
	}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, "HTTP_") || k == "HTTP_HOST" {
			continue
		}
		r.Header.Add(strings.ReplaceAll(k[len("HTTP_"):], "_", "-"), v)
	}
	r.Host = getenv("HTTP_HOST")
	if ct := getenv("CONTENT_TYPE"); ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	if cl := getenv("CONTENT_LENGTH"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad CONTENT_LENGTH %q", cl)
		}
		r.ContentLength = n
	}
	r.RemoteAddr = getenv("REMOTE_ADDR")
	if port := getenv("REMOTE_PORT"); port != "" && r.RemoteAddr != "" {
		r.RemoteAddr = joinHostPort(r.RemoteAddr, port)
	}
	r.HTTPS = strings.EqualFold(getenv("HTTPS"), "on") || getenv("HTTPS") == "1"
	return r, nil
}

// joinHostPort is host:port, with an IPv6 address in brackets.
func joinHostPort(host, port string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

// splitHost is the host of host:port or [v6]:port, or the whole of s when it has no port.
func splitHost(s string) string {
	if h, _, ok := cutHostPort(s); ok {
		return h
	}
	return s
}

// ResponseWriter is the front's answer.
type ResponseWriter interface {
	Header() *Header
	WriteHeader(status int)
	Write([]byte) (int, error)
	Flush() error
}

// cgiWriter writes a CGI response (RFC 3875, section 6): a Status header, the headers, a blank
// line, the body.
type cgiWriter struct {
	out    *bufio.Writer
	header Header
	status int
	reason string // the controller's, for proxied answers
}

func newCGIWriter(w io.Writer) *cgiWriter {
	return &cgiWriter{out: bufio.NewWriter(w)}
}

func (w *cgiWriter) Header() *Header { return &w.header }

func (w *cgiWriter) WriteHeader(status int) {
	if w.status != 0 {
		return
	}
	w.status = status
	reason := w.reason
	if reason == "" {
		reason = statusText[status]
	}
	if w.header.Get("Content-Type") == "" && status != 204 && status != 304 {
		w.header.Set("Content-Type", "text/plain; charset=utf-8")
	}
	head := make([]byte, 0, 512)
	head = append(head, "Status: "...)
	head = strconv.AppendInt(head, int64(status), 10)
	head = append(append(append(head, ' '), reason...), "\r\n"...)
	for _, f := range w.header {
		// A value with a line break would smuggle a header: cut it there.
		v := f.Value
		if i := strings.IndexAny(v, "\r\n"); i >= 0 {
			v = v[:i]
		}
		head = append(append(append(append(head, f.Name...), ": "...), v...), "\r\n"...)
	}
	w.out.Write(append(head, "\r\n"...))
}

func (w *cgiWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(200)
	}
	return w.out.Write(b)
}

func (w *cgiWriter) Flush() error {
	if w.status == 0 {
		w.WriteHeader(200)
	}
	return w.out.Flush()
}

// statusText is the reason phrase of the answers the front makes itself.
var statusText = map[int]string{
	200: "OK", 302: "Found", 401: "Unauthorized", 404: "Not Found", 500: "Internal Server Error",
	502: "Bad Gateway", 503: "Service Unavailable",
}
