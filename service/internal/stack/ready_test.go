package stack

import (
	"context"
	"errors"
	"github.com/forgebox/forgebox/service/internal/msg"
	"strings"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/events"
)

func TestSameersbnBooted(t *testing.T) {
	cases := []struct {
		name              string
		pid1, data, image string
		ready             bool
		says              string
	}{
		{"booted", "supervisord", "18.5.1", "18.5.1", true, ""},
		{"entrypoint still migrating", "entrypoint.sh", "", "18.5.1", false, "still migrating"},
		{"upgrade migrating, old version in the data", "entrypoint.sh", "18.2.8", "18.5.1", false, "PID 1 is \"entrypoint.sh\""},
		{"supervisord but the data is behind", "supervisord", "18.2.8", "18.5.1", false, "the migrations have not finished"},
		{"supervisord but no VERSION yet", "supervisord", "", "18.5.1", false, "the migrations have not finished"},
		{"an image that does not say its version: PID 1 alone", "supervisord", "", "", true, ""},
		{"bash as PID 1", "bash", "18.5.1", "18.5.1", false, "not supervisord"},
	}
	for _, c := range cases {
		err := sameersbnBooted(c.pid1, c.data, c.image)
		if (err == nil) != c.ready {
			t.Errorf("%s: err %v, want ready %v", c.name, err, c.ready)
		}
		if err != nil && !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %q does not say %q", c.name, err, c.says)
		}
	}
	if v := envValue([]string{"PATH=/bin", "GITLAB_VERSION=18.5.1", "GITLAB_VERSION_X=1"}, "GITLAB_VERSION"); v != "18.5.1" {
		t.Errorf("envValue = %q", v)
	}
}

func TestAdminTokenCommandAsksForAdminMode(t *testing.T) {
	for _, flavour := range []string{"sameersbn", "omnibus"} {
		cfg := testConfig()
		cfg.GitLab.Flavour = flavour
		_, cmd := adminTokenCommand(cfg, time.Date(2027, 9, 1, 0, 0, 0, 0, time.UTC))
		script := cmd[len(cmd)-1]
		for _, want := range []string{"scopes: [:api, :create_runner, :admin_mode]", "abort 'FORGEBOX_NO_ROOT' if u.nil?", "Date.parse('2027-09-01')"} {
			if !strings.Contains(script, want) {
				t.Errorf("%s: script %q lacks %q", flavour, script, want)
			}
		}
	}
}

// execScript answers the mint's exec with one result after the other.
type execScript struct {
	Engine  // nil: only Exec is called
	results []engine.ExecResult
	calls   int
}

func (e *execScript) Exec(context.Context, string, string, []string) (engine.ExecResult, error) {
	r := e.results[min(e.calls, len(e.results)-1)]
	e.calls++
	return r, nil
}

type eventLog struct{ evs []events.Event }

func (l *eventLog) Emit(e events.Event) { l.evs = append(l.evs, e) }

