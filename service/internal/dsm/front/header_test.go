package front

import (
	"bufio"
	"math/rand/v2"
	"net"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
)

// TestCanonicalNameAsTextproto: the front's header names are net/textproto's, which is what
// the controller's net/http reads and what the tests compare with.
func TestCanonicalNameAsTextproto(t *testing.T) {
	for _, name := range []string{"content-type", "CONTENT-TYPE", "x-forgebox-front-secret", "X-SYNO-TOKEN", "etag",
		"Sec-Fetch-Site", "a", "-x-", "x--y", "Accept", "with space", "bad:colon", "ünicode", "", "x_y", "1-2"} {
		if got, want := CanonicalName(name), textproto.CanonicalMIMEHeaderKey(name); got != want {
			t.Errorf("CanonicalName(%q) = %q, textproto says %q", name, got, want)
		}
	}
}

func TestHeaderMethods(t *testing.T) {
	var h Header
	h.Add("x-a", "1")
	h.Add("X-B", "2")
	h.Add("X-A", "3")
	if got := h.Values("X-a"); len(got) != 2 || got[0] != "1" || got[1] != "3" {
		t.Errorf("Values = %q", got)
	}
	h.Set("x-a", "4")
	if got := h.Values("X-A"); len(got) != 1 || got[0] != "4" || h.Get("x-b") != "2" {
		t.Errorf("after Set: %q", h)
	}
	h.Del("X-B")
	if h.Get("X-B") != "" || len(h) != 1 {
		t.Errorf("after Del: %q", h)
	}
}

// TestQueryAsParseQuery: Request.Query reads a query as url.ParseQuery does, on random
// queries built from the characters that matter (separators, escapes, semicolons).
func TestQueryAsParseQuery(t *testing.T) {
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 0))
	pieces := []string{"lang", "SynoToken", "a", "=", "&", ";", "%", "%2", "%3D", "%zz", "+", "x", "chs", "%26"}
	for range 5000 {
		var b strings.Builder
		for range rng.IntN(8) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		raw := b.String()
		r := &Request{RawQuery: raw}
		q, _ := url.ParseQuery(raw)
		for _, key := range []string{"lang", "SynoToken", "a", "x", "a;", "%", ""} {
			if got, want := r.Query(key), q.Get(key); got != want {
				t.Fatalf("seed %d: Query(%q) of %q = %q, url.ParseQuery gives %q", seed, key, raw, got, want)
			}
		}
	}
}

// TestCutHostPortAsNet: host:port is split as net.SplitHostPort splits it, for the addresses
// a CGI environment and the controller URL can hold.
func TestCutHostPortAsNet(t *testing.T) {
	for _, s := range []string{"192.0.2.7:51234", "192.0.2.7", "[2001:db8::1]:443", "2001:db8::1", "[::1]:8470",
		"localhost:8470", "[::ffff:127.0.0.1]:80", "host:", ":80", "[::1]", "a:b:c"} {
		host, port, ok := cutHostPort(s)
		nh, np, err := net.SplitHostPort(s)
		wantOK := err == nil && nh != "" && np != ""
		if ok != wantOK || ok && (host != nh || port != np) {
			t.Errorf("cutHostPort(%q) = %q %q %v; net: %q %q %v", s, host, port, ok, nh, np, err)
		}
	}
}

// TestReadHead: the controller's answer head as RFC 9112 has it, including what net/http
// never sends but a proxy must not choke on.
func TestReadHead(t *testing.T) {
	long := strings.Repeat("v", 10<<10) // longer than the head's 4 KiB buffer
	for _, c := range []struct {
		name, in string
		status   int
		reason   string
		want     map[string]string
		err      string
	}{
		{name: "plain", in: "HTTP/1.1 200 OK\r\nContent-type: text/plain\r\nX-A:  spaced \r\n\r\nbody", status: 200, reason: "OK",
			want: map[string]string{"Content-Type": "text/plain", "X-A": "spaced"}},
		{name: "bare LF", in: "HTTP/1.1 404 Not Found\nX-A: 1\n\n", status: 404, reason: "Not Found", want: map[string]string{"X-A": "1"}},
		{name: "folded", in: "HTTP/1.1 200 OK\r\nX-A: one\r\n  two\r\n\r\n", status: 200, reason: "OK", want: map[string]string{"X-A": "one two"}},
		{name: "long line", in: "HTTP/1.1 200 OK\r\nX-Long: " + long + "\r\n\r\n", status: 200, reason: "OK", want: map[string]string{"X-Long": long}},
		{name: "too long", in: "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("v", maxHeadLine+1) + "\r\n\r\n", err: "longer than"},
		{name: "not HTTP", in: "SSH-2.0-OpenSSH\r\n\r\n", err: "not HTTP"},
		{name: "no colon", in: "HTTP/1.1 200 OK\r\nbroken line\r\n\r\n", err: "malformed header line"},
		{name: "space in name", in: "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", err: "malformed header line"},
		{name: "cut off", in: "HTTP/1.1 200 OK\r\nX-A: 1\r\n", err: "unexpected EOF"},
		{name: "fold first", in: "HTTP/1.1 200 OK\r\n x\r\n\r\n", err: "continuation line"},
	} {
		status, reason, h, err := readHead(bufio.NewReaderSize(strings.NewReader(c.in), 4<<10))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || status != c.status || reason != c.reason || len(h) != len(c.want) {
			t.Errorf("%s: %d %q %q %v", c.name, status, reason, h, err)
			continue
		}
		for k, v := range c.want {
			if h.Get(k) != v {
				t.Errorf("%s: %s = %q, want %q", c.name, k, h.Get(k), v)
			}
		}
	}
}

// TestControllerHostAsURL: the controller's host comes out of its URL as url.Parse takes it
// out, and the default stands in when the URL names none.
func TestControllerHostAsURL(t *testing.T) {
	def := strings.TrimPrefix(DefaultControllerURL, "http://")
	for _, raw := range []string{"http://127.0.0.1:8470", "http://127.0.0.1:18471/", "http://[::1]:8470/x?y#z",
		"http://u:p@127.0.0.1:9", "https://localhost:8470", "127.0.0.1:8470", "", "http://", "http:///path"} {
		want := def
		if u, err := url.Parse(raw); err == nil && u.Host != "" {
			want = u.Host
		}
		if got := controllerHost(raw); got != want {
			t.Errorf("controllerHost(%q) = %q, want %q", raw, got, want)
		}
	}
}
