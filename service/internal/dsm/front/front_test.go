package front

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/dsm/dsmstandins"
	"github.com/forgebox/forgebox/service/internal/dsm/front/fronttest"
)

// fakeController records what reaches it, in place of the controller (service/internal/api),
// for the front's own tests; the install test runs the real one.
type fakeController struct {
	mu       sync.Mutex
	requests []*http.Request
	bodies   []string
	handler  http.HandlerFunc
}

func (c *fakeController) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.requests = append(c.requests, r)
	c.bodies = append(c.bodies, string(b))
	h := c.handler
	c.mu.Unlock()
	if h != nil {
		h(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"ok":true}`))
}

func (c *fakeController) last(t *testing.T) (*http.Request, string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.requests) == 0 {
		t.Fatal("nothing reached the controller")
	}
	return c.requests[len(c.requests)-1], c.bodies[len(c.bodies)-1]
}

func (c *fakeController) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.requests)
}

type frontFixture struct {
	env     Env
	ctrl    *fakeController
	log     string
	secret  string
	cgiEnv  map[string]string
	standin map[string]string
	ttl     time.Duration // Front.SessionTTL
}

// newFrontFixture lays out a package root with front.secret, stand-ins of DSM's tools, and a
// fake controller.
func newFrontFixture(t *testing.T) *frontFixture {
	t.Helper()
	dir := t.TempDir()
	f := &frontFixture{ctrl: &fakeController{}, log: filepath.Join(dir, "standin.log"), secret: "front-secret-0123456789abcdef"}
	srv := httptest.NewServer(f.ctrl)
	t.Cleanup(srv.Close)
	f.standin = dsmstandins.Write(t, dir)
	root := filepath.Join(dir, "var/packages/forgebox") // laid out as on a NAS whose "/" is dir
	vars := map[string]string{EnvPkgRoot: root, EnvControllerURL: srv.URL}
	f.env = LoadEnv(func(k string) string { return vars[k] })
	// Set here rather than through the environment, which only a test build reads for these.
	f.env.AuthenticateCGI, f.env.LoginCGI, f.env.IDTool = f.standin["authenticate.cgi"], f.standin["login.cgi"], f.standin["id"]
	os.MkdirAll(f.env.DataDir, 0o700)
	os.WriteFile(filepath.Join(f.env.DataDir, "front.secret"), []byte(f.secret), 0o640)
	f.cgiEnv = map[string]string{"STANDIN_LOG": f.log, "GATEWAY_INTERFACE": "CGI/1.1", "REMOTE_ADDR": "192.0.2.7"}
	return f
}

// cgiVars is what a web server would set for r: the request in CGI variables (RFC 3875).
func cgiVars(r *http.Request) map[string]string {
	m := map[string]string{"REQUEST_METHOD": r.Method, "QUERY_STRING": r.URL.RawQuery, "SERVER_PROTOCOL": "HTTP/1.1",
		"REQUEST_URI": r.RequestURI}
	if r.Host != "" {
		m["HTTP_HOST"] = r.Host
	}
	for k, v := range r.Header {
		switch k {
		case "Content-Type":
			m["CONTENT_TYPE"] = v[0]
		default:
			m["HTTP_"+strings.ToUpper(strings.ReplaceAll(k, "-", "_"))] = strings.Join(v, ", ")
		}
	}
	if r.ContentLength > 0 {
		m["CONTENT_LENGTH"] = strconv.FormatInt(r.ContentLength, 10)
	}
	if host, port, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		m["REMOTE_ADDR"], m["REMOTE_PORT"] = host, port
	}
	return m
}

// serve runs one request through the front as a CGI process, with the CGI environment the
// stand-ins read.
func (f *frontFixture) serve(t *testing.T, r *http.Request, pathInfo string) *httptest.ResponseRecorder {
	t.Helper()
	vars := cgiVars(r)
	for k, v := range f.cgiEnv {
		vars[k] = v
	}
	vars["PATH_INFO"] = pathInfo
	vars["SCRIPT_NAME"] = "/webman/3rdparty/forgebox/index.cgi"
	front := &Front{Env: f.env, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), SessionTTL: f.ttl}
	return f.run(t, front, vars, r.Body)
}

// run answers one request as a CGI process does: the request from the CGI variables, the
// answer on stdout, read back as an HTTP answer.
func (f *frontFixture) run(t *testing.T, front *Front, vars map[string]string, body io.Reader) *httptest.ResponseRecorder {
	t.Helper()
	environ := func() []string {
		var out []string
		for k, v := range vars {
			out = append(out, k+"="+v)
		}
		return out
	}
	getenv := func(k string) string { return vars[k] }
	front.Getenv, front.Environ = getenv, environ
	front.PathInfo, front.ScriptName, front.RequestURI = getenv("PATH_INFO"), getenv("SCRIPT_NAME"), getenv("REQUEST_URI")
	if front.Auth == nil {
		front.Auth = DSMAuth{AuthenticateCGI: f.env.AuthenticateCGI, LoginCGI: f.env.LoginCGI, IDTool: f.env.IDTool,
			Environ: func() []string { return append(environ(), "STANDIN_LOG="+f.log) }}
	}
	if body == nil {
		body = strings.NewReader("")
	}
	var out bytes.Buffer
	if err := Serve(front, body, &out); err != nil {
		t.Fatalf("serve: %v", err)
	}
	return fronttest.ParseCGI(t, out.Bytes())
}

func errorCode(t *testing.T, w *httptest.ResponseRecorder) (string, string) {
	t.Helper()
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type %q", ct)
	}
	return body.Error.Code, body.Error.Message
}

func TestFrontRefusesWithoutAdministrator(t *testing.T) {
	f := newFrontFixture(t)
	for name, cookie := range map[string]string{"no session": "", "expired session": "id=gone", "non-administrator": "id=alice-session"} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/webman/3rdparty/forgebox/index.cgi/api/v1/status", nil)
			if cookie != "" {
				r.Header.Set("Cookie", cookie)
			}
			w := f.serve(t, r, "/api/v1/status")
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", w.Code, w.Body)
			}
			code, message := errorCode(t, w)
			if code != "unauthorized" {
				t.Errorf("code %q", code)
			}
			if name == "non-administrator" && !strings.Contains(message, "alice") {
				t.Errorf("message %q does not name the user", message)
			}
		})
	}
	if n := f.ctrl.count(); n != 0 {
		t.Errorf("%d requests reached the controller", n)
	}
}

func TestFrontProxiesAdministrator(t *testing.T) {
	f := newFrontFixture(t)
	r := httptest.NewRequest("POST", "/webman/3rdparty/forgebox/index.cgi/api/v1/up?x=1&SynoToken=tok-admin&lang=chs",
		strings.NewReader(`{"why":"test"}`))
	r.Host = "nas.example:5001"
	r.Header.Set("Cookie", "id=admin-session; smid=abc")
	r.Header.Set("Authorization", "Basic c2VjcmV0")
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json")
	r.Header.Set("Origin", "https://nas.example:5001")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.Header.Set("X-Forgebox-CSRF", "1")
	r.Header.Set("X-Forgebox-User", "mallory")      // spoofed: the front decides who it is
	r.Header.Set("X-Forgebox-Front-Secret", "nope") // spoofed
	r.Header.Set("X-Syno-Token", "tok-admin")
	r.Header.Set("X-Other", "dropped")
	w := f.serve(t, r, "/api/v1/up")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	got, body := f.ctrl.last(t)
	if got.Method != "POST" || got.URL.Path != "/api/v1/up" || got.URL.RawQuery != "x=1&lang=chs" {
		t.Errorf("controller got %s %s?%s", got.Method, got.URL.Path, got.URL.RawQuery)
	}
	if body != `{"why":"test"}` {
		t.Errorf("body %q", body)
	}
	want := map[string]string{
		"X-Forgebox-Front-Secret": f.secret, "X-Forgebox-User": "admin", "X-Forgebox-Lang": "chs",
		"X-Forgebox-Csrf": "1", "Content-Type": "application/json", "Accept": "application/json",
		"Origin": "https://nas.example:5001", "Sec-Fetch-Site": "same-origin",
		"X-Forwarded-Host": "nas.example:5001",
		"Cookie":           "", "Authorization": "", "X-Syno-Token": "", "X-Other": "",
	}
	for k, v := range want {
		if g := got.Header.Get(k); g != v {
			t.Errorf("controller got %s %q, want %q", k, g, v)
		}
	}
	if strings.Contains(got.URL.RawQuery, "SynoToken") {
		t.Error("DSM's token reached the controller")
	}
	// With the token in the request, DSM's authenticate.cgi gets it straight away.
	log, _ := os.ReadFile(f.log)
	if !strings.Contains(string(log), "authenticate.cgi QUERY_STRING=SynoToken=tok-admin REQUEST_METHOD=GET") {
		t.Errorf("authenticate.cgi was not given the token:\n%s", log)
	}
}

// TestFrontSynoTokenFromLogin: a request without the token (a page's own asset or API call)
// gets it from login.cgi for its session before authenticate.cgi runs.
func TestFrontSynoTokenFromLogin(t *testing.T) {
	f := newFrontFixture(t)
	r := httptest.NewRequest("GET", "/webman/3rdparty/forgebox/index.cgi/assets/app.js", nil)
	r.Header.Set("Cookie", "id=admin-session")
	r.Header.Set("X-Forgebox-Lang", "enu")
	w := f.serve(t, r, "/assets/app.js")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	got, _ := f.ctrl.last(t)
	if got.URL.Path != "/assets/app.js" || got.Header.Get("X-Forgebox-Lang") != "enu" {
		t.Errorf("controller got %s lang %q", got.URL.Path, got.Header.Get("X-Forgebox-Lang"))
	}
	log, _ := os.ReadFile(f.log)
	if !strings.Contains(string(log), "login.cgi REQUEST_METHOD=GET\nauthenticate.cgi QUERY_STRING=SynoToken=tok-admin") {
		t.Errorf("the SynoToken step did not run as expected:\n%s", log)
	}
}

func TestFrontResponses(t *testing.T) {
	f := newFrontFixture(t)
	f.ctrl.handler = func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "forgebox_session", Value: "x"})
		w.Header().Set("Location", "/login")
		w.Header().Set("X-Kept", "yes")
		w.WriteHeader(http.StatusSeeOther)
	}
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Cookie", "id=admin-session")
	w := f.serve(t, r, "/")
	if w.Code != http.StatusSeeOther || w.Header().Get("Set-Cookie") != "" || w.Header().Get("X-Kept") != "yes" {
		t.Errorf("status %d, Set-Cookie %q, X-Kept %q", w.Code, w.Header().Get("Set-Cookie"), w.Header().Get("X-Kept"))
	}
	if loc := w.Header().Get("Location"); loc != "/webman/3rdparty/forgebox/index.cgi/login" {
		t.Errorf("Location %q, want it below index.cgi", loc)
	}
}

func TestFrontTrailingSlashRedirect(t *testing.T) {
	f := newFrontFixture(t)
	r := httptest.NewRequest("GET", "/webman/3rdparty/forgebox/index.cgi?lang=enu", nil)
	w := f.serve(t, r, "")
	if w.Code != http.StatusFound || w.Header().Get("Location") != "/webman/3rdparty/forgebox/index.cgi/?lang=enu" {
		t.Errorf("status %d Location %q", w.Code, w.Header().Get("Location"))
	}
}

func TestFrontControllerTrouble(t *testing.T) {
	f := newFrontFixture(t)
	r := func() *http.Request {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("Cookie", "id=admin-session")
		return r
	}
	// No front secret yet: the controller has never started.
	os.Remove(filepath.Join(f.env.DataDir, "front.secret"))
	w := f.serve(t, r(), "/api/v1/status")
	if code, _ := errorCode(t, w); w.Code != http.StatusServiceUnavailable || code != "controller_unavailable" {
		t.Errorf("without a secret: %d %s", w.Code, code)
	}
	// The controller does not answer.
	os.WriteFile(filepath.Join(f.env.DataDir, "front.secret"), []byte(f.secret), 0o640)
	f.env.ControllerURL = "http://127.0.0.1:1"
	w = f.serve(t, r(), "/api/v1/status")
	if code, _ := errorCode(t, w); w.Code != http.StatusBadGateway || code != "controller_unreachable" {
		t.Errorf("controller down: %d %s", w.Code, code)
	}
}

// serveCGIEnv runs one request through the front as a CGI process gets it, from these CGI
// variables over the defaults.
func (f *frontFixture) serveCGIEnv(t *testing.T, vars map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	m := map[string]string{"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "nas.example:5001",
		"HTTP_COOKIE": "id=admin-session", "REMOTE_ADDR": "192.0.2.7"}
	for k, v := range vars {
		m[k] = v
	}
	front := NewFront(f.env, func(k string) string { return m[k] })
	front.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	front.Auth = nil // the stand-ins, with this request's environment (run)
	return f.run(t, front, m, nil)
}

// TestFrontRouting runs the front with each combination of the CGI variables DSM may set (only
// PATH_INFO; only REQUEST_URI; both; neither), for the app window's first page (exactly
// index.cgi, then what a redirect points to) and an API call. A redirect is followed the way
// the same DSM would hand it back; more than one is a loop.
func TestFrontRouting(t *testing.T) {
	const script = "/webman/3rdparty/forgebox/index.cgi"
	// cgiVars is what DSM would set for a request of uri, in each combination.
	cgiVars := map[string]func(uri string) map[string]string{
		"only PATH_INFO": func(uri string) map[string]string {
			p, q, _ := strings.Cut(uri, "?")
			return map[string]string{"PATH_INFO": strings.TrimPrefix(p, script), "QUERY_STRING": q}
		},
		"only REQUEST_URI": func(uri string) map[string]string {
			_, q, _ := strings.Cut(uri, "?")
			return map[string]string{"REQUEST_URI": uri, "QUERY_STRING": q}
		},
		"both": func(uri string) map[string]string {
			p, q, _ := strings.Cut(uri, "?")
			return map[string]string{"PATH_INFO": strings.TrimPrefix(p, script), "SCRIPT_NAME": script, "REQUEST_URI": uri, "QUERY_STRING": q}
		},
		"neither": func(uri string) map[string]string {
			_, q, _ := strings.Cut(uri, "?")
			return map[string]string{"QUERY_STRING": q}
		},
	}
	for name, vars := range cgiVars {
		for _, c := range []struct{ uri, wantPath, wantQuery string }{
			{script + "?lang=enu", "/", "lang=enu"},
			{script + "/?lang=enu", "/", "lang=enu"},
			{script + "/api/v1/status?x=1", "/api/v1/status", "x=1"},
		} {
			if name == "neither" && c.wantPath != "/" {
				continue // nothing tells the path: see the next test
			}
			t.Run(name+" "+c.uri, func(t *testing.T) {
				f := newFrontFixture(t)
				uri := c.uri
				redirects := 0
				for {
					w := f.serveCGIEnv(t, vars(uri))
					if w.Code != http.StatusFound {
						if w.Code != http.StatusOK {
							t.Fatalf("status %d: %s", w.Code, w.Body)
						}
						break
					}
					redirects++
					loc := w.Header().Get("Location")
					if redirects > 1 || loc == uri {
						t.Fatalf("redirect loop: %s -> %s (%d redirects)", uri, loc, redirects)
					}
					if !strings.HasPrefix(loc, script+"/") {
						t.Fatalf("redirected to %q, not below index.cgi/", loc)
					}
					uri = loc
				}
				got, _ := f.ctrl.last(t)
				if got.URL.Path != c.wantPath || got.URL.RawQuery != c.wantQuery {
					t.Errorf("controller got %s?%s, want %s?%s", got.URL.Path, got.URL.RawQuery, c.wantPath, c.wantQuery)
				}
				if f.ctrl.count() != 1 {
					t.Errorf("%d requests reached the controller", f.ctrl.count())
				}
			})
		}
	}
}

// TestFrontRoutingNeither: with neither PATH_INFO nor REQUEST_URI, the front cannot know the
// path; it serves the app's root and never redirects (which could only loop).
func TestFrontRoutingNeither(t *testing.T) {
	f := newFrontFixture(t)
	w := f.serveCGIEnv(t, map[string]string{})
	if w.Code != http.StatusOK {
		t.Fatalf("status %d, Location %q", w.Code, w.Header().Get("Location"))
	}
	if got, _ := f.ctrl.last(t); got.URL.Path != "/" {
		t.Errorf("controller got %s", got.URL.Path)
	}
}

// TestFrontLocationWithoutScriptName: a controller redirect stays below index.cgi when DSM sets
// no SCRIPT_NAME.
func TestFrontLocationWithoutScriptName(t *testing.T) {
	f := newFrontFixture(t)
	f.ctrl.handler = func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/login", http.StatusSeeOther) }
	w := f.serveCGIEnv(t, map[string]string{"REQUEST_URI": "/webman/3rdparty/forgebox/index.cgi/x"})
	if loc := w.Header().Get("Location"); w.Code != http.StatusSeeOther || loc != "/webman/3rdparty/forgebox/index.cgi/login" {
		t.Errorf("status %d Location %q", w.Code, loc)
	}
}

// adminAuth lets everyone in as admin: for tests of what the front does after the login check.
type adminAuth struct{}

func (adminAuth) User(context.Context, *Request) (string, error) { return "admin", nil }
func (adminAuth) IsAdmin(context.Context, string) (bool, error)  { return true, nil }

// TestFrontPermissionProblem: when DSM runs index.cgi as a user that cannot read the package's
// files, the answer says so, with the effective uid, instead of "the controller has not
// started". As root (who reads everything) the test runs the front in a child process as
// nobody.
func TestFrontPermissionProblem(t *testing.T) {
	if os.Getenv("FORGEBOX_TEST_FRONT_AS_CHILD") == "1" {
		front := &Front{Env: LoadEnv(os.Getenv), Auth: adminAuth{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		w := (&frontFixture{}).run(t, front, map[string]string{"REQUEST_METHOD": "GET", "PATH_INFO": "/api/v1/status"}, nil)
		fmt.Printf("STATUS %d\n%s", w.Code, w.Body)
		return
	}
	f := newFrontFixture(t)
	uid := os.Geteuid()
	var status int
	var body string
	if uid != 0 {
		os.Chmod(f.env.DataDir, 0)
		defer os.Chmod(f.env.DataDir, 0o700)
		front := &Front{Env: f.env, Auth: adminAuth{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		w := f.run(t, front, map[string]string{"REQUEST_METHOD": "GET", "PATH_INFO": "/api/v1/status"}, nil)
		status, body = w.Code, w.Body.String()
	} else {
		uid = 65534
		dir, err := os.MkdirTemp("", "forgebox-front-test-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		os.Chmod(dir, 0o755)
		self, _ := os.Executable()
		bin := filepath.Join(dir, "front.test")
		if out, err := exec.Command("cp", self, bin).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
		cmd := exec.Command(bin, "-test.run", "^TestFrontPermissionProblem$")
		cmd.Env = []string{"FORGEBOX_TEST_FRONT_AS_CHILD=1", EnvPkgRoot + "=" + f.env.PkgRoot, EnvControllerURL + "=" + f.env.ControllerURL}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child as nobody: %v\n%s", err, out)
		}
		s := string(out)
		i := strings.Index(s, "STATUS ")
		if i < 0 {
			t.Fatalf("child said:\n%s", s)
		}
		fmt.Sscanf(s[i:], "STATUS %d", &status)
		body = s[i:]
	}
	if status != http.StatusInternalServerError || !strings.Contains(body, `"front_permission"`) ||
		!strings.Contains(body, fmt.Sprintf("uid %d", uid)) || strings.Contains(body, "has not started") {
		t.Errorf("status %d: %s", status, body)
	}
	if f.ctrl.count() != 0 {
		t.Error("the request reached the controller")
	}
}

// TestFrontControllerPage: while the controller does not answer, the app window shows that,
// and that the package still runs; never "stopped".
func TestFrontControllerPage(t *testing.T) {
	f := newFrontFixture(t)
	f.env.ControllerURL = "http://127.0.0.1:1"
	os.WriteFile(f.env.StartedMarker(), []byte("x"), 0o644)
	r := httptest.NewRequest("GET", "/webman/3rdparty/forgebox/index.cgi/?lang=enu", nil)
	r.Header.Set("Cookie", "id=admin-session")
	r.Header.Set("Accept", "text/html,application/xhtml+xml")
	w := f.serve(t, r, "/")
	body := w.Body.String()
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(body, "not answering") || strings.Contains(strings.ToLower(body), "stopped") ||
		!strings.Contains(body, `http-equiv="refresh"`) || w.Header().Get("X-Forgebox-Package-Started") != "yes" {
		t.Errorf("%d %v\n%s", w.Code, w.Header(), body)
	}
	// The web app's own API calls still get JSON.
	r = httptest.NewRequest("GET", "/webman/3rdparty/forgebox/index.cgi/api/v1/status", nil)
	r.Header.Set("Cookie", "id=admin-session")
	r.Header.Set("Accept", "application/json")
	w = f.serve(t, r, "/api/v1/status")
	if code, _ := errorCode(t, w); w.Code != http.StatusBadGateway || code != "controller_unreachable" {
		t.Errorf("API call: %d %s", w.Code, code)
	}
}

// TestFrontFindsTheRecordedDataDir: with front.secret not in the package's data dir, the front
// reads it from the data dir prestart recorded (a hand-edited data_dir); without a record it
// says the controller has not started.
func TestFrontFindsTheRecordedDataDir(t *testing.T) {
	f := newFrontFixture(t)
	os.Remove(filepath.Join(f.env.DataDir, "front.secret"))
	r := func() *http.Request {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("Cookie", "id=admin-session")
		return r
	}
	if code, _ := errorCode(t, f.serve(t, r(), "/api/v1/status")); code != "controller_unavailable" {
		t.Fatalf("without the secret and a record: %s", code)
	}
	elsewhere := filepath.Join(t.TempDir(), "data")
	os.MkdirAll(elsewhere, 0o700)
	os.WriteFile(filepath.Join(elsewhere, "front.secret"), []byte(f.secret+"\n"), 0o640)
	os.WriteFile(filepath.Join(f.env.VarDir, DataDirRecordName), []byte(elsewhere+"\n"), 0o644)
	if w := f.serve(t, r(), "/api/v1/status"); w.Code != http.StatusOK {
		t.Fatalf("with the record: %d %s", w.Code, w.Body)
	}
	if got, _ := f.ctrl.last(t); got.Header.Get(HeaderFrontSecret) != f.secret {
		t.Errorf("the controller got secret %q", got.Header.Get(HeaderFrontSecret))
	}
}

// TestFrontStreamsTheAnswer: a progress stream's pieces reach DSM as the controller sends
// them (chunked, flushed), not when it ends; the answer's hop-by-hop headers stay behind.
func TestFrontStreamsTheAnswer(t *testing.T) {
	f := newFrontFixture(t)
	next := make(chan struct{})
	f.ctrl.handler = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte("data: first\n\n"))
		w.(http.Flusher).Flush()
		<-next
		w.Write([]byte("data: second\n\n"))
	}
	pr, pw := io.Pipe()
	vars := map[string]string{"REQUEST_METHOD": "GET", "PATH_INFO": "/api/v1/events", "HTTP_COOKIE": "id=admin-session",
		"HTTP_X_SYNO_TOKEN": "tok-admin", "REMOTE_ADDR": "192.0.2.7"}
	front := &Front{Env: f.env, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), PathInfo: "/api/v1/events",
		Getenv: func(k string) string { return vars[k] }, Environ: func() []string {
			var out []string
			for k, v := range vars {
				out = append(out, k+"="+v)
			}
			return out
		}}
	front.Auth = DSMAuth{AuthenticateCGI: f.env.AuthenticateCGI, LoginCGI: f.env.LoginCGI, IDTool: f.env.IDTool, Environ: front.Environ}
	done := make(chan error, 1)
	go func() { err := Serve(front, strings.NewReader(""), pw); pw.Close(); done <- err }()
	br := bufio.NewReader(pr)
	var head []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("answer broke off in its head: %v %q", err, head)
		}
		if line = strings.TrimRight(line, "\r\n"); line == "" {
			break
		}
		head = append(head, line)
	}
	if !slices.Contains(head, "Status: 200 OK") || !slices.Contains(head, "Content-Type: text/event-stream") {
		t.Errorf("head %q", head)
	}
	for _, h := range head {
		if strings.HasPrefix(h, "Connection") || strings.HasPrefix(h, "Transfer-Encoding") {
			t.Errorf("hop-by-hop header passed on: %q", h)
		}
	}
	// The first piece arrives while the controller still holds the second back.
	first, err := br.ReadString('\n')
	if err != nil || first != "data: first\n" {
		t.Fatalf("first piece %q, %v", first, err)
	}
	close(next)
	rest, _ := io.ReadAll(br)
	if string(rest) != "\ndata: second\n\n" {
		t.Errorf("rest %q", rest)
	}
	if err := <-done; err != nil {
		t.Error(err)
	}
}

// TestFrontLinksLittle: index.cgi's binary links neither the config parser nor the Docker
// client, gin, pgx, the rest of package dsm, nor net/http (whose TLS and HTTP/2 initialise
// at every start), net or net/textproto: what the app window's every request would pay for
// (bench/README.md).
func TestFrontLinksLittle(t *testing.T) {
	for _, tags := range []string{"", "forgebox_testhooks"} {
		out, err := exec.Command("go", "list", "-tags", tags, "-deps", "github.com/forgebox/forgebox/service/cmd/forgebox-cgi").CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		deps := strings.Fields(string(out))
		if !slices.Contains(deps, "github.com/forgebox/forgebox/service/internal/dsm/front") {
			t.Fatalf("forgebox-cgi does not link the front? %q", deps)
		}
		// Each banned path, and every package below it.
		banned := []string{"github.com/forgebox/forgebox/service/internal/config", "github.com/BurntSushi/toml",
			"github.com/docker", "github.com/moby", "github.com/gin-gonic", "github.com/jackc", "github.com/google/go-containerregistry",
			"github.com/opencontainers", "net/http", "crypto/tls"}
		// These alone (net/url and net/netip stay): the net package's poller and resolver and
		// textproto's table of common header names initialise at start or on first use.
		bannedAlone := []string{"net", "net/textproto"}
		for _, d := range deps {
			if d == "github.com/forgebox/forgebox/service/internal/dsm" {
				t.Errorf("forgebox-cgi (tags %q) links the whole of package dsm", tags)
			}
			if slices.Contains(bannedAlone, d) {
				t.Errorf("forgebox-cgi (tags %q) links %s", tags, d)
			}
			for _, b := range banned {
				if d == b || strings.HasPrefix(d, b+"/") {
					t.Errorf("forgebox-cgi (tags %q) links %s", tags, d)
				}
			}
		}
	}
}

// TestDialAddresses: the front reaches the controller by an IP address or localhost; a host
// name it would have to resolve is refused with a message that says so.
func TestDialAddresses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	for _, addr := range []string{"127.0.0.1:" + port, "localhost:" + port, "[::ffff:127.0.0.1]:" + port} {
		c, err := dial(addr, time.Second)
		if err != nil {
			t.Errorf("dial %s: %v", addr, err)
			continue
		}
		c.Close()
	}
	for addr, want := range map[string]string{"nas.example:8470": "by an IP address", "127.0.0.1": "host:port", "127.0.0.1:x": "bad port"} {
		if _, err := dial(addr, time.Second); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("dial %s: %v, want %q", addr, err, want)
		}
	}
}
