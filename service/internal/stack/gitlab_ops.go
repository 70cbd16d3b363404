package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/gitlab"
	"github.com/forgebox/forgebox/service/internal/msg"
	"github.com/forgebox/forgebox/service/internal/runnercfg"
)

// Admin token lifetime: GitLab caps personal access tokens at 365 days; forgebox asks for less
// and renews a month before the end, so a box that was off for weeks still finds it valid.
const (
	adminTokenLifetime = 300 * 24 * time.Hour
	adminTokenRenewal  = 30 * 24 * time.Hour
	adminTokenName     = "forgebox"
	// secretAdminTokenExpires holds the token's expiry date (YYYY-MM-DD) beside the token.
	secretAdminTokenExpires = config.SecretGitLabAdminToken + config.MetadataSuffix
)

// GitLabObserved is what forgebox sees of a running GitLab: whether it is ready, whether the
// admin token works, and which runners it still knows.
type GitLabObserved struct {
	Ready      bool
	ReadyErr   error
	TokenOK    bool
	TokenWhy   msg.Msg                 // why a new token is needed, when !TokenOK
	Runners    map[string]RunnerRecord // stored records, by profile
	Known      map[string]bool         // whether GitLab still knows each record's token
	Rotated    map[string]bool         // the runner replaced the record's token in config.toml (Runners holds the new one)
	Leftovers  []gitlab.RunnerInfo     // runners with a profile's name but no record: an interrupted registration
	ConfigTOML []byte                  // the runner's config.toml as it is on disk
	KubeTokens map[string]string       // kubernetes profiles' service account tokens, by profile
}

// leftoverRunners are runners in GitLab named like one of the profiles' runners but not in
// forgebox's records: registered by a run that was killed before it could save the token. No
// token means nobody can use them; they only clutter GitLab's runner list.
func leftoverRunners(cfg config.Config, listed []gitlab.RunnerInfo, records map[string]RunnerRecord) []gitlab.RunnerInfo {
	names := map[string]bool{}
	for _, p := range cfg.Runner.Profiles {
		names[runnerDescription(cfg, p)] = true
	}
	recorded := map[int64]bool{}
	for _, r := range records {
		recorded[r.ID] = true
	}
	var out []gitlab.RunnerInfo
	for _, r := range listed {
		if names[r.Description] && !recorded[r.ID] {
			out = append(out, r)
		}
	}
	return out
}

// gitlabBaseURL is GitLab as forgebox reaches it: the container's address on the stack network.
func gitlabBaseURL(cfg config.Config, det engine.Detail) (string, error) {
	ip := det.IPs[cfg.NetworkName()]
	if ip == "" {
		return "", fmt.Errorf("container %s has no address on network %s", det.Name, cfg.NetworkName())
	}
	return "http://" + ip + ":" + strconv.Itoa(gitlabHTTPPort(cfg)), nil
}

// observeGitLab fills Observed.GitLab when GitLab's container runs; it changes nothing.
func (s *Stack) observeGitLab(ctx context.Context, d Desired, det engine.Detail) (*GitLabObserved, error) {
	g := &GitLabObserved{}
	base, err := gitlabBaseURL(d.Config, det)
	if err != nil {
		return nil, err
	}
	if err := s.gitlabReady(ctx, d.Config, det, base); err != nil {
		g.ReadyErr = err
		return g, nil
	}
	g.Ready = true
	g.TokenWhy = s.adminTokenProblem(ctx, base)
	g.TokenOK = g.TokenWhy.IsZero()
	if !g.TokenOK {
		return g, nil
	}
	if g.Runners, err = loadRunnerRecords(s.secrets); err != nil {
		return nil, err
	}
	token, _ := s.secrets.Get(config.SecretGitLabAdminToken)
	api, err := gitlab.New(base, token)
	if err != nil {
		return nil, err
	}
	g.KubeTokens = kubeTokens(d.Config, s.secrets)
	g.ConfigTOML, err = os.ReadFile(RunnerConfigPath(d.Config))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read runner config: %w", err)
	}
	g.Known, g.Rotated = map[string]bool{}, map[string]bool{}
	rotated := rotatedTokens(g.ConfigTOML, g.Runners)
	for profile, r := range g.Runners {
		if c, ok := rotated[profile]; ok {
			known, err := api.VerifyRunner(ctx, c.Token)
			if err != nil {
				return nil, err
			}
			if known {
				g.Runners[profile], g.Known[profile], g.Rotated[profile] = adoptRotated(r, c), true, true
				continue
			}
		}
		known, err := api.VerifyRunner(ctx, r.Token)
		if err != nil {
			return nil, err
		}
		g.Known[profile] = known
	}
	listed, err := api.ListRunners(ctx)
	if err != nil {
		return nil, err
	}
	g.Leftovers = leftoverRunners(d.Config, listed, g.Runners)
	return g, nil
}

