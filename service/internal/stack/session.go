package stack

// Sessions: operations that keep the stack lock for their whole run (a backup, a restore, an
// upgrade walking several hops) and change the stack step by step in between. The backup,
// pgupgrade and upgrade packages work through a Session; what they do to containers goes
// through here, so the stack package stays the one place that knows the components.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/gitlab"
	"github.com/forgebox/forgebox/service/internal/msg"
	"github.com/forgebox/forgebox/service/internal/pgprov"
	"github.com/forgebox/forgebox/service/internal/upgradepath"
)

// Session is one operation holding the stack lock.
type Session struct {
	s    *Stack
	lock *Lock
	op   string
}

// Begin takes the stack lock for op (a *BusyError when another operation holds it). End
// releases it.
func (s *Stack) Begin(op string) (*Session, error) {
	lock, err := TryLock(s.cfg.Stack.DataDir, op)
	if err != nil {
		return nil, err
	}
	return &Session{s: s, lock: lock, op: op}, nil
}

// End releases the lock.
func (x *Session) End() { x.lock.Unlock() }

// Op is the operation's name, as the activity feed shows it.
func (x *Session) Op() string { return x.op }

// Config is the stack's config as the session knows it.
func (x *Session) Config() config.Config { return x.s.cfg }

// SetConfig makes the stack use cfg from now on; the caller saved it first.
func (x *Session) SetConfig(cfg config.Config) { x.s.cfg = cfg }

// Secrets is the secret store.
func (x *Session) Secrets() SecretStore { return x.s.secrets }

// SecretsPath is the secret store's file.
func (x *Session) SecretsPath() string { return x.s.secretsPath }

// Engine is the Docker Engine the stack runs on.
func (x *Session) Engine() Engine { return x.s.eng }

// Logger is the stack's logger.
func (x *Session) Logger() *slog.Logger { return x.s.log }

// ForgeboxVersion is forgebox's own version.
func (x *Session) ForgeboxVersion() string { return x.s.version }

// Emit sends an event to the activity feed, stamped with the session's operation.
func (x *Session) Emit(e events.Event) {
	if e.Op == "" {
		e.Op = x.op
	}
	x.s.emit(e)
}

// Pull brings ref onto the engine the way `up` does (stack.pull_via, stack.registry_mirrors,
// forgebox's resuming downloads), so an upgrade's new images come the same way as the first ones.
func (x *Session) Pull(ctx context.Context, component, ref string) error {
	return x.s.pullImage(ctx, component, ref)
}

// Converge is `up` inside the session: create, start or recreate what differs from the config,
// wait for health, provision, admin token, runners.
func (x *Session) Converge(ctx context.Context) (Plan, error) { return x.s.converge(ctx) }

// ConvergeForUpgrade is Converge for the upgrade that owns the stack's upgrade state file.
func (x *Session) ConvergeForUpgrade(ctx context.Context) (Plan, error) {
	return x.s.converge(withUpgrade(ctx))
}

// Desired is the stack as the config asks for it, without generating secrets.
func (x *Session) Desired(ctx context.Context) (Desired, error) {
	return x.s.desiredNow(ctx, readOnlySecrets{x.s.secrets})
}

// Container finds a component's own container.
func (x *Session) Container(ctx context.Context, name string) (engine.Detail, bool, error) {
	_, det, found, err := x.s.componentNow(ctx, name)
	return det, found, err
}

// Running returns a component's container when it runs, else a *NoContainerError or an error
// saying it is stopped.
func (x *Session) Running(ctx context.Context, name string) (engine.Detail, error) {
	det, ok, err := x.Container(ctx, name)
	if err != nil {
		return det, err
	}
	if !ok {
		return det, &NoContainerError{Component: name}
	}
	if !det.Running() {
		return det, fmt.Errorf("%s is %s: bring the stack up first (forgebox up)", name, det.State)
	}
	return det, nil
}

// Stop stops a component's container, if it runs; it stays, with its data, for a later
// converge to start again.
func (x *Session) Stop(ctx context.Context, name string) error {
	comp, det, ok, err := x.s.componentNow(ctx, name)
	if err != nil || !ok || !det.Running() {
		return err
	}
	x.Emit(events.Event{Kind: events.KindStep, Status: events.Working, Component: name}.With(msg.New("component.stop", "container", det.Name)))
	return x.s.eng.Stop(ctx, det.ID, comp.StopTimeout)
}

