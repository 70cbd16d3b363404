package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/api"
	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/testenv"
	"github.com/forgebox/forgebox/service/internal/upgrade/standintest"
)

// syncBuffer collects what the server logs and what it answers, for the secret-leak checks.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tee records every response body except the one call allowed to return a secret.
type tee struct {
	http.ResponseWriter
	out io.Writer
}

func (t tee) Write(p []byte) (int, error) {
	t.out.Write(p)
	return t.ResponseWriter.Write(p)
}

func (t tee) Flush() {
	if f, ok := t.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

const revealPath = "/api/v1/gitlab/root-password/reveal"

type harness struct {
	t       testing.TB
	cfg     config.Config
	cfgPath string
	srv     *api.Server
	ts      *httptest.Server
	logs    *syncBuffer
	bodies  *syncBuffer
	creds   api.Credentials
	eng     *engine.Client
}

type harnessOptions struct {
	engine bool // connect to the real engine; otherwise the engine is "unreachable"
	// runnerFor, with the runner stand-in built, runs the stand-in as the runner of that GitLab
	// version (standintest.RunnerImage: it writes that version's job log format).
	runnerFor string
	full      bool // the config runs the whole stack's test images (GitLab and runner stand-ins too)
	// preflight is Options.Preflight.
	preflight func(config.Config) error
	// connect, when set, replaces the engine connection (with engine false).
	connect func(ctx context.Context) (api.Engine, error)
}

// newHarness starts a controller on an httptest server with a config file of its own.
func newHarness(t testing.TB, o harnessOptions) *harness {
	t.Helper()
	h := &harness{t: t, logs: &syncBuffer{}, bodies: &syncBuffer{}}
	var connect func(ctx context.Context) (api.Engine, error)
	if o.engine {
		h.eng = testenv.Engine(t)
		im := testImages(t)
		h.cfg = testenv.Config(t, h.eng, im)
		if o.runnerFor != "" {
			h.cfg.Runner.Image = standintest.RunnerImage(t, im, o.runnerFor)
		}
		connect = func(ctx context.Context) (api.Engine, error) { return engine.Connect(ctx) }
	} else {
		h.cfg = config.Default()
		h.cfg.Stack.Name = "fbapi-" + randHex(4)
		h.cfg.Stack.DataDir = t.TempDir()
		connect = func(ctx context.Context) (api.Engine, error) {
			return nil, errors.New("test: no engine here")
		}
		if o.connect != nil {
			connect = o.connect
		}
	}
	h.cfgPath = filepath.Join(t.TempDir(), "forgebox.toml")
	if err := config.Save(h.cfgPath, h.cfg); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := api.New(api.Options{Config: h.cfg, ConfigPath: h.cfgPath, Logger: logger, Version: "test",
		Connect: connect, StatsEvery: 500 * time.Millisecond, Preflight: o.preflight})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	srv.Start()
	handler := srv.Handler()
	h.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == revealPath {
			handler.ServeHTTP(w, r)
			return
		}
		handler.ServeHTTP(tee{ResponseWriter: w, out: h.bodies}, r)
	}))
	t.Cleanup(func() {
		h.ts.Close()
		srv.Stop(time.Minute)
	})
	h.creds = h.readCreds()
	if o.engine {
		h.waitEngine()
	}
	return h
}

func (h *harness) readCreds() api.Credentials {
	front, err := os.ReadFile(filepath.Join(h.cfg.Stack.DataDir, config.FrontSecretFile))
	if err != nil {
		h.t.Fatal(err)
	}
	admin, err := os.ReadFile(filepath.Join(h.cfg.Stack.DataDir, config.AdminTokenFile))
	if err != nil {
		h.t.Fatal(err)
	}
	return api.Credentials{FrontSecret: string(front), AdminToken: string(admin)}
}

// testImages gives the stack's test images: all four, the GitLab and runner stand-ins
// included. Without them the whole stack cannot come up, so the test skips (fails under
// FORGEBOX_REQUIRE_ENGINE=1) rather than quietly testing PostgreSQL and Redis only.
func testImages(t testing.TB) testenv.Images { return testenv.TestImages(t) }

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (h *harness) waitEngine() {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var st api.Status
		h.do(h.bearer("GET", "/api/v1/status", nil), &st)
		if st.Engine.OK && st.Stack.State != "unknown" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.t.Fatal("the controller did not connect to the engine within 30s")
}