// adminTokenProblem says why the stored admin token will not do, or nothing when it will.
func (s *Stack) adminTokenProblem(ctx context.Context, base string) msg.Msg {
	token, ok := s.secrets.Get(config.SecretGitLabAdminToken)
	if !ok || token == "" {
		return msg.New("token.why.none")
	}
	exp, _ := s.secrets.Get(secretAdminTokenExpires)
	if t, err := time.Parse(time.DateOnly, exp); err != nil || time.Until(t) < adminTokenRenewal {
		return msg.New("token.why.expires", "date", orUnknown(exp))
	}
	api, err := gitlab.New(base, token)
	if err != nil {
		return msg.New("token.why.error", "error", msg.Raw(err.Error()))
	}
	if err := api.CheckToken(ctx); err != nil {
		return msg.New("token.why.rejected")
	}
	return msg.Msg{}
}

// planGitLab adds the steps that follow GitLab's container: the admin token and the runners.
func planGitLab(d Desired, o Observed, add func(ActionKind, string, string, msg.Msg)) {
	g := o.GitLab
	switch {
	case g == nil || !g.Ready:
		add(ActAdminToken, "gitlab", "", msg.New("plan.token.later"))
		add(ActRunners, "gitlab", "", msg.New("plan.runners.later"))
		return
	case !g.TokenOK:
		add(ActAdminToken, "gitlab", "", msg.New("plan.token.why", "why", g.TokenWhy))
		add(ActRunners, "gitlab", "", msg.New("plan.runners.newToken"))
		return
	}
	if why := runnerChanges(d.Config, g); len(why) > 0 {
		add(ActRunners, "gitlab", "", msg.New("plan.runners.changes", "changes", why))
	}
}

// runnerChanges lists what syncRunners would change, in words.
func runnerChanges(cfg config.Config, g *GitLabObserved) []msg.Msg {
	var why []msg.Msg
	for _, p := range cfg.Runner.Profiles {
		r, ok := g.Runners[p.Name]
		switch {
		case !ok:
			why = append(why, msg.New("plan.runner.register", "profile", p.Name))
		case !g.Known[p.Name]:
			why = append(why, msg.New("plan.runner.reregister", "profile", p.Name, "id", r.ID))
		case g.Rotated[p.Name]:
			why = append(why, msg.New("plan.runner.rotated", "id", r.ID, "profile", p.Name))
		case r.Project != p.Project:
			why = append(why, msg.New("plan.runner.scope", "profile", p.Name, "from", scopeName(r.Project), "to", scopeName(p.Project)))
		default:
			if drift := runnerDrift(cfg, p, r); drift != "" {
				why = append(why, msg.New("plan.runner.update", "id", r.ID, "profile", p.Name, "drift", drift))
			}
		}
	}
	for name, r := range g.Runners {
		if !slices.ContainsFunc(cfg.Runner.Profiles, func(p config.Profile) bool { return p.Name == name }) {
			why = append(why, msg.New("plan.runner.unregister", "id", r.ID, "profile", name))
		}
	}
	for _, r := range g.Leftovers {
		why = append(why, msg.New("plan.runner.leftover", "id", r.ID, "description", r.Description))
	}
	if len(why) == 0 {
		want, err := renderRunnerConfigWith(cfg, g.Runners, g.KubeTokens)
		if err != nil || !bytes.Equal(want, g.ConfigTOML) {
			why = append(why, msg.New("plan.runner.writeConfig"))
		}
		why = append(why, remoteCertsDrift(cfg)...) // remote.go
	}
	slices.SortFunc(why, func(a, b msg.Msg) int { return strings.Compare(a.String(), b.String()) })
	return why
}

