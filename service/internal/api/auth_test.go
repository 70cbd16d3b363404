package api_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/api"
	"github.com/forgebox/forgebox/service/internal/config"
)

func TestCredentialFilesAreCreatedOnce(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	for name, mode := range map[string]os.FileMode{config.FrontSecretFile: 0o640, config.AdminTokenFile: 0o600} {
		p := filepath.Join(h.cfg.Stack.DataDir, name)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
		b, _ := os.ReadFile(p)
		if !hex64.Match(b) {
			t.Errorf("%s holds %q, want 64 hex digits and no newline", name, b)
		}
	}
	if h.creds.FrontSecret == h.creds.AdminToken {
		t.Error("front secret and admin token are the same")
	}
	// A second start keeps them.
	again, err := api.EnsureCredentials(h.cfg.Stack.DataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again != h.creds {
		t.Error("a second start replaced the credentials")
	}
}

func TestAuthentication(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	status := "/api/v1/status"

	t.Run("healthz is the only anonymous endpoint", func(t *testing.T) {
		res, body := h.do(h.req("GET", "/healthz", nil), nil)
		expectStatus(t, res, body, http.StatusOK)
		if strings.TrimSpace(string(body)) != `{"status":"ok"}` {
			t.Errorf("healthz says %s", body)
		}
		for _, p := range []string{status, "/api/v1/config", "/api/v1/events", "/api/v1/doctor", "/api/v1/nope", "/app.js"} {
			res, body := h.do(h.req("GET", p, nil), nil)
			expectError(t, res, body, http.StatusUnauthorized, api.CodeUnauthorized)
		}
		res, body = h.do(h.req("POST", "/api/v1/up", nil), nil)
		expectError(t, res, body, http.StatusUnauthorized, api.CodeUnauthorized)
	})

	t.Run("wrong credentials", func(t *testing.T) {
		wrong := map[string]func(*http.Request){
			"front secret":      func(r *http.Request) { r.Header.Set(api.HeaderFrontSecret, strings.Repeat("0", 64)) },
			"bearer":            func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+strings.Repeat("0", 64)) },
			"basic":             func(r *http.Request) { r.SetBasicAuth("admin", h.creds.AdminToken) },
			"cookie":            func(r *http.Request) { r.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: "v1.1700000000.abcd"}) },
			"front as bearer":   func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+h.creds.FrontSecret) },
			"bearer as front":   func(r *http.Request) { r.Header.Set(api.HeaderFrontSecret, h.creds.AdminToken) },
			"secret with extra": func(r *http.Request) { r.Header.Set(api.HeaderFrontSecret, h.creds.FrontSecret+"0") },
			"wrong secret, right bearer": func(r *http.Request) {
				r.Header.Set(api.HeaderFrontSecret, "nope")
				r.Header.Set("Authorization", "Bearer "+h.creds.AdminToken)
			},
		}
		for name, set := range wrong {
			r := h.req("GET", status, nil)
			set(r)
			res, body := h.do(r, nil)
			if res.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s: status %d, want 401", name, res.StatusCode)
			}
			expectError(t, res, body, http.StatusUnauthorized, api.CodeUnauthorized)
		}
	})

	t.Run("front secret", func(t *testing.T) {
		var st api.Status
		res, body := h.do(h.front("GET", status, nil), &st)
		expectStatus(t, res, body, http.StatusOK)
		if st.Stack.Name != h.cfg.Stack.Name || st.Engine.OK {
			t.Errorf("status %+v: want stack %s and the engine reported unreachable", st.Stack, h.cfg.Stack.Name)
		}
	})

	t.Run("bearer token", func(t *testing.T) {
		res, body := h.do(h.bearer("GET", status, nil), nil)
		expectStatus(t, res, body, http.StatusOK)
	})

	t.Run("login form and cookie", func(t *testing.T) {
		c := newJar(t)
		res, body := doWith(t, c, h.req("GET", "/", nil), nil)
		expectStatus(t, res, body, http.StatusUnauthorized)
		if !bytes.Contains(body, []byte(`id="login-form"`)) {
			t.Fatal("an anonymous visit to / did not get the login page")
		}
		// Wrong token: refused, no cookie.
		r := h.req("POST", "/api/v1/login", map[string]string{"token": "guess"})
		r.Header.Set(api.HeaderCSRF, "1")
		res, body = doWith(t, c, r, nil)
		expectError(t, res, body, http.StatusUnauthorized, api.CodeUnauthorized)
		if len(res.Cookies()) != 0 {
			t.Fatal("a wrong token got a cookie")
		}
		// The login form posts with the CSRF header; without it the login is refused too.
		r = h.req("POST", "/api/v1/login", map[string]string{"token": h.creds.AdminToken})
		res, body = doWith(t, c, r, nil)
		expectError(t, res, body, http.StatusForbidden, api.CodeForbidden)
		r = h.req("POST", "/api/v1/login", map[string]string{"token": h.creds.AdminToken})
		r.Header.Set(api.HeaderCSRF, "1")
		res, body = doWith(t, c, r, nil)
		expectStatus(t, res, body, http.StatusOK)
		ck := sessionCookie(t, res)
		if bytes.Contains(body, []byte(h.creds.AdminToken)) || strings.Contains(ck.Value, h.creds.AdminToken) {
			t.Fatal("the login answer carries the admin token")
		}
		res, body = doWith(t, c, h.req("GET", status, nil), nil)
		expectStatus(t, res, body, http.StatusOK)
		res, body = doWith(t, c, h.req("GET", "/", nil), nil)
		expectStatus(t, res, body, http.StatusOK)
		if !bytes.Contains(body, []byte(`src="app.js"`)) {
			t.Fatal("a logged-in visit to / did not get the app")
		}
		// Logging out ends it.
		r = h.req("POST", "/api/v1/logout", nil)
		r.Header.Set(api.HeaderCSRF, "1")
		res, body = doWith(t, c, r, nil)
		expectStatus(t, res, body, http.StatusOK)
		res, body = doWith(t, c, h.req("GET", status, nil), nil)
		expectError(t, res, body, http.StatusUnauthorized, api.CodeUnauthorized)
	})

	// A copy of the cookie taken before the logout (another tab, a stolen cookie) is refused
	// after it: the cookie jar forgetting it proves nothing.
	t.Run("a cookie replayed after logout is refused", func(t *testing.T) {
		r := h.req("POST", "/api/v1/login", map[string]string{"token": h.creds.AdminToken})
		r.Header.Set(api.HeaderCSRF, "1")
		res, body := h.do(r, nil)
		expectStatus(t, res, body, http.StatusOK)
		copied := sessionCookie(t, res)
		other := h.req("POST", "/api/v1/login", map[string]string{"token": h.creds.AdminToken})
		other.Header.Set(api.HeaderCSRF, "1")
		res, body = h.do(other, nil)
		expectStatus(t, res, body, http.StatusOK)
		otherTab := sessionCookie(t, res)
		withCookie := func(method, path string, ck *http.Cookie) *http.Request {
			r := h.req(method, path, nil)
			r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
			r.Header.Set(api.HeaderCSRF, "1")
			return r
		}
		res, body = h.do(withCookie("GET", status, copied), nil)
		expectStatus(t, res, body, http.StatusOK)

		res, body = h.do(withCookie("POST", "/api/v1/logout", copied), nil)
		expectStatus(t, res, body, http.StatusOK)
		for name, ck := range map[string]*http.Cookie{"the logged-out cookie": copied, "another browser's cookie": otherTab} {
			res, body = h.do(withCookie("GET", status, ck), nil)
			if res.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s replayed after logout: status %d, want 401", name, res.StatusCode)
			}
		}
		// The generation is on disk (0600), so a restart does not bring the cookie back.
		fi, err := os.Stat(filepath.Join(h.cfg.Stack.DataDir, config.SessionGenerationFile))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("session generation file: %v, %v", fi, err)
		}
		again, err := api.New(api.Options{Config: h.cfg, ConfigPath: h.cfgPath})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		again.Handler().ServeHTTP(rec, withCookie("GET", status, copied))
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("after a restart the logged-out cookie gets %d, want 401", rec.Code)
		}
		// A new login still works.
		r = h.req("POST", "/api/v1/login", map[string]string{"token": h.creds.AdminToken})
		r.Header.Set(api.HeaderCSRF, "1")
		res, body = h.do(r, nil)
		expectStatus(t, res, body, http.StatusOK)
		res, body = h.do(withCookie("GET", status, sessionCookie(t, res)), nil)
		expectStatus(t, res, body, http.StatusOK)
	})

	t.Run("login link", func(t *testing.T) {
		c := newJar(t)
		res, body := doWith(t, c, h.req("GET", "/login?token="+h.creds.AdminToken, nil), nil)
		expectStatus(t, res, body, http.StatusSeeOther)
		if loc := res.Header.Get("Location"); loc != "./" {
			t.Errorf("login redirects to %q, want the relative ./", loc)
		}
		sessionCookie(t, res)
		res, body = doWith(t, c, h.req("GET", status, nil), nil)
		expectStatus(t, res, body, http.StatusOK)
		// A wrong token gets the form again, and no cookie.
		c2 := newJar(t)
		res, _ = doWith(t, c2, h.req("GET", "/login?token=nope", nil), nil)
		if res.StatusCode != http.StatusUnauthorized || len(res.Cookies()) != 0 {
			t.Errorf("wrong login link: status %d, cookies %v", res.StatusCode, res.Cookies())
		}
	})

	t.Run("static files behind auth except the login page's", func(t *testing.T) {
		for _, p := range []string{"/login.js", "/style.css", "/i18n.js", "/favicon.svg"} {
			res, body := h.do(h.req("GET", p, nil), nil)
			expectStatus(t, res, body, http.StatusOK)
		}
		res, body := h.do(h.front("GET", "/app.js", nil), nil)
		expectStatus(t, res, body, http.StatusOK)
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
			t.Errorf("app.js served as %q", ct)
		}
		r := h.front("GET", "/app.js", nil)
		r.Header.Set("If-None-Match", res.Header.Get("ETag"))
		res, _ = h.do(r, nil)
		expectStatus(t, res, nil, http.StatusNotModified)
	})

	t.Run("DSM language reaches the page", func(t *testing.T) {
		r := h.front("GET", "/", nil)
		r.Header.Set(api.HeaderLang, "chs")
		res, body := h.do(r, nil)
		expectStatus(t, res, body, http.StatusOK)
		if !bytes.Contains(body, []byte(`data-dsm-lang="chs"`)) {
			t.Error("X-Forgebox-Lang did not reach the page")
		}
		r = h.front("GET", "/", nil)
		r.Header.Set(api.HeaderLang, `"><script>`)
		_, body = h.do(r, nil)
		if bytes.Contains(body, []byte("<script>")) {
			t.Error("an odd X-Forgebox-Lang was put into the page as it came")
		}
	})
}

