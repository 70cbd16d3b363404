package front

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The way to the controller: one HTTP/1.1 exchange on a fresh loopback connection, which this
// process closes when it exits. Written out rather than with net/http's Transport and
// ReverseProxy for the start-up cost (cgi.go says why); what it does is theirs: hop-by-hop
// headers dropped both ways, X-Forwarded-For/-Host/-Proto set, and every piece of the answer's
// body passed on as it arrives (progress streams, the activity feed).

const (
	dialTimeout   = 5 * time.Second
	headerTimeout = 5 * time.Minute // an operation's answer may take long; a stream's body may take longer
)

// hopHeaders are meaningful for one connection only (RFC 9110, section 7.6.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// outHeader is what reaches the controller: a few of the browser's headers and its
// X-Forgebox-* ones (never DSM's cookie or token), then the front's own.
func (f *Front) outHeader(r *Request, user, secret string) Header {
	h := Header{}
	for _, k := range forwardHeaders {
		if v := r.Header.Values(k); len(v) > 0 {
			h[k] = slices.Clone(v)
		}
	}
	for k, v := range r.Header {
		if strings.HasPrefix(k, "X-Forgebox-") {
			h[k] = slices.Clone(v)
		}
	}
	h.Del(HeaderFrontSecret)
	h.Del(HeaderUser)
	h.Del(HeaderLang)
	h.Set(HeaderFrontSecret, secret)
	h.Set(HeaderUser, user)
	lang := r.Query("lang")
	if !isLang(lang) {
		lang = r.Header.Get(HeaderLang)
	}
	if isLang(lang) {
		h.Set(HeaderLang, lang)
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		h.Set("X-Forwarded-For", host)
	}
	h.Set("X-Forwarded-Host", r.Host)
	if r.HTTPS {
		h.Set("X-Forwarded-Proto", "https")
	} else {
		h.Set("X-Forwarded-Proto", "http")
	}
	return h
}

// isLang accepts DSM's three-letter language codes, except "def" (DSM's "default").
func isLang(s string) bool {
	if len(s) != 3 || s == "def" {
		return false
	}
	for _, c := range []byte(s) {
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// proxy passes the request to the controller at pathInfo and its answer back.
func (f *Front) proxy(w ResponseWriter, r *Request, pathInfo, base, user, secret string) {
	target, err := url.Parse(f.Env.ControllerURL)
	if err != nil || target.Host == "" {
		target = &url.URL{Scheme: "http", Host: "127.0.0.1:8470"}
	}
	if !strings.HasPrefix(pathInfo, "/") {
		pathInfo = "/" + pathInfo
	}
	resp, err := f.exchange(r, target.Host, (&url.URL{Path: pathInfo, RawQuery: withoutToken(r.RawQuery)}).RequestURI(), f.outHeader(r, user, secret))
	if err != nil {
		f.log().Warn("controller unreachable", "url", f.Env.ControllerURL, "err", err)
		if wantsPage(r) {
			f.controllerPage(w, r)
			return
		}
		writeError(w, 502, "controller_unreachable",
			"The Forgebox controller is not answering. Check that Forgebox is running in Package Center.")
		return
	}
	defer resp.conn.Close()
	h := w.Header()
	for k, v := range resp.header {
		h[k] = v
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
	for _, k := range connectionTokens(resp.header) {
		h.Del(k)
	}
	// A cookie of the controller's would land on DSM's origin and is useless through the
	// front, which never forwards cookies.
	h.Del("Set-Cookie")
	if loc := h.Get("Location"); strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") {
		h.Set("Location", base+loc)
	}
	if cw, ok := w.(*cgiWriter); ok {
		cw.reason = resp.reason
	}
	w.WriteHeader(resp.status)
	if r.Method == "HEAD" {
		w.Flush()
		return
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if w.Flush() != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				f.log().Warn("the controller's answer broke off", "err", err)
			}
			w.Flush()
			return
		}
	}
}

// response is the controller's answer, its body still on the connection.
type response struct {
	conn   *os.File
	status int
	reason string
	header Header
	body   io.Reader
}