func (h *harness) req(method, path string, body any) *http.Request {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	r, err := http.NewRequest(method, h.ts.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

// front is a request as the DSM front passes it on: the shared secret, the user, the CSRF
// header the web app sends.
func (h *harness) front(method, path string, body any) *http.Request {
	r := h.req(method, path, body)
	r.Header.Set(api.HeaderFrontSecret, h.creds.FrontSecret)
	r.Header.Set(api.HeaderUser, "admin")
	r.Header.Set(api.HeaderCSRF, "1")
	return r
}

// read sets If-Match on a config save to the revision a GET answers now, as the web app sends
// the revision of the settings it shows.
func (h *harness) read(r *http.Request) *http.Request {
	h.t.Helper()
	var page api.ConfigPage
	res, body := h.do(h.front("GET", "/api/v1/config", nil), &page)
	expectStatus(h.t, res, body, http.StatusOK)
	r.Header.Set("If-Match", `"`+page.Revision+`"`)
	return r
}

func (h *harness) bearer(method, path string, body any) *http.Request {
	r := h.req(method, path, body)
	r.Header.Set("Authorization", "Bearer "+h.creds.AdminToken)
	return r
}

// do sends r and decodes a JSON answer into out (when not nil); it returns the response with
// its body read into Body-less form and the raw body.
func (h *harness) do(r *http.Request, out any) (*http.Response, []byte) {
	h.t.Helper()
	return doWith(h.t, http.DefaultClient, r, out)
}

func doWith(t testing.TB, c *http.Client, r *http.Request, out any) (*http.Response, []byte) {
	t.Helper()
	res, err := c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && len(b) > 0 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", r.Method, r.URL.Path, b, err)
		}
	}
	return res, b
}

func newJar(t testing.TB) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func expectStatus(t testing.TB, res *http.Response, body []byte, want int) {
	t.Helper()
	if res.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", res.Request.Method, res.Request.URL.Path, res.StatusCode, want, body)
	}
}

// expectError checks status and the stable error shape.
func expectError(t testing.TB, res *http.Response, body []byte, status int, code string) api.ErrorBody {
	t.Helper()
	expectStatus(t, res, body, status)
	var e api.ErrorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q is not the error shape: %v", body, err)
	}
	if e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("error %+v, want code %q and a message", e.Error, code)
	}
	return e
}

// waitOperation polls the operation until it ends and returns its record.
func (h *harness) waitOperation(id string, timeout time.Duration) api.Operation {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var out struct {
			Operation api.Operation `json:"operation"`
		}
		res, body := h.do(h.bearer("GET", "/api/v1/operations/"+id, nil), &out)
		expectStatus(h.t, res, body, http.StatusOK)
		if out.Operation.State != "running" {
			return out.Operation
		}
		time.Sleep(250 * time.Millisecond)
	}
	h.t.Fatalf("operation %s still running after %s\nlog:\n%s", id, timeout, h.logs.String())
	return api.Operation{}
}

// startOp posts an operation and expects it accepted.
func (h *harness) startOp(path string) api.Operation {
	h.t.Helper()
	var out struct {
		Operation api.Operation `json:"operation"`
	}
	res, body := h.do(h.bearer("POST", path, nil), &out)
	expectStatus(h.t, res, body, http.StatusAccepted)
	return out.Operation
}

func (h *harness) status(fresh bool) api.Status {
	h.t.Helper()
	var st api.Status
	path := "/api/v1/status"
	if fresh {
		path += "?refresh=1"
	}
	res, body := h.do(h.bearer("GET", path, nil), &st)
	expectStatus(h.t, res, body, http.StatusOK)
	return st
}

func (h *harness) component(st api.Status, name string) api.ComponentView {
	for _, c := range st.Components {
		if c.Component == name {
			return c
		}
	}
	h.t.Fatalf("no component %s in status %+v", name, st.Components)
	return api.ComponentView{}
}

// secretValues reads the secret store as it is on disk now and returns each secret leaf value:
// plain values, and the token inside each runner record (kept as JSON, so the record as a whole
// never shows up in output and searching for it would find nothing). The admin token's expiry
// date is kept beside it and is not a secret.
func (h *harness) secretValues() []string {
	h.t.Helper()
	return testenv.SecretLeaves(h.t, h.cfg.Stack.DataDir)
}