func sessionCookie(t *testing.T, res *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range res.Cookies() {
		if c.Name == api.SessionCookie {
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Value == "" {
				t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict", c)
			}
			return c
		}
	}
	t.Fatalf("no session cookie in %v", res.Header["Set-Cookie"])
	return nil
}

func TestCSRFAndLimits(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	before, err := os.ReadFile(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	change := map[string]any{"gitlab": map[string]any{"http_port": 31080}}

	refused := map[string]func(*http.Request){
		"Sec-Fetch-Site cross-site": func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") },
		"Sec-Fetch-Site same-site":  func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "same-site") },
		"foreign Origin":            func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") },
		"null Origin":               func(r *http.Request) { r.Header.Set("Origin", "null") },
		"no CSRF header":            func(r *http.Request) { r.Header.Del(api.HeaderCSRF) },
		"CSRF header not 1":         func(r *http.Request) { r.Header.Set(api.HeaderCSRF, "yes") },
	}
	for name, set := range refused {
		for _, method := range []string{"PUT /api/v1/config", "POST /api/v1/up", "DELETE /api/v1/runner/profiles/default"} {
			m, p, _ := strings.Cut(method, " ")
			r := h.front(m, p, change)
			set(r)
			res, body := h.do(r, nil)
			if res.StatusCode != http.StatusForbidden {
				t.Errorf("%s, %s: status %d, want 403 (%s)", name, method, res.StatusCode, body)
				continue
			}
			expectError(t, res, body, http.StatusForbidden, api.CodeForbidden)
		}
	}
	// The same with a session cookie, which a browser would attach on its own.
	c := newJar(t)
	doWith(t, c, h.req("GET", "/login?token="+h.creds.AdminToken, nil), nil)
	r := h.req("PUT", "/api/v1/config", change)
	r.Header.Set("Origin", "https://evil.example")
	r.Header.Set(api.HeaderCSRF, "1")
	res, body := doWith(t, c, r, nil)
	expectError(t, res, body, http.StatusForbidden, api.CodeForbidden)
	r = h.req("PUT", "/api/v1/config", change)
	res, body = doWith(t, c, r, nil)
	expectError(t, res, body, http.StatusForbidden, api.CodeForbidden)

	after, _ := os.ReadFile(h.cfgPath)
	if !bytes.Equal(before, after) {
		t.Fatal("a refused request changed the config file")
	}

	// Same origin, through a proxy that rewrote Host, with the header: accepted.
	r = h.read(h.front("PUT", "/api/v1/config", change))
	r.Header.Set("Origin", "https://nas.example:5001")
	r.Header.Set("X-Forwarded-Host", "nas.example:5001")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	res, body = h.do(r, nil)
	expectStatus(t, res, body, http.StatusOK)
	// A script with the bearer token needs no CSRF header.
	res, body = h.do(h.read(h.bearer("PUT", "/api/v1/config", map[string]any{"gitlab": map[string]any{"http_port": 31081}})), nil)
	expectStatus(t, res, body, http.StatusOK)

	t.Run("oversized body", func(t *testing.T) {
		before, _ := os.ReadFile(h.cfgPath)
		big := `{"gitlab":{"admin_email":"` + strings.Repeat("a", 2<<20) + `@example.com"}}`
		res, body := h.do(h.read(h.front("PUT", "/api/v1/config", big)), nil)
		expectError(t, res, body, http.StatusRequestEntityTooLarge, api.CodeTooLarge)
		// Without a declared length (chunked), refused while reading.
		r := h.read(h.front("PUT", "/api/v1/config", nil))
		r.Body = readerOnly{strings.NewReader(big)}
		r.ContentLength = -1
		r.Header.Set("Content-Type", "application/json")
		res, body = h.do(r, nil)
		expectError(t, res, body, http.StatusRequestEntityTooLarge, api.CodeTooLarge)
		after, _ := os.ReadFile(h.cfgPath)
		if !bytes.Equal(before, after) {
			t.Fatal("an oversized request changed the config file")
		}
	})

	t.Run("engine unavailable", func(t *testing.T) {
		res, body := h.do(h.front("POST", "/api/v1/up", nil), nil)
		expectError(t, res, body, http.StatusServiceUnavailable, api.CodeEngineUnavailable)
	})

	t.Run("unknown endpoint and method", func(t *testing.T) {
		res, body := h.do(h.front("GET", "/api/v1/nope", nil), nil)
		expectError(t, res, body, http.StatusNotFound, api.CodeNotFound)
		res, body = h.do(h.front("DELETE", "/api/v1/status", nil), nil)
		expectError(t, res, body, http.StatusMethodNotAllowed, api.CodeMethodNotAllowed)
	})
}

// readerOnly hides the length of a reader, so the request is sent chunked.
type readerOnly struct{ r *strings.Reader }

func (r readerOnly) Read(p []byte) (int, error) { return r.r.Read(p) }
func (r readerOnly) Close() error               { return nil }