// exchange sends the request and reads the answer's head.
func (f *Front) exchange(r *Request, host, uri string, h Header) (*response, error) {
	conn, err := dial(host, dialTimeout)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			conn.Close()
		}
	}()
	bw := bufio.NewWriter(conn)
	fmt.Fprintf(bw, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.Method, uri, host)
	for k, vs := range h {
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n") {
				continue // would smuggle a header
			}
			fmt.Fprintf(bw, "%s: %s\r\n", k, v)
		}
	}
	var body io.Reader
	if r.ContentLength > 0 && r.Body != nil {
		fmt.Fprintf(bw, "Content-Length: %d\r\n", r.ContentLength)
		body = io.LimitReader(r.Body, r.ContentLength)
	} else if r.Method == "POST" || r.Method == "PUT" || r.Method == "PATCH" {
		bw.WriteString("Content-Length: 0\r\n")
	}
	bw.WriteString("Connection: close\r\n\r\n")
	if body != nil {
		if n, err := io.Copy(bw, body); err != nil || n != r.ContentLength {
			return nil, fmt.Errorf("pass the request body on (%d of %d bytes): %v", n, r.ContentLength, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	if err := setReadTimeout(conn, headerTimeout); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 32<<10)
	tp := textproto.NewReader(br)
	var resp *response
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return nil, fmt.Errorf("read the controller's answer: %w", err)
		}
		proto, rest, _ := strings.Cut(line, " ")
		code, reason, _ := strings.Cut(rest, " ")
		status, err := strconv.Atoi(code)
		if !strings.HasPrefix(proto, "HTTP/1.") || err != nil || status < 100 || status > 999 {
			return nil, fmt.Errorf("the controller answered %q, not HTTP", line)
		}
		header, err := tp.ReadMIMEHeader()
		if err != nil {
			return nil, fmt.Errorf("read the controller's answer: %w", err)
		}
		if status >= 100 && status < 200 && status != 101 {
			continue // an interim answer (100 Continue): the real one follows
		}
		resp = &response{conn: conn, status: status, reason: reason, header: header}
		break
	}
	if err := setReadTimeout(conn, 0); err != nil {
		return nil, err
	}
	switch {
	case r.Method == "HEAD" || resp.status == 204 || resp.status == 304:
		resp.body = strings.NewReader("")
	case isChunked(resp.header):
		resp.body = &chunkedReader{r: br}
	case resp.header.Get("Content-Length") != "":
		n, err := strconv.ParseInt(resp.header.Get("Content-Length"), 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("the controller answered a bad Content-Length %q", resp.header.Get("Content-Length"))
		}
		resp.body = io.LimitReader(br, n)
	default:
		resp.body = br // until the controller closes the connection
	}
	ok = true
	return resp, nil
}

func isChunked(h Header) bool {
	for _, v := range h.Values("Transfer-Encoding") {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), "chunked") {
				return true
			}
		}
	}
	return false
}

// connectionTokens are the headers the Connection header names, hop-by-hop too.
func connectionTokens(h Header) []string {
	var out []string
	for _, v := range h.Values("Connection") {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// chunkedReader decodes a chunked body (RFC 9112, section 7.1), ignoring extensions and
// trailers; each chunk is handed on as it arrives.
type chunkedReader struct {
	r    *bufio.Reader
	left int64 // of the current chunk
	done bool
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.done {
		return 0, io.EOF
	}
	if c.left == 0 {
		line, err := c.line()
		if err != nil {
			return 0, err
		}
		size, _, _ := strings.Cut(line, ";")
		n, err := strconv.ParseInt(strings.TrimSpace(size), 16, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			for { // trailers, up to the blank line
				l, err := c.line()
				if err != nil || l == "" {
					break
				}
			}
			c.done = true
			return 0, io.EOF
		}
		c.left = n
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left == 0 && err == nil {
		if l, lerr := c.line(); lerr != nil || l != "" {
			return n, fmt.Errorf("chunk not followed by CRLF")
		}
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (c *chunkedReader) line() (string, error) {
	l, err := c.r.ReadString('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	return strings.TrimRight(l, "\r\n"), nil
}