// Exec runs cmd in a component's running container.
func (x *Session) Exec(ctx context.Context, component, user string, cmd []string) (engine.ExecResult, error) {
	det, err := x.Running(ctx, component)
	if err != nil {
		return engine.ExecResult{}, err
	}
	return x.s.eng.Exec(ctx, det.ID, user, cmd)
}

// HostPath is where a path inside a component's container lives on the host, through its bind
// mounts (one path means the same directory to forgebox and to the engine).
func (x *Session) HostPath(component, containerPath string) (string, error) {
	return hostPath(x.s.cfg, component, containerPath)
}

func hostPath(cfg config.Config, component, containerPath string) (string, error) {
	var comp Component
	var err error
	ro := readOnlySecrets{emptySecrets{}}
	switch component {
	case "gitlab":
		comp, err = gitlabComponent(cfg, ro, Env{})
	case "postgres":
		comp, err = postgresComponent(cfg, ro, Env{})
	case "runner":
		comp, err = runnerComponent(cfg, ro, Env{})
	default:
		return "", &UnknownComponentError{Name: component, Known: []string{"postgres", "gitlab", "runner"}}
	}
	if err != nil {
		return "", err
	}
	best := ""
	var src string
	for _, b := range comp.Spec.Binds {
		t := strings.TrimSuffix(b.Target, "/")
		if (containerPath == t || strings.HasPrefix(containerPath, t+"/")) && len(t) > len(best) {
			best, src = t, b.Source
		}
	}
	if best == "" {
		return "", fmt.Errorf("%s in the %s container is not on a bind mount", containerPath, component)
	}
	return filepath.Join(src, strings.TrimPrefix(containerPath, best)), nil
}

type emptySecrets struct{}

func (emptySecrets) Ensure(string) (string, error) { return "", nil }
func (emptySecrets) Get(string) (string, bool)     { return "", false }

// GitLabDataVersionFile is where the GitLab image keeps the version that last ran on its data:
// sameersbn compares GITLAB_VERSION with /home/git/data/tmp/VERSION (docs/gitlab-contract.md §1.4);
// Omnibus's init-container reads /var/opt/gitlab/gitlab-rails/VERSION for upgrade-check.
func GitLabDataVersionFile(flavour string) string {
	if flavour == "omnibus" {
		return "/var/opt/gitlab/gitlab-rails/VERSION"
	}
	return "/home/git/data/tmp/VERSION"
}

// GitLabDataVersion reads the version that last ran on GitLab's data; ok is false on data no
// GitLab has run on yet.
func GitLabDataVersion(cfg config.Config) (v upgradepath.Version, ok bool, err error) {
	p, err := hostPath(cfg, "gitlab", GitLabDataVersionFile(cfg.GitLab.Flavour))
	if err != nil {
		return v, false, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return v, false, nil
	}
	if err != nil {
		return v, false, fmt.Errorf("read GitLab's data version: %w", err)
	}
	v, err = upgradepath.Parse(string(b))
	if err != nil {
		return v, false, fmt.Errorf("%s: %w", p, err)
	}
	return v, true, nil
}

// GitLabBase is GitLab's base URL as forgebox reaches it, and the admin token.
func (x *Session) GitLabBase(ctx context.Context) (base, token string, err error) {
	det, err := x.Running(ctx, "gitlab")
	if err != nil {
		return "", "", err
	}
	if base, err = gitlabBaseURL(x.s.cfg, det); err != nil {
		return "", "", err
	}
	token, ok := x.s.secrets.Get(config.SecretGitLabAdminToken)
	if !ok || token == "" {
		return base, "", errors.New("forgebox has no admin token for GitLab yet: run forgebox up")
	}
	return base, token, nil
}

