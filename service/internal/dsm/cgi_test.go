package dsm

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/forgebox/forgebox/service/internal/dsm/front"
	"github.com/forgebox/forgebox/service/internal/dsm/front/fronttest"
)

// The front's own tests are in package front; these run it as the forgebox binary serves it
// (NewFront: with the diagnostics report), against a fake controller that counts requests.

type fakeController struct {
	mu sync.Mutex
	n  int
}

func (c *fakeController) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"ok":true}`))
}

func (c *fakeController) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

type frontFixture struct {
	env    Env
	ctrl   *fakeController
	log    string
	secret string
}

// newFrontFixture lays out a package root with front.secret, stand-ins of DSM's tools, and a
// fake controller.
func newFrontFixture(t *testing.T) *frontFixture {
	t.Helper()
	dir := t.TempDir()
	f := &frontFixture{ctrl: &fakeController{}, log: filepath.Join(dir, "standin.log"), secret: "front-secret-0123456789abcdef"}
	srv := httptest.NewServer(f.ctrl)
	t.Cleanup(srv.Close)
	standin := writeStandins(t, dir)
	root := filepath.Join(dir, "var/packages/forgebox") // laid out as on a NAS whose "/" is dir
	vars := map[string]string{EnvPkgRoot: root, EnvControllerURL: srv.URL}
	f.env = LoadEnv(func(k string) string { return vars[k] })
	f.env.AuthenticateCGI, f.env.LoginCGI, f.env.IDTool = standin["authenticate.cgi"], standin["login.cgi"], standin["id"]
	os.MkdirAll(f.env.DataDir, 0o700)
	os.WriteFile(filepath.Join(f.env.DataDir, "front.secret"), []byte(f.secret), 0o640)
	return f
}

// serveCGIEnv runs one request through the forgebox binary's front as a CGI process gets it,
// from these CGI variables over the defaults, and reads its answer back.
func (f *frontFixture) serveCGIEnv(t *testing.T, vars map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	m := map[string]string{"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "nas.example:5001",
		"HTTP_COOKIE": "id=admin-session", "REMOTE_ADDR": "192.0.2.7", "SCRIPT_NAME": "/webman/3rdparty/forgebox/index.cgi"}
	for k, v := range vars {
		m[k] = v
	}
	environ := func() []string {
		var out []string
		for k, v := range m {
			out = append(out, k+"="+v)
		}
		return out
	}
	fr := NewFront(f.env, func(k string) string { return m[k] })
	fr.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	fr.Environ = environ
	fr.Auth = front.DSMAuth{AuthenticateCGI: f.env.AuthenticateCGI, LoginCGI: f.env.LoginCGI, IDTool: f.env.IDTool,
		Environ: func() []string { return append(environ(), "STANDIN_LOG="+f.log) }}
	var out bytes.Buffer
	if err := front.Serve(fr, strings.NewReader(""), &out); err != nil {
		t.Fatalf("serve: %v", err)
	}
	return fronttest.ParseCGI(t, out.Bytes())
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