// tokenLine is what the Rails snippet prints; nothing else of its output is used or logged.
var tokenLine = regexp.MustCompile(`(?m)^FORGEBOX_TOKEN=(\S+)$`)

// noRootMarker is what the snippet aborts with (stderr, exit 1) while GitLab has no root user:
// sameersbn seeds root at the end of gitlab:setup, and its Puma may answer before that.
const noRootMarker = "FORGEBOX_NO_ROOT"

// adminTokenScopes: api for the admin API, create_runner for POST /user/runners, admin_mode so
// the token keeps its admin rights when an administrator turns on Admin Mode (GitLab then
// treats an admin's token without it as a regular user's; Gitlab::Auth::ADMIN_SCOPES).
var adminTokenScopes = []string{"api", "create_runner", "admin_mode"}

// adminTokenCommand is the command line that runs a Rails snippet in the GitLab container, as
// each flavour documents it (docs/gitlab-contract.md §4.4), and the user it runs as.
func adminTokenCommand(cfg config.Config, expires time.Time) (user string, cmd []string) {
	scopes := make([]string, len(adminTokenScopes))
	for i, sc := range adminTokenScopes {
		scopes[i] = ":" + sc
	}
	script := fmt.Sprintf("u = User.find_by_username('root'); abort '%s' if u.nil?; t = u.personal_access_tokens.create!(name: '%s', scopes: [%s], expires_at: Date.parse('%s')); puts \"FORGEBOX_TOKEN=#{t.token}\"",
		noRootMarker, adminTokenName, strings.Join(scopes, ", "), expires.Format(time.DateOnly))
	if cfg.GitLab.Flavour == "omnibus" {
		return "root", []string{"gitlab-rails", "runner", script}
	}
	return "git", []string{"bundle", "exec", "rails", "runner", "-e", "production", script}
}

// How long the mint waits for GitLab to seed root: a first boot that answers readiness before
// gitlab:setup is done gets there within minutes.
var (
	mintNoRootEvery = 5 * time.Second
	mintNoRootFor   = 10 * time.Minute
)

// secretAdminTokenPrevious holds a replaced admin token until GitLab has revoked it.
const secretAdminTokenPrevious = config.SecretGitLabAdminToken + "_previous"

// ensureAdminToken keeps a working personal access token for root in the secret store, minting
// one through Rails inside the GitLab container when there is none, it expires soon, or GitLab
// stopped accepting it. A replaced token is revoked once the new one works.
func (s *Stack) ensureAdminToken(ctx context.Context, d Desired, id string) error {
	det, err := s.eng.Inspect(ctx, id)
	if err != nil {
		return err
	}
	base, err := gitlabBaseURL(d.Config, det)
	if err != nil {
		return err
	}
	why := s.adminTokenProblem(ctx, base)
	if why.IsZero() {
		s.say(events.Event{Kind: events.KindInfo, Status: events.Done, Component: "gitlab"}, "token.works")
		return s.revokePreviousToken(ctx, base)
	}
	expires := time.Now().Add(adminTokenLifetime).UTC()
	token, err := s.mintAdminToken(ctx, d.Config, id, expires, why)
	if err != nil {
		return err
	}
	// The old token is kept aside until GitLab has revoked it, so an interrupted renewal
	// still revokes it on the next run.
	if old, ok := s.secrets.Get(config.SecretGitLabAdminToken); ok && old != "" && old != token {
		if err := s.secrets.Set(secretAdminTokenPrevious, old); err != nil {
			return err
		}
	}
	if err := s.secrets.Set(config.SecretGitLabAdminToken, token); err != nil {
		return err
	}
	if err := s.secrets.Set(secretAdminTokenExpires, expires.Format(time.DateOnly)); err != nil {
		return err
	}
	api, err := gitlab.New(base, token)
	if err != nil {
		return err
	}
	if err := api.CheckToken(ctx); err != nil {
		return fmt.Errorf("GitLab does not accept the admin token it just created: %w", err)
	}
	s.say(events.Event{Kind: events.KindInfo, Status: events.Done, Component: "gitlab"}, "token.created", "renew", expires.Format(time.DateOnly))
	return s.revokePreviousToken(ctx, base)
}

