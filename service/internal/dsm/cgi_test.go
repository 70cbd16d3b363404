package dsm

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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

// newFrontFixture lays out a package root with a config and front.secret, stand-ins of DSM's
// tools, and a fake controller.
func newFrontFixture(t *testing.T) *frontFixture {
	t.Helper()
	dir := t.TempDir()
	f := &frontFixture{ctrl: &fakeController{}, log: filepath.Join(dir, "standin.log"), secret: "front-secret-0123456789abcdef"}
	srv := httptest.NewServer(f.ctrl)
	t.Cleanup(srv.Close)
	f.standin = writeStandins(t, dir)
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

// serve runs one request through the front, with the CGI environment the stand-ins read.
func (f *frontFixture) serve(t *testing.T, r *http.Request, pathInfo string) *httptest.ResponseRecorder {
	t.Helper()
	env := map[string]string{}
	for k, v := range f.cgiEnv {
		env[k] = v
	}
	if c := r.Header.Get("Cookie"); c != "" {
		env["HTTP_COOKIE"] = c
	}
	front := &Front{
		Env: f.env,
		Auth: DSMAuth{AuthenticateCGI: f.env.AuthenticateCGI, LoginCGI: f.env.LoginCGI, IDTool: f.env.IDTool,
			Environ: func() []string {
				var out []string
				for k, v := range env {
					out = append(out, k+"="+v)
				}
				return out
			}},
		Log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		PathInfo:   pathInfo,
		ScriptName: "/webman/3rdparty/forgebox/index.cgi",
		RequestURI: r.RequestURI,
		SessionTTL: f.ttl,
	}
	w := httptest.NewRecorder()
	front.ServeHTTP(w, r)
	return w
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

func TestIsCGIRequest(t *testing.T) {
	env := func(gw string) func(string) string {
		return func(k string) string {
			if k == "GATEWAY_INTERFACE" {
				return gw
			}
			return ""
		}
	}
	for _, c := range []struct {
		args []string
		gw   string
		want bool
	}{
		{[]string{"/usr/syno/synoman/webman/3rdparty/forgebox/index.cgi"}, "CGI/1.1", true},
		{[]string{"index.cgi"}, "", true},
		{[]string{"/var/packages/forgebox/target/bin/forgebox"}, "CGI/1.1", true},
		{[]string{"forgebox", "status"}, "CGI/1.1", false},
		{[]string{"forgebox"}, "", false},
	} {
		if got := IsCGIRequest(c.args, env(c.gw)); got != c.want {
			t.Errorf("IsCGIRequest(%v, %q) = %v", c.args, c.gw, got)
		}
	}
}

// serveCGIEnv runs one request through the front as a CGI process gets it: the request built
// from the CGI variables (as net/http/cgi does) and the front's routing from the same ones.
func (f *frontFixture) serveCGIEnv(t *testing.T, vars map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	m := map[string]string{"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "nas.example:5001",
		"HTTP_COOKIE": "id=admin-session", "REMOTE_ADDR": "192.0.2.7"}
	for k, v := range vars {
		m[k] = v
	}
	r, err := cgi.RequestFromMap(m)
	if err != nil {
		t.Fatalf("request from %v: %v", m, err)
	}
	front := NewFront(f.env, func(k string) string { return m[k] })
	front.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	front.Environ = func() []string {
		var out []string
		for k, v := range m {
			out = append(out, k+"="+v)
		}
		return out
	}
	front.Auth = DSMAuth{AuthenticateCGI: f.env.AuthenticateCGI, LoginCGI: f.env.LoginCGI, IDTool: f.env.IDTool,
		Environ: func() []string {
			out := []string{"STANDIN_LOG=" + f.log}
			for k, v := range m {
				out = append(out, k+"="+v)
			}
			return out
		}}
	w := httptest.NewRecorder()
	front.ServeHTTP(w, r.WithContext(t.Context()))
	return w
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

func (adminAuth) User(context.Context, *http.Request) (string, error) { return "admin", nil }
func (adminAuth) IsAdmin(context.Context, string) (bool, error)       { return true, nil }

// TestFrontPermissionProblem: when DSM runs index.cgi as a user that cannot read the package's
// files, the answer says so, with the effective uid, instead of "the controller has not
// started". As root (who reads everything) the test runs the front in a child process as
// nobody.
func TestFrontPermissionProblem(t *testing.T) {
	if os.Getenv("FORGEBOX_TEST_FRONT_AS_CHILD") == "1" {
		front := &Front{Env: LoadEnv(os.Getenv), Auth: adminAuth{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), PathInfo: "/api/v1/status"}
		w := httptest.NewRecorder()
		front.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil))
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
		front := &Front{Env: f.env, Auth: adminAuth{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), PathInfo: "/api/v1/status"}
		w := httptest.NewRecorder()
		front.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil))
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
		bin := filepath.Join(dir, "dsm.test")
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
