package front

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The app window's polls (GETs) of a session DSM found to be an administrator's skip DSM's
// check for SessionTTL; a change (POST), another session, a non-administrator and an expired
// record are always checked.
func TestFrontRemembersAnAdministratorsSessionForGETs(t *testing.T) {
	f := newFrontFixture(t)
	f.ttl = SessionTTL
	authRuns := func() int {
		b, _ := os.ReadFile(f.log)
		return strings.Count(string(b), "authenticate.cgi ")
	}
	req := func(method, cookie string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "/webman/3rdparty/forgebox/index.cgi/api/v1/status", nil)
		r.Header.Set("X-SYNO-TOKEN", "tok-admin")
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		return f.serve(t, r, "/api/v1/status")
	}
	for i := 0; i < 3; i++ {
		if w := req("GET", "id=admin-session"); w.Code != http.StatusOK {
			t.Fatalf("GET %d: %d %s", i, w.Code, w.Body)
		}
	}
	if n := authRuns(); n != 1 {
		t.Fatalf("3 GETs of one session asked authenticate.cgi %d times, want 1", n)
	}
	if w := req("POST", "id=admin-session"); w.Code != http.StatusOK || authRuns() != 2 {
		t.Fatalf("a POST must be checked: %d, authenticate.cgi runs %d", w.Code, authRuns())
	}
	if w := req("GET", "id=alice-session"); w.Code != http.StatusUnauthorized {
		t.Fatalf("another session (not an administrator) got %d", w.Code)
	}
	if w := req("GET", "id=alice-session"); w.Code != http.StatusUnauthorized || authRuns() != 4 {
		t.Fatalf("a refused session must not be remembered: %d, runs %d", w.Code, authRuns())
	}
	// An expired record is asked again.
	dir := filepath.Join(f.env.VarDir, sessionDirName)
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("%d remembered sessions, want 1", len(ents))
	}
	if fi, _ := ents[0].Info(); fi.Mode().Perm() != 0o600 {
		t.Errorf("session record mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(filepath.Join(dir, ents[0].Name()))
	if strings.Contains(string(b), "admin-session") || strings.Contains(string(b), "tok-admin") {
		t.Errorf("the record holds the cookie or token: %q", b)
	}
	os.WriteFile(filepath.Join(dir, ents[0].Name()), []byte("admin\n"+strconv.FormatInt(time.Now().Add(-time.Second).UnixMilli(), 10)+"\n"), 0o600)
	if w := req("GET", "id=admin-session"); w.Code != http.StatusOK || authRuns() != 5 {
		t.Fatalf("expired record: %d, runs %d", w.Code, authRuns())
	}
}