// mintAdminToken runs the Rails snippet, waiting (bounded, with progress) while GitLab has no
// root user yet.
func (s *Stack) mintAdminToken(ctx context.Context, cfg config.Config, id string, expires time.Time, why msg.Msg) (string, error) {
	user, cmd := adminTokenCommand(cfg, expires)
	s.say(events.Event{Kind: events.KindInfo, Status: events.Working, Component: "gitlab"}, "token.creating", "why", why)
	start := time.Now()
	for {
		ectx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		res, err := s.eng.Exec(ectx, id, user, cmd)
		cancel()
		if err != nil {
			return "", err
		}
		if m := tokenLine.FindStringSubmatch(res.Stdout); res.ExitCode == 0 && m != nil {
			return m[1], nil
		}
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, noRootMarker) {
			// The output is not shown: on success it would hold the token. stderr carries the cause.
			return "", fmt.Errorf("creating the admin token in GitLab failed (exit code %d): %s", res.ExitCode, LastLines(res.Stderr, 5))
		}
		waited := time.Since(start)
		if waited >= mintNoRootFor {
			return "", fmt.Errorf("GitLab still has no root user after %s: its first-boot setup did not finish; see the GitLab container's log", waited.Round(time.Second))
		}
		s.say(events.Event{Kind: events.KindWait, Status: events.Working, Component: "gitlab"}, "token.noRoot", "waited", waited.Round(time.Second).String(), "limit", mintNoRootFor.String())
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("create the admin token: %w", ctx.Err())
		case <-time.After(mintNoRootEvery):
		}
	}
}

// revokePreviousToken revokes a replaced admin token with its own DELETE
// /personal_access_tokens/self and forgets it. A token GitLab no longer accepts (expired, or
// revoked already) needs nothing more.
func (s *Stack) revokePreviousToken(ctx context.Context, base string) error {
	old, ok := s.secrets.Get(secretAdminTokenPrevious)
	if !ok || old == "" {
		return nil
	}
	api, err := gitlab.New(base, old)
	if err != nil {
		return err
	}
	switch err := api.RevokeSelf(ctx); {
	case err == nil:
		s.say(events.Event{Kind: events.KindInfo, Status: events.Done, Component: "gitlab"}, "token.revoked")
	case errors.Is(err, gitlab.ErrUnauthorized):
		s.say(events.Event{Kind: events.KindInfo, Status: events.Done, Component: "gitlab"}, "token.oldGone")
	default:
		return fmt.Errorf("revoke the previous admin token: %w", err)
	}
	return s.secrets.Delete(secretAdminTokenPrevious)
}

