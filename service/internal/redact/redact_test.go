package redact_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/redact"
)

const (
	runnerToken = "glrt-t1_Plant3dRunnerTok3n"
	adminToken  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func runnerRecord(token string) string {
	b, _ := json.Marshal(map[string]any{"id": 7, "token": token, "description": "mystack-default", "tags": []string{"docker"}})
	return string(b)
}

// plant writes a runner record and the admin token into a fresh data dir.
func plant(t *testing.T) (string, *config.Secrets) {
	t.Helper()
	dir := t.TempDir()
	store, err := config.OpenSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Set("runner/default", runnerRecord(runnerToken)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, config.AdminTokenFile), []byte(adminToken), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, store
}

// The scrubber finds a runner token on its own, although the store keeps it inside a JSON
// record; the record's ordinary fields stay readable.
func TestScrubFindsBareRunnerToken(t *testing.T) {
	dir, _ := plant(t)
	s := redact.New(func() string { return dir })
	line := "registering runner mystack-default with token " + runnerToken + " (admin " + adminToken + ")"
	got := s.Scrub(line)
	if strings.Contains(got, runnerToken) || strings.Contains(got, adminToken) {
		t.Fatalf("Scrub left a secret: %q", got)
	}
	if want := "registering runner mystack-default with token " + redact.Mask + " (admin " + redact.Mask + ")"; got != want {
		t.Errorf("Scrub = %q, want %q", got, want)
	}
}

// A secret stored after the scrubber first read the store is masked in the next line.
func TestScrubKeepsCurrent(t *testing.T) {
	dir, store := plant(t)
	s := redact.New(func() string { return dir })
	s.Scrub("warm up the cache: " + runnerToken)
	later := "glrt-t2_AnotherRunnerTok3n"
	if err := store.Set("runner/second", runnerRecord(later)); err != nil {
		t.Fatal(err)
	}
	if got := s.Scrub("new runner " + later); strings.Contains(got, later) {
		t.Errorf("a token stored after the first scrub is shown: %q", got)
	}
	if err := store.Delete("runner/default"); err != nil {
		t.Fatal(err)
	}
	if got := s.Scrub("token " + later); strings.Contains(got, later) {
		t.Errorf("after another change: %q", got)
	}
}

// Every level, the message, plain and grouped attributes, errors, slices and attributes given
// to With pass the scrubber.
func TestHandlerScrubsEveryLevelAndAttr(t *testing.T) {
	dir, _ := plant(t)
	var buf bytes.Buffer
	s := redact.New(func() string { return dir })
	log := slog.New(s.Handler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	log = log.With("preset", runnerToken)
	log.Debug("debug "+runnerToken, "token", runnerToken)
	log.Info("info", slog.Group("g", slog.String("t", adminToken)))
	log.Warn("warn", "err", errors.New("refused "+runnerToken))
	log.Error("error", "list", []string{"a", runnerToken}, "map", map[string]string{"k": adminToken})
	out := buf.String()
	if strings.Count(out, "\n") != 4 {
		t.Fatalf("want 4 lines, got:\n%s", out)
	}
	for _, secret := range []string{runnerToken, adminToken} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds %s…:\n%s", secret[:8], out)
		}
	}
	if n := strings.Count(out, redact.Mask); n < 9 {
		t.Errorf("%d masks, want at least 9:\n%s", n, out)
	}
}

// BenchmarkScrub is the cost each log line, event and API answer pays: a stat of the three
// secret files and a search for each value.
func BenchmarkScrub(b *testing.B) {
	dir := b.TempDir()
	store, err := config.OpenSecrets(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		if _, err := store.Ensure(n); err != nil {
			b.Fatal(err)
		}
	}
	store.Set("runner/default", runnerRecord(runnerToken))
	s := redact.New(func() string { return dir })
	line := `time=2026-12-03T08:33:01.209Z level=DEBUG msg=request component=api method=GET path=/api/v1/status status=200 duration_ms=1.85 client=127.0.0.1 user=admin auth=bearer`
	b.ReportAllocs()
	for b.Loop() {
		s.Scrub(line)
	}
}
