package api_test

// Fuzz targets for every request body the API reads: the login (JSON), the config (JSON merge and
// TOML), and runner profiles (create and update). Each one runs the real handler chain (auth,
// CSRF guard, size limit, handler) in process, with an engine that never answers, and checks
// what must hold for any input: no panic (the server's recover middleware would turn one into a
// 500 and a "panic in handler" log line, so both are failures), an answer in the API's error
// shape with a known code, and a config file on disk that is either the old one, byte for byte,
// or a valid new one that the server also serves.
//
//	go test -run XXX -fuzz FuzzLoginBody -fuzztime 10s ./service/internal/api/
//
// (likewise FuzzConfigJSON, FuzzConfigTOML, FuzzProfileBody). Seeds run with every go test.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/forgebox/forgebox/service/internal/api"
	"github.com/forgebox/forgebox/service/internal/config"
)

// fuzzServer is one controller per fuzz process, on a config file of its own.
type fuzzServer struct {
	t       testing.TB
	srv     *api.Server
	h       http.Handler
	token   string
	cfgPath string
	orig    []byte // the config file as it was at the start
	session *http.Cookie
	logMu   sync.Mutex
	logs    bytes.Buffer
}

func (f *fuzzServer) Write(p []byte) (int, error) {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	return f.logs.Write(p)
}

