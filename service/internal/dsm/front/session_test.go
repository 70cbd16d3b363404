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

// TestRememberedPollsSkipTheCGIRecord: the CGI record is kept by the requests DSM checked; a
// remembered poll neither reads nor writes it.
func TestRememberedPollsSkipTheCGIRecord(t *testing.T) {
	f := newFrontFixture(t)
	f.ttl = SessionTTL
	req := func(method string) int {
		r := httptest.NewRequest(method, "/webman/3rdparty/forgebox/index.cgi/api/v1/status", nil)
		r.Header.Set("X-SYNO-TOKEN", "tok-admin")
		r.Header.Set("Cookie", "id=admin-session")
		return f.serve(t, r, "/api/v1/status").Code
	}
	record := filepath.Join(f.env.VarDir, CGIRecordName)
	if code := req("GET"); code != http.StatusOK {
		t.Fatalf("first GET: %d", code)
	}
	if _, err := os.Stat(record); err != nil {
		t.Fatalf("no record after a checked request: %v", err)
	}
	os.Remove(record)
	if code := req("GET"); code != http.StatusOK {
		t.Fatalf("remembered GET: %d", code)
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Fatalf("a remembered poll wrote the record: %v", err)
	}
	if code := req("POST"); code != http.StatusOK {
		t.Fatalf("POST: %d", code)
	}
	if _, err := os.Stat(record); err != nil {
		t.Errorf("no record after a checked POST: %v", err)
	}
}
