// Package fronttest holds what tests of index.cgi (package front, and package dsm, which runs
// the front with the report) share: reading a CGI answer back as an HTTP answer.
package fronttest

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
)

// ParseCGI reads a CGI answer (RFC 3875, section 6): a Status header (200 without one), the
// headers, the body.
func ParseCGI(t testing.TB, out []byte) *httptest.ResponseRecorder {
	t.Helper()
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(out)))
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("CGI answer %q: %v", out, err)
	}
	w := httptest.NewRecorder()
	status := http.StatusOK
	if s := h.Get("Status"); s != "" {
		code, _, _ := strings.Cut(s, " ")
		if status, err = strconv.Atoi(code); err != nil {
			t.Fatalf("Status %q", s)
		}
	}
	h.Del("Status")
	for k, v := range h {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	io.Copy(w.Body, tp.R)
	return w
}
