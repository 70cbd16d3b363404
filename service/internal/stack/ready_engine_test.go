package stack_test

// sameersbn's first boot as its entrypoint does it (the stand-in's restart after the migration,
// on by default), the admin token's scopes and renewal, and the runner token's expiry, on the
// real engine with the contract stand-ins.

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/stack"
	"github.com/forgebox/forgebox/service/internal/upgrade/standintest"
)

// apiStatus is the HTTP status of GET path with token.
func (f *fixture) apiStatus(ctx context.Context, path, token string) int {
	f.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.gitlabURL(ctx)+path, nil)
	req.Header.Set("PRIVATE-TOKEN", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

type standinPAT struct {
	ID        int64
	Name      string
	Scopes    []string
	Revoked   bool
	CreatedAt time.Time
}

func (f *fixture) standinPATs(ctx context.Context) []standinPAT {
	f.t.Helper()
	rows, err := f.gitlabConn(ctx).Query(ctx, `SELECT id, name, scopes, revoked, created_at FROM standin_personal_access_tokens ORDER BY id`)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []standinPAT
	for rows.Next() {
		var p standinPAT
		if err := rows.Scan(&p.ID, &p.Name, &p.Scopes, &p.Revoked, &p.CreatedAt); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

type standinRunner struct {
	ID             int64
	CreatedAt      time.Time
	TokenExpiresAt *time.Time
}

func (f *fixture) standinRunners(ctx context.Context) map[int64]standinRunner {
	f.t.Helper()
	rows, err := f.gitlabConn(ctx).Query(ctx, `SELECT id, created_at, token_expires_at FROM standin_runners`)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]standinRunner{}
	for rows.Next() {
		var r standinRunner
		if err := rows.Scan(&r.ID, &r.CreatedAt, &r.TokenExpiresAt); err != nil {
			f.t.Fatal(err)
		}
		out[r.ID] = r
	}
	return out
}

func TestFirstBootRestartTokenOnceRunnersOnce(t *testing.T) {
	f := newFixture(t)
	twoProfiles(f)
	// An administrator turned on Admin Mode and runner token expiry (both off in GitLab's defaults).
	f.cfg.GitLab.Image = standintest.Derive(t, f.cfg.GitLab.Image, standintest.RepoOf(t, f.cfg.GitLab.Image)+":ready-adminmode-expiry",
		"FORGEBOX_STANDIN_ADMIN_MODE=true", "FORGEBOX_STANDIN_RUNNER_TOKEN_EXPIRES_IN=720h")
	ctx := context.Background()
	if _, err := f.stack().Up(ctx); err != nil {
		var evs []string
		for _, e := range f.rec.evs {
			if e.Component == "gitlab" {
				evs = append(evs, e.Message)
			}
		}
		logs, _ := f.eng.Logs(ctx, f.status(ctx)["gitlab"].ID, 100)
		t.Fatalf("up: %v\nGitLab events:\n%s\nGitLab log:\n%s", err, strings.Join(evs, "\n"), strings.Join(logs, "\n"))
	}

	// The stand-in went through sameersbn's first boot: readiness answered during gitlab:setup,
	// then it restarted as supervisord.
	var state struct {
		BootPhase   string    `json:"boot_phase"`
		Since       time.Time `json:"boot_phase_since"`
		Version     string    `json:"version"`
		DataVersion string    `json:"data_version"`
	}
	f.apiGet(ctx, "/api/v4/standin/state", &state)
	if state.BootPhase != "supervisord" || state.DataVersion != state.Version {
		t.Fatalf("stand-in state after up: %+v; want the restarted supervisord on migrated data", state)
	}
	logs, _ := f.eng.Logs(ctx, f.status(ctx)["gitlab"].ID, 200)
	joined := strings.Join(logs, "\n")
	for _, want := range []string{"entrypoint: gitlab:setup", "Puma keeps running", "ready (stand-in): readiness reports ok", "supervisord (stand-in): PID 1 now"} {
		if !strings.Contains(joined, want) {
			t.Errorf("the stand-in's log lacks %q:\n%s", want, joined)
		}
	}
	if strings.Index(joined, "ready (stand-in)") > strings.Index(joined, "entrypoint: migrations done") {
		t.Errorf("readiness did not pass during the migration, so this test proves no wait:\n%s", joined)
	}

	// One admin token, minted by the restarted GitLab, with admin_mode.
	pats := f.standinPATs(ctx)
	if len(pats) != 1 || pats[0].Name != "forgebox" {
		t.Fatalf("personal access tokens in GitLab: %+v, want exactly one named forgebox", pats)
	}
	if pats[0].CreatedAt.Before(state.Since) {
		t.Errorf("the admin token was minted at %s, before GitLab's restart at %s", pats[0].CreatedAt, state.Since)
	}
	if !slices.Contains(pats[0].Scopes, "admin_mode") {
		t.Errorf("admin token scopes %v lack admin_mode", pats[0].Scopes)
	}

	// One runner per profile, registered after the restart, with GitLab's expiry stored and written.
	inGitLab := f.standinRunners(ctx)
	recs := f.records()
	if len(inGitLab) != 2 || len(recs) != 2 {
		t.Fatalf("%d runners in GitLab, %d records; want 2 and 2", len(inGitLab), len(recs))
	}
	rc := f.runnerConfig()
	for name, r := range recs {
		g, ok := inGitLab[r.ID]
		if !ok {
			t.Fatalf("record %s names runner %d, which GitLab does not have", name, r.ID)
		}
		if g.CreatedAt.Before(state.Since) {
			t.Errorf("runner %d was registered before GitLab's restart", r.ID)
		}
		if g.TokenExpiresAt == nil || r.TokenExpiresAt.IsZero() || !r.TokenExpiresAt.Equal(g.TokenExpiresAt.Truncate(time.Millisecond)) {
			t.Errorf("runner %d: token_expires_at in GitLab %v, in the record %v", r.ID, g.TokenExpiresAt, r.TokenExpiresAt)
		}
		found := false
		for _, cr := range rc.Runners {
			if cr.ID == r.ID {
				found = true
				if !cr.TokenExpiresAt.Equal(r.TokenExpiresAt) {
					t.Errorf("config.toml runner %d: token_expires_at %v, want %v", r.ID, cr.TokenExpiresAt, r.TokenExpiresAt)
				}
			}
		}
		if !found {
			t.Errorf("config.toml lacks runner %d", r.ID)
		}
	}

	t.Run("Admin Mode refuses an admin token without admin_mode", func(t *testing.T) {
		gl := f.status(ctx)["gitlab"].ID
		script := "u = User.find_by_username('root'); abort 'FORGEBOX_NO_ROOT' if u.nil?; t = u.personal_access_tokens.create!(name: 'no-admin-mode', scopes: [:api, :create_runner], expires_at: Date.parse('" +
			time.Now().AddDate(0, 1, 0).Format(time.DateOnly) + "')); puts \"FORGEBOX_TOKEN=#{t.token}\""
		res, err := f.eng.Exec(ctx, gl, "git", []string{"bundle", "exec", "rails", "runner", "-e", "production", script})
		tok, ok := strings.CutPrefix(strings.TrimSpace(res.Stdout), "FORGEBOX_TOKEN=")
		if err != nil || !ok {
			t.Fatalf("mint: %v, exit %d: %s", err, res.ExitCode, res.Stderr)
		}
		if code := f.apiStatus(ctx, "/api/v4/runners/all", tok); code != http.StatusForbidden {
			t.Errorf("admin API with a token without admin_mode: HTTP %d, want 403", code)
		}
		if code := f.apiStatus(ctx, "/api/v4/runners/all", f.adminToken()); code != http.StatusOK {
			t.Errorf("admin API with forgebox's token: HTTP %d, want 200", code)
		}
	})

	t.Run("a renewal revokes the old token once the new one works", func(t *testing.T) {
		old := f.adminToken()
		if err := f.secrets.Set(config.SecretGitLabAdminToken+"_expires", time.Now().Add(48*time.Hour).Format(time.DateOnly)); err != nil {
			t.Fatal(err)
		}
		f.up(ctx)
		renewed := f.adminToken()
		if renewed == old {
			t.Fatal("the token was not renewed")
		}
		if code := f.apiStatus(ctx, "/api/v4/user", old); code != http.StatusUnauthorized {
			t.Errorf("the old token: HTTP %d, want 401", code)
		}
		if code := f.apiStatus(ctx, "/api/v4/user", renewed); code != http.StatusOK {
			t.Errorf("the new token: HTTP %d, want 200", code)
		}
		var mine []standinPAT
		for _, p := range f.standinPATs(ctx) {
			if p.Name == "forgebox" {
				mine = append(mine, p)
			}
		}
		if len(mine) != 2 || !mine[0].Revoked || mine[1].Revoked {
			t.Errorf("forgebox's tokens in GitLab after the renewal: %+v; want the first revoked, the second active", mine)
		}
		if _, ok := f.secrets.Get(config.SecretGitLabAdminToken + "_previous"); ok {
			t.Error("the revoked token is still kept in the secret store")
		}
		if n := len(f.standinRunners(ctx)); n != 2 {
			t.Errorf("%d runners in GitLab after the renewal, want the same 2", n)
		}
		if plan := f.up(ctx); !plan.Empty() {
			t.Errorf("up after the renewal planned:\n%s", plan)
		}
	})

	t.Run("a token the runner rotated itself is kept", func(t *testing.T) {
		r := f.records()["default"]
		rotated := "glrt-rotatedbythetest01"
		// What a token reset does: GitLab swaps the runner's token, and the runner saves the new
		// one into config.toml.
		if _, err := f.gitlabConn(ctx).Exec(ctx, `UPDATE standin_runners SET token = $1 WHERE id = $2`, rotated, r.ID); err != nil {
			t.Fatal(err)
		}
		path := stack.RunnerConfigPath(f.cfg)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, bytes.Replace(b, []byte(r.Token), []byte(rotated), 1), 0o600); err != nil {
			t.Fatal(err)
		}
		plan := f.up(ctx)
		if !strings.Contains(plan.String(), "rotated itself") || strings.Contains(plan.String(), "register") {
			t.Errorf("plan:\n%s", plan)
		}
		if got := f.records()["default"]; got.ID != r.ID || got.Token != rotated {
			t.Errorf("record after the rotation: runner %d, token kept %v; want runner %d with the rotated token", got.ID, got.Token == rotated, r.ID)
		}
		if n := len(f.standinRunners(ctx)); n != 2 {
			t.Errorf("%d runners in GitLab after the rotation, want the same 2", n)
		}
		if b, _ := os.ReadFile(path); !bytes.Contains(b, []byte(rotated)) {
			t.Error("config.toml lost the rotated token")
		}
		if plan := f.up(ctx); !plan.Empty() {
			t.Errorf("up after adopting the rotated token planned:\n%s", plan)
		}
	})
}
