package front

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/url"
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
	maxHeadLine   = 64 << 10        // one line of the controller's answer head
)

// hopHeaders are meaningful for one connection only (RFC 9110, section 7.6.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// outHeader is what reaches the controller: a few of the browser's headers and its
// X-Forgebox-* ones (never DSM's cookie or token), then the front's own.
func (f *Front) outHeader(r *Request, user, secret string) Header {
	h := make(Header, 0, 12)
	for _, fl := range r.Header {
		if slices.Contains(forwardHeaders, fl.Name) || strings.HasPrefix(fl.Name, "X-Forgebox-") &&
			fl.Name != HeaderFrontSecret && fl.Name != HeaderUser && fl.Name != HeaderLang {
			h = append(h, fl)
		}
	}
	h.Add(HeaderFrontSecret, secret)
	h.Add(HeaderUser, user)
	lang := r.Query("lang")
	if !isLang(lang) {
		lang = r.Header.Get(HeaderLang)
	}
	if isLang(lang) {
		h.Add(HeaderLang, lang)
	}
	if host, _, ok := cutHostPort(r.RemoteAddr); ok {
		h.Add("X-Forwarded-For", host)
	}
	h.Add("X-Forwarded-Host", r.Host)
	if r.HTTPS {
		h.Add("X-Forwarded-Proto", "https")
	} else {
		h.Add("X-Forwarded-Proto", "http")
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
	host := controllerHost(f.Env.ControllerURL)
	if !strings.HasPrefix(pathInfo, "/") {
		pathInfo = "/" + pathInfo
	}
	resp, err := f.exchange(r, host, (&url.URL{Path: pathInfo, RawQuery: withoutToken(r.RawQuery)}).RequestURI(), f.outHeader(r, user, secret))
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
	*h = append(*h, resp.header...)
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

// controllerHost is the host[:port] of the controller's URL (http://127.0.0.1:8470, as
// url.URL.Host has it), the default one when the URL names none. The exchange is plain
// HTTP/1.1 whatever the scheme says: the controller listens on loopback without TLS.
func controllerHost(controllerURL string) string {
	_, rest, ok := strings.Cut(controllerURL, "://")
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:] // user information is not part of the host
	}
	if !ok || rest == "" {
		return strings.TrimPrefix(DefaultControllerURL, "http://")
	}
	return rest
}

// response is the controller's answer, its body still on the connection.
type response struct {
	conn   *conn
	status int
	reason string
	header Header
	body   io.Reader
}

// exchange sends the request and reads the answer's head.
func (f *Front) exchange(r *Request, host, uri string, h Header) (*response, error) {
	c, err := dial(host, dialTimeout)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	head := make([]byte, 0, 1024)
	head = append(append(append(append(append(head, r.Method...), ' '), uri...), " HTTP/1.1\r\nHost: "...), host...)
	head = append(head, "\r\n"...)
	for _, fl := range h {
		if strings.ContainsAny(fl.Value, "\r\n") {
			continue // would smuggle a header
		}
		head = append(append(append(append(head, fl.Name...), ": "...), fl.Value...), "\r\n"...)
	}
	var body io.Reader
	if r.ContentLength > 0 && r.Body != nil {
		head = strconv.AppendInt(append(head, "Content-Length: "...), r.ContentLength, 10)
		head = append(head, "\r\n"...)
		body = io.LimitReader(r.Body, r.ContentLength)
	} else if r.Method == "POST" || r.Method == "PUT" || r.Method == "PATCH" {
		head = append(head, "Content-Length: 0\r\n"...)
	}
	head = append(head, "Connection: close\r\n\r\n"...)
	if _, err := c.Write(head); err != nil {
		return nil, err
	}
	if body != nil {
		if n, err := io.Copy(c, body); err != nil || n != r.ContentLength {
			return nil, fmt.Errorf("pass the request body on (%d of %d bytes): %v", n, r.ContentLength, err)
		}
	}
	if err := c.setReadTimeout(headerTimeout); err != nil {
		return nil, err
	}
	// A small buffer for the head: once it is read, a body read of at least the buffer's size
	// goes from the socket straight into proxy's buffer rather than through this one.
	br := bufio.NewReaderSize(c, 4<<10)
	var resp *response
	for {
		status, reason, header, err := readHead(br)
		if err != nil {
			return nil, err
		}
		if status >= 100 && status < 200 && status != 101 {
			continue // an interim answer (100 Continue): the real one follows
		}
		resp = &response{conn: c, status: status, reason: reason, header: header}
		break
	}
	if err := c.setReadTimeout(0); err != nil {
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

// readHead reads an answer's status line and header fields (RFC 9112, sections 4 and 5); a
// folded line (obsolete, section 5.2) continues the field before it.
func readHead(br *bufio.Reader) (status int, reason string, h Header, err error) {
	line, err := headLine(br)
	if err != nil {
		return 0, "", nil, err
	}
	proto, rest, _ := strings.Cut(line, " ")
	code, reason, _ := strings.Cut(rest, " ")
	status, err = strconv.Atoi(code)
	if !strings.HasPrefix(proto, "HTTP/1.") || err != nil || status < 100 || status > 999 {
		return 0, "", nil, fmt.Errorf("the controller answered %q, not HTTP", line)
	}
	h = make(Header, 0, 12)
	for {
		line, err := headLine(br)
		if err != nil {
			return 0, "", nil, err
		}
		switch {
		case line == "":
			return status, reason, h, nil
		case line[0] == ' ' || line[0] == '\t':
			if len(h) == 0 {
				return 0, "", nil, fmt.Errorf("read the controller's answer: a continuation line %q before any field", line)
			}
			h[len(h)-1].Value += " " + strings.TrimSpace(line)
			continue
		}
		name, value, found := strings.Cut(line, ":")
		if !found || name == "" || !validName(name) {
			return 0, "", nil, fmt.Errorf("read the controller's answer: malformed header line %q", line)
		}
		h.Add(name, strings.Trim(value, " \t"))
	}
}

// validName says whether a header name is all token characters.
func validName(name string) bool {
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return false
		}
	}
	return true
}

// headLine is one line of an answer's head, without its line end; a line may be longer than
// the reader's buffer, up to maxHeadLine.
func headLine(br *bufio.Reader) (string, error) {
	var line []byte
	for {
		b, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return "", fmt.Errorf("read the controller's answer: %w", err)
		}
		if line == nil && err == nil {
			line = b // the usual case: the whole line was in the buffer
		} else {
			line = append(line, b...)
		}
		if len(line) > maxHeadLine {
			return "", fmt.Errorf("read the controller's answer: a header line longer than %d bytes", maxHeadLine)
		}
		if err == nil {
			return strings.TrimRight(string(line), "\r\n"), nil
		}
	}
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