func newFuzzServer(f testing.TB) *fuzzServer {
	f.Helper()
	fs := &fuzzServer{t: f}
	cfg := config.Default()
	cfg.Stack.Name = "fbfuzz"
	cfg.Stack.DataDir = f.TempDir()
	fs.cfgPath = filepath.Join(f.TempDir(), "forgebox.toml")
	if err := config.Save(fs.cfgPath, cfg); err != nil {
		f.Fatal(err)
	}
	var err error
	if fs.orig, err = os.ReadFile(fs.cfgPath); err != nil {
		f.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(fs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fs.srv, err = api.New(api.Options{Config: cfg, ConfigPath: fs.cfgPath, Logger: logger, Version: "fuzz",
		Connect: func(context.Context) (api.Engine, error) { return nil, errors.New("fuzz: no engine") }})
	if err != nil {
		f.Fatal(err)
	}
	fs.h = fs.srv.Handler()
	creds, err := api.EnsureCredentials(cfg.Stack.DataDir, nil)
	if err != nil {
		f.Fatal(err)
	}
	fs.token = creds.AdminToken
	rec := fs.do(f, http.MethodPost, "/api/v1/login", "application/json", []byte(`{"token":"`+fs.token+`"}`), asNobody)
	for _, c := range rec.Result().Cookies() {
		if c.Name == api.SessionCookie {
			fs.session = c
		}
	}
	if fs.session == nil {
		f.Fatalf("login: HTTP %d %s", rec.Code, rec.Body)
	}
	return fs
}

// How a request proves itself.
type fuzzAuth int

const (
	asScript  fuzzAuth = iota // the admin token as a bearer token: no CSRF header needed
	asBrowser                 // the session cookie and the CSRF header, as the web app sends them
	asNobody                  // only the CSRF header (the login page)
)

// do sends one request through the whole handler chain.
func (fs *fuzzServer) do(t testing.TB, method, path, ctype string, body []byte, who fuzzAuth) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if method == http.MethodPut && path == "/api/v1/config" {
		req.Header.Set("If-Match", "*") // what is fuzzed is the body
	}
	switch who {
	case asScript:
		req.Header.Set("Authorization", "Bearer "+fs.token)
	case asBrowser:
		req.Header.Set(api.HeaderCSRF, "1")
		req.AddCookie(fs.session)
	case asNobody:
		req.Header.Set(api.HeaderCSRF, "1")
	}
	fs.logMu.Lock()
	fs.logs.Reset()
	fs.logMu.Unlock()
	rec := httptest.NewRecorder()
	fs.h.ServeHTTP(rec, req)
	fs.logMu.Lock()
	logs := fs.logs.String()
	fs.logMu.Unlock()
	if strings.Contains(logs, "panic") || rec.Code >= 500 {
		t.Fatalf("%s %s with %q: HTTP %d\n%s\nlog:\n%s", method, path, body, rec.Code, rec.Body, logs)
	}
	return rec
}

// fuzzKnownCodes are the API's error codes a body can earn.
var fuzzKnownCodes = map[string]bool{
	api.CodeInvalidRequest: true, api.CodeInvalidConfig: true, api.CodeTooLarge: true,
	api.CodeUnauthorized: true, api.CodeNotFound: true, api.CodeConflict: true, api.CodeForbidden: true,
}

// fuzzCheckError: a refusal is a 4xx in the API's error shape, with a known code and a message.
func fuzzCheckError(t testing.TB, rec *httptest.ResponseRecorder) {
	t.Helper()
	var e api.ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !fuzzKnownCodes[e.Error.Code] || e.Error.Message == "" {
		t.Fatalf("HTTP %d with a body not in the error shape: %v %s", rec.Code, err, rec.Body)
	}
	if e.Error.Code == api.CodeInvalidConfig && len(e.Error.Fields) == 0 {
		t.Fatalf("invalid_config without fields: %s", rec.Body)
	}
}

// checkConfigFile: the file is the old one when the change was refused; otherwise a valid config
// that the server now serves. A change that was taken is undone, so iterations are independent.
func (fs *fuzzServer) checkConfigFile(t testing.TB, accepted bool) {
	t.Helper()
	now, err := os.ReadFile(fs.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if !accepted {
		if !bytes.Equal(now, fs.orig) {
			t.Fatalf("a refused change altered the config file:\n%s", now)
		}
		return
	}
	onDisk, err := config.Parse(now)
	if err != nil {
		t.Fatalf("an accepted change left an invalid config file: %v\n%s", err, now)
	}
	var page api.ConfigPage
	rec := fs.do(t, http.MethodGet, "/api/v1/config", "", nil, asScript)
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	served, _ := config.Encode(page.Config)
	written, _ := config.Encode(onDisk)
	if !bytes.Equal(served, written) {
		t.Fatalf("the server serves another config than the file holds:\n%s\n---\n%s", served, written)
	}
	if page.Config.Stack.DataDir != fs.srvDataDir() {
		t.Fatalf("the data dir changed through the API: %s", page.Config.Stack.DataDir)
	}
	if rec := fs.do(t, http.MethodPut, "/api/v1/config", "application/toml", fs.orig, asScript); rec.Code != http.StatusOK {
		t.Fatalf("restoring the config: HTTP %d %s", rec.Code, rec.Body)
	}
	if now, _ := os.ReadFile(fs.cfgPath); !bytes.Equal(now, fs.orig) {
		t.Fatalf("restoring the config wrote something else:\n%s", now)
	}
}

// reset puts the original config back when an earlier iteration that failed left another one:
// every input starts from the same state, so a failure is the input's own and minimizes to it.
func (fs *fuzzServer) reset(t testing.TB) {
	t.Helper()
	if now, err := os.ReadFile(fs.cfgPath); err == nil && bytes.Equal(now, fs.orig) {
		return
	}
	if rec := fs.do(t, http.MethodPut, "/api/v1/config", "application/toml", fs.orig, asScript); rec.Code != http.StatusOK {
		t.Fatalf("resetting the config: HTTP %d %s", rec.Code, rec.Body)
	}
}

func (fs *fuzzServer) srvDataDir() string {
	c, err := config.Parse(fs.orig)
	if err != nil {
		fs.t.Fatal(err)
	}
	return c.Stack.DataDir
}

// FuzzLoginBody: POST api/v1/login. Only the admin token logs in, and no answer repeats it.
func FuzzLoginBody(f *testing.F) {
	fs := newFuzzServer(f)
	f.Add([]byte(`{"token":"` + fs.token + `"}`))
	f.Add([]byte(`{"token":" ` + fs.token + "\\n" + `"}`))
	f.Add([]byte(`{"token":"wrong"}`))
	f.Add([]byte(`{"token":""}`))
	f.Add([]byte(`{"token":1}`))
	f.Add([]byte(`{"token":"a","extra":true}`))
	f.Add([]byte(`{"token":"a"}{"token":"b"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Add([]byte(``))
	f.Add([]byte(`{"token":"\ud800"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := fs.do(t, http.MethodPost, "/api/v1/login", "application/json", body, asNobody)
		if strings.Contains(rec.Body.String(), fs.token) {
			t.Fatalf("the answer contains the admin token: %s", rec.Body)
		}
		switch rec.Code {
		case http.StatusOK:
			var req struct{ Token string }
			if json.Unmarshal(body, &req) != nil || strings.TrimSpace(req.Token) != fs.token {
				t.Fatalf("logged in without the admin token: %q", body)
			}
			if !strings.Contains(rec.Header().Get("Set-Cookie"), api.SessionCookie+"=") {
				t.Fatal("a login without a session cookie")
			}
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge:
			fuzzCheckError(t, rec)
		default:
			t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
		}
	})
}

// FuzzConfigJSON: PUT api/v1/config with a JSON object merged over the config.
func FuzzConfigJSON(f *testing.F) {
	fs := newFuzzServer(f)
	for _, s := range []string{
		`{}`,
		`{"gitlab":{"http_port":30081}}`,
		`{"gitlab":{"http_port":443}}`,
		`{"gitlab":{"http_port":"80"}}`,
		`{"gitlab":{"host":"localhost"}}`,
		`{"stack":{"data_dir":"/elsewhere"}}`,
		`{"stack":{"name":"other"}}`,
		`{"runner":{"profiles":[{"name":"b","image":"alpine:3","tags":["x"],"concurrency":2}]}}`,
		`{"runner":{"profiles":[{"name":"b","image":"alpine","bogus":1}]}}`,
		`{"runner":{"profiles":"none"}}`,
		`{"nope":1}`,
		`{"gitlab":{"memory":"tiny"},"postgres":{"image":"::"}}`,
		`{"version":2}`,
		`{"gitlab":null}`,
		`[1,2]`,
		`"x"`,
		`{"gitlab":{"http_port":1e999}}`,
		`{"gitlab":{"http_port":30081}} trailing`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fs.reset(t)
		rec := fs.do(t, http.MethodPut, "/api/v1/config", "application/json", body, asBrowser)
		switch rec.Code {
		case http.StatusOK:
			fs.checkConfigFile(t, true)
		case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusConflict, http.StatusRequestEntityTooLarge:
			fuzzCheckError(t, rec)
			fs.checkConfigFile(t, false)
		default:
			t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
		}
	})
}

// FuzzConfigTOML: PUT api/v1/config with a whole config file.
func FuzzConfigTOML(f *testing.F) {
	fs := newFuzzServer(f)
	f.Add(fs.orig)
	f.Add(config.DefaultTOML())
	f.Add([]byte("version = 1\n[gitlab]\nhttp_port = 5000\n"))
	f.Add([]byte("version = 1\n[stack]\ndata_dir = \"/elsewhere\"\n"))
	f.Add([]byte("[gitlab]\nhost = \"localhost\"\nfoo = 1\n"))
	f.Add([]byte("version = \"1\"\n"))
	f.Add([]byte("[[runner.profiles]]\n[[runner.profiles]]\nname = \"b\"\n"))
	f.Add([]byte("= = =\n"))
	f.Add([]byte{0xff, 0xfe, 0x00})
	f.Fuzz(func(t *testing.T, body []byte) {
		fs.reset(t)
		rec := fs.do(t, http.MethodPut, "/api/v1/config", "application/toml", body, asScript)
		switch rec.Code {
		case http.StatusOK:
			fs.checkConfigFile(t, true)
		case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusConflict, http.StatusRequestEntityTooLarge:
			fuzzCheckError(t, rec)
			fs.checkConfigFile(t, false)
		default:
			t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
		}
	})
}

// FuzzProfileBody: POST api/v1/runner/profiles (create) and PUT api/v1/runner/profiles/default
// (update) with one runner profile.
func FuzzProfileBody(f *testing.F) {
	fs := newFuzzServer(f)
	for _, s := range []string{
		`{"name":"arm","image":"alpine:3.22","tags":["arm64"],"run_untagged":false,"concurrency":2}`,
		`{"name":"default","image":"alpine:3.22","tags":["docker"],"run_untagged":true}`,
		`{"name":"x","image":"alpine","tags":["a","a"]}`,
		`{"name":"UPPER","image":"alpine"}`,
		`{"name":"m","image":"alpine","memory":"1q","cpus":"-1"}`,
		`{"name":"m","image":"alpine","memory":"2g","cpus":"1.5","privileged":true}`,
		`{"name":"n","image":"alpine","run_untagged":false,"tags":[]}`,
		`{"name":"n","image":"alpine","concurrency":-5}`,
		`{"name":"n","image":"alpine","tags":"x"}`,
		`{"name":"n","image":"alpine","extra":1}`,
		`{}`,
		`null`,
		`[]`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, update bool) {
		method, path, created := http.MethodPost, "/api/v1/runner/profiles", http.StatusCreated
		if update {
			method, path, created = http.MethodPut, "/api/v1/runner/profiles/default", http.StatusOK
		}
		fs.reset(t)
		rec := fs.do(t, method, path, "application/json", body, asBrowser)
		switch rec.Code {
		case created:
			fs.checkConfigFile(t, true)
		case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusConflict, http.StatusRequestEntityTooLarge:
			fuzzCheckError(t, rec)
			fs.checkConfigFile(t, false)
		default:
			t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
		}
	})
}

// TestConfigJSONProfileDefaults: after a JSON PUT of a profile without "concurrency", the
// controller must run with the config it saved (concurrency 1), not a different one until it
// restarts.
func TestConfigJSONProfileDefaults(t *testing.T) {
	fs := newFuzzServer(t)
	rec := fs.do(t, http.MethodPut, "/api/v1/config", "application/json",
		[]byte(`{"runner":{"profiles":[{"name":"p","image":"alpine:3.22","tags":["x"]}]}}`), asScript)
	if rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d %s", rec.Code, rec.Body)
	}
	var page api.ConfigPage
	if err := json.Unmarshal(fs.do(t, http.MethodGet, "/api/v1/config", "", nil, asScript).Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	onDisk, err := config.Load(fs.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := page.Config.Runner.Profiles[0].Concurrency, onDisk.Runner.Profiles[0].Concurrency; got != want {
		t.Errorf("the controller keeps concurrency %d, the file says %d", got, want)
	}
}