// LastLines is the tail of a command's output for an error message: its last n non-blank lines,
// trimmed and joined on one line. The one copy: stack, backup and pgupgrade use it.
func LastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// syncRunners makes GitLab's runners and the runner's config.toml match the profiles: it creates
// the missing, re-creates the ones GitLab forgot, updates changed tags, unregisters removed
// profiles, and rewrites config.toml only when its content changes.
func (s *Stack) syncRunners(ctx context.Context, d Desired, id string) error {
	cfg := d.Config
	det, err := s.eng.Inspect(ctx, id)
	if err != nil {
		return err
	}
	base, err := gitlabBaseURL(cfg, det)
	if err != nil {
		return err
	}
	token, ok := s.secrets.Get(config.SecretGitLabAdminToken)
	if !ok {
		return errors.New("no admin token: GitLab's runners cannot be managed")
	}
	api, err := gitlab.New(base, token)
	if err != nil {
		return err
	}
	records, err := loadRunnerRecords(s.secrets)
	if err != nil {
		return err
	}
	note := func(code string, kv ...any) {
		m := msg.New(code, kv...)
		s.emit(events.Event{Kind: events.KindInfo, Status: events.Done, Component: "runner"}.With(m))
		s.log.Info("runners", "change", m.String())
	}
	onDisk, err := os.ReadFile(RunnerConfigPath(cfg))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read runner config: %w", err)
	}
	rotated := rotatedTokens(onDisk, records)
	for _, p := range cfg.Runner.Profiles {
		spec := gitlab.RunnerSpec{Description: runnerDescription(cfg, p), Tags: wantedTags(p), RunUntagged: p.RunUntagged}
		r, have := records[p.Name]
		if c, ok := rotated[p.Name]; have && ok {
			known, err := api.VerifyRunner(ctx, c.Token)
			if err != nil {
				return err
			}
			if known {
				r = adoptRotated(r, c)
				if err := saveRunnerRecord(s.secrets, p.Name, r); err != nil {
					return err
				}
				records[p.Name] = r
				note("runner.rotated", "id", r.ID, "profile", p.Name)
			}
		}
		if have && r.Project != p.Project {
			// A runner's type and project cannot change (PUT /runners/:id takes neither): a new
			// scope is a new runner, and the old one goes first so no job lands on it.
			if err := api.DeleteRunner(ctx, r.ID); err != nil {
				return err
			}
			note("runner.scopeChanged", "id", r.ID, "profile", p.Name, "from", scopeName(r.Project), "to", scopeName(p.Project))
			have = false
		}
		if have {
			known, err := api.VerifyRunner(ctx, r.Token)
			if err != nil {
				return err
			}
			if !known {
				note("runner.unknown", "id", r.ID, "profile", p.Name)
				have = false
			}
		}
		if !have {
			if p.Project != "" {
				if spec.ProjectID, err = api.ProjectID(ctx, p.Project); err != nil {
					return fmt.Errorf("runner profile %s: %w", p.Name, err)
				}
			}
			created, err := api.CreateRunner(ctx, spec)
			if err != nil {
				return err
			}
			r = RunnerRecord{ID: created.ID, Token: created.Token, TokenExpiresAt: created.TokenExpiresAt,
				Description: spec.Description, Tags: spec.Tags, RunUntagged: spec.RunUntagged, Project: p.Project,
				CreatedAt: time.Now().UTC().Truncate(time.Second)}
			if err := saveRunnerRecord(s.secrets, p.Name, r); err != nil {
				return err
			}
			records[p.Name] = r
			note("runner.registered", "id", r.ID, "profile", p.Name, "tags", fmt.Sprint(spec.Tags))
			continue
		}
		if drift := runnerDrift(cfg, p, r); drift != "" {
			if err := api.UpdateRunner(ctx, r.ID, spec); err != nil {
				return err
			}
			r.Description, r.Tags, r.RunUntagged = spec.Description, spec.Tags, spec.RunUntagged
			if err := saveRunnerRecord(s.secrets, p.Name, r); err != nil {
				return err
			}
			records[p.Name] = r
			note("runner.updated", "id", r.ID, "profile", p.Name, "drift", drift)
		}
	}
	// Write config.toml before unregistering, so the runner stops using a removed profile's
	// token before GitLab forgets it.
	var removed []string
	for name := range records {
		if !slices.ContainsFunc(cfg.Runner.Profiles, func(p config.Profile) bool { return p.Name == name }) {
			removed = append(removed, name)
		}
	}
	slices.Sort(removed)
	kept := map[string]RunnerRecord{}
	for name, r := range records {
		if !slices.Contains(removed, name) {
			kept[name] = r
		}
	}
	if err := s.writeRunnerConfig(cfg, kept); err != nil {
		return err
	}
	for _, name := range removed {
		r := records[name]
		if err := api.DeleteRunner(ctx, r.ID); err != nil {
			return err
		}
		if err := s.secrets.Delete(runnerSecretName(name)); err != nil {
			return err
		}
		note("runner.unregistered", "id", r.ID, "profile", name)
	}
	listed, err := api.ListRunners(ctx)
	if err != nil {
		return err
	}
	for _, r := range leftoverRunners(cfg, listed, kept) {
		if err := api.DeleteRunner(ctx, r.ID); err != nil {
			return err
		}
		note("runner.leftover", "id", r.ID, "description", r.Description)
	}
	return nil
}