func TestMintWaitsWhileRootIsMissing(t *testing.T) {
	every, limit := mintNoRootEvery, mintNoRootFor
	t.Cleanup(func() { mintNoRootEvery, mintNoRootFor = every, limit })
	mintNoRootEvery, mintNoRootFor = time.Millisecond, time.Minute
	noRoot := engine.ExecResult{ExitCode: 1, Stderr: "FORGEBOX_NO_ROOT\n"}
	ok := engine.ExecResult{Stdout: "FORGEBOX_TOKEN=glpat-abcdefghijklmnopqrst\n"}
	exp := time.Now().Add(adminTokenLifetime)

	eng := &execScript{results: []engine.ExecResult{noRoot, noRoot, ok}}
	log := &eventLog{}
	s := New(testConfig(), eng, nil, Options{Events: log})
	tok, err := s.mintAdminToken(context.Background(), testConfig(), "gitlab", exp, msg.New("token.why.none"))
	if err != nil || tok != "glpat-abcdefghijklmnopqrst" || eng.calls != 3 {
		t.Fatalf("token %q, err %v after %d execs; want the token on the third", tok, err, eng.calls)
	}
	waits := 0
	for _, e := range log.evs {
		if e.Kind == events.KindWait && strings.Contains(e.Message, "no root user yet") {
			waits++
		}
	}
	if waits != 2 {
		t.Errorf("%d progress events for the two waits: %+v", waits, log.evs)
	}

	// Another failure is not waited for, and its stdout (a token, on success) is never shown.
	eng = &execScript{results: []engine.ExecResult{{ExitCode: 1, Stdout: "secret", Stderr: "ActiveRecord::StatementInvalid"}}}
	s = New(testConfig(), eng, nil, Options{Events: &eventLog{}})
	_, err = s.mintAdminToken(context.Background(), testConfig(), "gitlab", exp, msg.New("token.why.none"))
	if err == nil || eng.calls != 1 || !strings.Contains(err.Error(), "StatementInvalid") || strings.Contains(err.Error(), "secret") {
		t.Errorf("other failure: err %v after %d execs", err, eng.calls)
	}

	// The wait is bounded.
	mintNoRootFor = 5 * time.Millisecond
	eng = &execScript{results: []engine.ExecResult{noRoot}}
	s = New(testConfig(), eng, nil, Options{Events: &eventLog{}})
	_, err = s.mintAdminToken(context.Background(), testConfig(), "gitlab", exp, msg.New("token.why.none"))
	if err == nil || !strings.Contains(err.Error(), "still has no root user") {
		t.Errorf("bounded wait: %v", err)
	}

	// A cancelled up stops waiting.
	mintNoRootFor, mintNoRootEvery = time.Minute, time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	eng = &execScript{results: []engine.ExecResult{noRoot}}
	s = New(testConfig(), eng, nil, Options{Events: &eventLog{}})
	go cancel()
	if _, err = s.mintAdminToken(ctx, testConfig(), "gitlab", exp, msg.New("token.why.none")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestRotatedTokensFromTheRunnersConfig(t *testing.T) {
	// As gitlab-runner saves it after a token reset: many keys forgebox never writes.
	saved := []byte(`concurrent = 2
check_interval = 0
connection_max_age = "15m0s"
shutdown_timeout = 30

[session_server]
  session_timeout = 1800

[[runners]]
  name = "forgebox-default"
  url = "http://gitlab"
  id = 7
  token = "glrt-rotated"
  token_obtained_at = 2026-12-20T10:00:00Z
  token_expires_at = 2027-01-19T10:00:00Z
  executor = "docker"
  [runners.custom_build_dir]
  [runners.cache]
    MaxUploadedArchiveSize = 0
  [runners.docker]
    image = "alpine:3.22"
    shm_size = 0

[[runners]]
  name = "forgebox-build"
  id = 8
  token = "glrt-same"
  executor = "docker"
`)
	created := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	records := map[string]RunnerRecord{
		"default": {ID: 7, Token: "glrt-original", CreatedAt: created, TokenExpiresAt: created.Add(30 * 24 * time.Hour)},
		"build":   {ID: 8, Token: "glrt-same", CreatedAt: created},
		"other":   {ID: 9, Token: "glrt-x", CreatedAt: created},
	}
	rot := rotatedTokens(saved, records)
	if len(rot) != 1 || rot["default"].Token != "glrt-rotated" {
		t.Fatalf("rotated %+v, want only default's", rot)
	}
	got := adoptRotated(records["default"], rot["default"])
	if got.ID != 7 || got.Token != "glrt-rotated" || !got.CreatedAt.Equal(time.Date(2026, 12, 20, 10, 0, 0, 0, time.UTC)) ||
		!got.TokenExpiresAt.Equal(time.Date(2027, 1, 19, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("adopted %+v", got)
	}
	if rotatedTokens([]byte("not toml ["), records) != nil || len(rotatedTokens(nil, records)) != 0 {
		t.Error("an unreadable or missing config.toml rotated something")
	}
}