// GitLabVersion asks the running GitLab its version, through the GitLab API client with the
// admin token.
func (x *Session) GitLabVersion(ctx context.Context) (upgradepath.Version, error) {
	base, token, err := x.GitLabBase(ctx)
	if err != nil {
		return upgradepath.Version{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := gitlab.New(base, token)
	if err != nil {
		return upgradepath.Version{}, err
	}
	v, err := c.Version(ctx)
	if err != nil {
		return upgradepath.Version{}, err
	}
	return upgradepath.Parse(v)
}

// WaitGitLab waits up to deadline for GitLab's readiness check, failing fast when its container
// stops.
func (x *Session) WaitGitLab(ctx context.Context, deadline time.Duration) error {
	d, err := x.Desired(ctx)
	if err != nil {
		return err
	}
	comp, err := x.s.component(d, "gitlab")
	if err != nil {
		return err
	}
	det, ok, err := x.s.findContainer(ctx, d, comp)
	if err != nil {
		return err
	}
	if !ok {
		return &NoContainerError{Component: "gitlab"}
	}
	comp.Deadline = deadline
	_, err = x.s.waitGitLab(ctx, comp, x.s.cfg, det.ID)
	return err
}

// PostgresTarget is how forgebox reaches the running PostgreSQL as superuser.
func (x *Session) PostgresTarget(ctx context.Context) (pgprov.Target, error) {
	det, err := x.Running(ctx, "postgres")
	if err != nil {
		return pgprov.Target{}, err
	}
	d, err := x.Desired(ctx)
	if err != nil {
		return pgprov.Target{}, err
	}
	return x.s.postgresTarget(det, d)
}

// PostgresDataDir is PostgreSQL's data directory on the host (PGDATA is its pgdata subdir).
func (x *Session) PostgresDataDir() string { return postgresDataDir(x.s.cfg) }

// PostgresPGDATA is PGDATA inside the container, below the bind-mounted data directory.
const PostgresPGDATA = "/var/lib/postgresql/data/pgdata"

// PostgresMount is where the data directory is mounted in the container.
const PostgresMount = "/var/lib/postgresql/data"

// PostgresSpec is a PostgreSQL container like the stack's own, with another name, image and data
// directory, for a major upgrade to restore into. Its component label (postgres-upgrade) is no
// configured component, so a later `up` removes a leftover one (never its data).
func (x *Session) PostgresSpec(name, image, dataDir string) (engine.ContainerSpec, error) {
	comp, err := postgresComponent(x.s.cfg, readOnlySecrets{x.s.secrets}, Env{})
	if err != nil {
		return engine.ContainerSpec{}, err
	}
	spec := comp.Spec
	spec.Name = name
	spec.Image = image
	spec.Aliases = nil
	spec.Restart = "no"
	spec.Network = x.s.cfg.NetworkName()
	// Its own data directory; the same pg_hba.conf (hba_file in its command) as the stack's.
	binds := []engine.Bind{{Source: dataDir, Target: PostgresMount}}
	for _, b := range spec.Binds {
		if b.Target != PostgresMount {
			binds = append(binds, b)
		}
	}
	spec.Binds = binds
	spec.Labels = map[string]string{
		engine.LabelStack:     x.s.cfg.Stack.Name,
		engine.LabelComponent: "postgres-upgrade",
		engine.LabelVersion:   x.s.version,
	}
	spec.Labels[engine.LabelSpecHash] = SpecHash(spec)
	return spec, nil
}

// RunnerRecords are the runners forgebox registered, by profile, from the secret store.
func (x *Session) RunnerRecords() (map[string]RunnerRecord, error) {
	return loadRunnerRecords(x.s.secrets)
}

// VerifyRunners asks GitLab whether it still knows each stored runner token.
func (x *Session) VerifyRunners(ctx context.Context) (map[string]bool, error) {
	base, token, err := x.GitLabBase(ctx)
	if err != nil {
		return nil, err
	}
	api, err := gitlab.New(base, token)
	if err != nil {
		return nil, err
	}
	records, err := loadRunnerRecords(x.s.secrets)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for profile, r := range records {
		if out[profile], err = api.VerifyRunner(ctx, r.Token); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RunnerConfigPath is the runner's config.toml on the host.
func (x *Session) RunnerConfigPath() string { return RunnerConfigPath(x.s.cfg) }

// View is a session without the lock, for reading only (an upgrade plan, a status): its
// methods that change the stack must not be called on it.
func (s *Stack) View() *Session { return &Session{s: s, op: "view"} }

// WithOperationChanges is cur with the fields that backups, restores and upgrades change taken
// from op: the three images, the runner profiles and concurrency. Saving this instead of op keeps
// an edit someone else saved meanwhile (another setting, through the web app or the file).
func WithOperationChanges(cur, op config.Config) config.Config {
	cur.GitLab.Image = op.GitLab.Image
	cur.Runner.Image = op.Runner.Image
	cur.Postgres.Image = op.Postgres.Image
	cur.Runner.Profiles = op.Runner.Profiles
	cur.Runner.Concurrent = op.Runner.Concurrent
	return cur
}