func (s *Stack) writeRunnerConfig(cfg config.Config, records map[string]RunnerRecord) error {
	if err := s.storeKubeTokens(cfg); err != nil { // remote.go
		return err
	}
	want, err := renderRunnerConfigWith(cfg, records, kubeTokens(cfg, s.secrets))
	if err != nil {
		return err
	}
	path := RunnerConfigPath(cfg)
	if err := ensureDir(Dir{Path: runnerDir(cfg), Mode: 0o700}); err != nil {
		return err
	}
	// The certificates first: the runner reads tls_cert_path when config.toml names it.
	if err := writeRemoteCerts(cfg); err != nil { // remote.go
		return err
	}
	if have, err := os.ReadFile(path); err == nil && bytes.Equal(have, want) {
		return nil
	}
	// 0600: the file holds runner tokens. The runner re-reads it within seconds.
	if err := config.WriteFileAtomic(path, want, 0o600); err != nil {
		return fmt.Errorf("write runner config: %w", err)
	}
	s.say(events.Event{Kind: events.KindInfo, Status: events.Done, Component: "runner"}, "runner.configWritten", "path", path, "n", len(records))
	return nil
}

// waitGitLab waits until GitLab is ready (gitlabReady), failing fast when the container stops.
// GitLab boots for minutes, so it reports progress as it goes.
func (s *Stack) waitGitLab(ctx context.Context, c Component, cfg config.Config, id string) (engine.Detail, error) {
	start := time.Now()
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.Deadline)
	defer cancel()
	var (
		first    *engine.Detail
		lastErr  error
		reported time.Time
	)
	for {
		det, err := s.eng.Inspect(ctx, id)
		if err != nil {
			return det, err
		}
		if first == nil {
			first = &det
		}
		// A restart the engine was already making when the wait began is waited for; another
		// one means GitLab crashed while booting.
		restartingAtStart := det.State == "restarting" && first.State == "restarting" && det.RestartCount == first.RestartCount
		if det.State == "exited" || det.State == "dead" || det.State == "restarting" && !restartingAtStart || det.RestartCount > first.RestartCount {
			logs, _ := s.eng.Logs(context.Background(), id, 20)
			return det, &engine.HealthError{Container: det.Name, Reason: fmt.Sprintf("stopped while booting (state %s, exit code %d)", det.State, det.ExitCode), LastLogs: logs}
		}
		if base, err := gitlabBaseURL(cfg, det); err == nil {
			if lastErr = s.gitlabReady(ctx, cfg, det, base); lastErr == nil {
				s.say(events.Event{Kind: events.KindInfo, Status: events.Done, Component: c.Name}, "gitlab.ready", "took", time.Since(start).Round(time.Second).String())
				return det, nil
			}
		}
		if time.Since(reported) >= 10*time.Second {
			reported = time.Now()
			s.say(events.Event{Kind: events.KindWait, Status: events.Working, Component: c.Name}, "gitlab.booting",
				"waited", time.Since(start).Round(time.Second).String(), "limit", c.Deadline.String(), "error", msg.Raw(fmt.Sprint(lastErr)))
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil { // the caller gave up (a down cancels an up)
				return det, fmt.Errorf("wait for GitLab: %w", parent.Err())
			}
			logs, _ := s.eng.Logs(context.Background(), id, 20)
			return det, &engine.HealthError{Container: det.Name, Reason: fmt.Sprintf("was not ready after %s (%v)", c.Deadline, lastErr), LastLogs: logs, Err: engine.ErrHealthTimeout}
		case <-time.After(gitlabPoll(time.Since(start))):
		}
	}
}

// gitlabPoll is how long to wait between readiness probes: often in the first minute, when a
// restart or a stand-in may be ready in seconds, then once a second through a long boot.
func gitlabPoll(waited time.Duration) time.Duration {
	if waited < time.Minute {
		return 250 * time.Millisecond
	}
	return time.Second
}

// gitlabReady is GitLab's readiness check and, for sameersbn, the end of its entrypoint's boot:
// that entrypoint runs the migrations while a first supervisord already serves (Puma can pass
// readiness before root is seeded), then stops it and execs a new supervisord as PID 1
// (sameersbn/docker-gitlab entrypoint.sh, app:start). Ready means PID 1 is supervisord and the
// data's VERSION, written after the migrations, is the image's GITLAB_VERSION. Omnibus needs no
// more: its init-container removes every service before `gitlab-ctl reconfigure`, which runs
// the migrations before it enables Puma (omnibus-gitlab recipes/default.rb).
func (s *Stack) gitlabReady(ctx context.Context, cfg config.Config, det engine.Detail, base string) error {
	if err := gitlab.Readiness(ctx, base); err != nil {
		return err
	}
	if cfg.GitLab.Flavour == "omnibus" {
		return nil
	}
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := s.eng.Exec(ectx, det.ID, "", []string{"cat", "/proc/1/comm", GitLabDataVersionFile(cfg.GitLab.Flavour)})
	if err != nil {
		return fmt.Errorf("look at GitLab's boot: %w", err)
	}
	lines := strings.Split(strings.TrimRight(res.Stdout, "\n"), "\n")
	pid1, data := strings.TrimSpace(lines[0]), ""
	if len(lines) > 1 {
		data = strings.TrimSpace(lines[1])
	}
	if err := sameersbnBooted(pid1, data, envValue(det.Env, "GITLAB_VERSION")); err != nil {
		return err
	}
	// The readiness above may have come from the first supervisord, just before the exec: ask
	// again, now that only the final one can answer.
	return gitlab.Readiness(ctx, base)
}

// sameersbnBooted says why a sameersbn GitLab that passes readiness is not done booting, or nil.
// image is the image's GITLAB_VERSION ("" for an image that does not say; then PID 1 alone
// tells).
func sameersbnBooted(pid1, data, image string) error {
	if pid1 != "supervisord" {
		return fmt.Errorf("GitLab's entrypoint is still migrating the database (PID 1 is %q, not supervisord); GitLab restarts when it is done", pid1)
	}
	if image != "" && data != image {
		return fmt.Errorf("GitLab's data is at version %q, the image is %s: the migrations have not finished", data, image)
	}
	return nil
}

// envValue is the value of name in a container's environment, or "".
func envValue(env []string, name string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// rotatedTokens finds, by profile, the runners whose entry in config.toml carries another token
// than forgebox's record: gitlab-runner resets a token that has an expiry and saves the new one
// there (gitlab-runner v18.5.0 commands/multi.go resetOneRunnerToken). An unreadable file
// rotated nothing.
func rotatedTokens(configTOML []byte, records map[string]RunnerRecord) map[string]runnercfg.Credentials {
	creds, err := runnercfg.ReadCredentials(configTOML)
	if err != nil {
		return nil
	}
	out := map[string]runnercfg.Credentials{}
	for profile, r := range records {
		for _, c := range creds {
			if c.ID == r.ID && c.Token != "" && c.Token != r.Token {
				out[profile] = c
			}
		}
	}
	return out
}

// adoptRotated is r with the runner's rotated token, so forgebox writes back what the runner saved.
func adoptRotated(r RunnerRecord, c runnercfg.Credentials) RunnerRecord {
	r.Token, r.TokenExpiresAt = c.Token, c.TokenExpiresAt.UTC()
	if !c.TokenObtainedAt.IsZero() {
		r.CreatedAt = c.TokenObtainedAt.UTC()
	}
	return r
}

// scopeName says which jobs a runner takes.
func scopeName(project string) msg.Msg {
	if project == "" {
		return msg.New("scope.all")
	}
	return msg.New("scope.project", "project", project)
}
