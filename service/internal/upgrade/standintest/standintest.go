// Package standintest runs whole stacks on the test images for the backup and upgrade tests:
// the GitLab stand-in retagged per GitLab version (repository forgebox-test/gitlab-standin-<h>,
// tag the version, with FORGEBOX_STANDIN_VERSION and sameersbn's GITLAB_VERSION baked in), the
// runner stand-in retagged alpine-v<major.minor.0>, so forgebox derives each hop's images from
// the configured ones exactly as it does for sameersbn/gitlab and gitlab/gitlab-runner. What
// passes on these passed on the stand-ins, not on GitLab.
package standintest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/stack"
	"github.com/forgebox/forgebox/service/internal/testenv"
	"github.com/forgebox/forgebox/service/internal/upgradepath"
)

// MigrationTime is how long each stand-in version's batched migrations run in these tests.
const MigrationTime = "3s"

var buildMu sync.Mutex

// RepoOf turns forgebox-test/gitlab-standin:<h> into forgebox-test/gitlab-standin-<h>, so each
// stand-in build has its own per-version (or per-setting) tags.
func RepoOf(t testing.TB, image string) string {
	i := strings.LastIndex(image, ":")
	if i < 0 {
		t.Fatalf("test image %s has no tag", image)
	}
	return image[:i] + "-" + image[i+1:]
}

func imageExists(ref string) bool {
	return exec.Command("docker", "image", "inspect", ref).Run() == nil
}

// Derive builds (once; cached by tag) ref FROM base with env set, with the classic builder:
// no registry and no build context are needed. Tests bake a stand-in's settings in this way,
// as an administrator's setting would be on a real GitLab.
func Derive(t testing.TB, base, ref string, env ...string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if imageExists(ref) {
		return ref
	}
	df := "FROM " + base + "\n"
	for _, e := range env {
		df += "ENV " + e + "\n"
	}
	cmd := exec.Command("docker", "build", "-q", "-t", ref, "-")
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	cmd.Stdin = strings.NewReader(df)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build %s: %v\n%s", ref, err, out)
	}
	return ref
}

// GitLabImage is the GitLab stand-in claiming version v.
func GitLabImage(t testing.TB, im testenv.Images, v string) string {
	return Derive(t, im.GitLab, RepoOf(t, im.GitLab)+":"+v,
		"FORGEBOX_STANDIN_VERSION="+v, "GITLAB_VERSION="+v, "FORGEBOX_STANDIN_MIGRATION_TIME="+MigrationTime)
}

// DefaultVersion is the GitLab version of the default config's gitlab.image, so tests follow the
// default when it moves.
func DefaultVersion(t testing.TB) string {
	v, ok := upgradepath.VersionFromImage(config.Default().GitLab.Image)
	if !ok {
		t.Fatalf("the default gitlab.image %s has no version in its tag", config.Default().GitLab.Image)
	}
	return v.String()
}

// DefaultPostgresMajor is the PostgreSQL major of the default config's postgres.image.
func DefaultPostgresMajor(t testing.TB) int {
	m, ok := upgradepath.PostgresMajorFromImage(config.Default().Postgres.Image)
	if !ok {
		t.Fatalf("the default postgres.image %s has no major in its tag", config.Default().Postgres.Image)
	}
	return m
}

// OtherStop is a required stop of another minor than v, from the stops table.
func OtherStop(t testing.TB, v string) string {
	pv := upgradepath.MustParse(v)
	for _, s := range upgradepath.Load().Stops {
		if s.MinorString() != pv.MinorString() && !s.Less(upgradepath.MustParse("17.8.0")) {
			return s.String()
		}
	}
	t.Fatalf("no stop besides %s", v)
	return ""
}

// RunnerImage is the runner stand-in tagged like gitlab/gitlab-runner for GitLab v, claiming
// that runner version (which decides, for one, its job log format).
func RunnerImage(t testing.TB, im testenv.Images, v string) string {
	rv := upgradepath.RunnerVersionFor(upgradepath.MustParse(v))
	return Derive(t, im.Runner, RepoOf(t, im.Runner)+":alpine-v"+rv.String(), "FORGEBOX_STANDIN_VERSION="+rv.String())
}

// Recorder keeps the activity feed's events.
type Recorder struct {
	mu  sync.Mutex
	evs []events.Event
	t   testing.TB
}

func (r *Recorder) Emit(e events.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, e)
	r.mu.Unlock()
	if testing.Verbose() && e.Kind != events.KindPull {
		r.t.Logf("event %s %s %s: %s", e.Kind, e.Op, e.Component, e.Message)
	}
}

// Events returns what was emitted so far.
func (r *Recorder) Events() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.evs...)
}

// Fixture is one stack of test images with its config in a file.
type Fixture struct {
	T       testing.TB
	Images  testenv.Images
	Eng     *engine.Client
	Cfg     config.Config
	CfgPath string
	Events  *Recorder
}

// New is a stack whose GitLab stand-in claims version and whose runner matches it; mods adjust
// the config before it is saved.
func New(t testing.TB, version, flavour string, mods ...func(*config.Config)) *Fixture {
	t.Helper()
	eng := testenv.Engine(t)
	im := testenv.TestImages(t)
	cfg := testenv.Config(t, eng, im)
	cfg.GitLab.Flavour = flavour
	cfg.GitLab.Image = GitLabImage(t, im, version)
	cfg.Runner.Image = RunnerImage(t, im, version)
	for _, m := range mods {
		m(&cfg)
	}
	f := &Fixture{T: t, Images: im, Eng: eng, Cfg: cfg, CfgPath: filepath.Join(cfg.Stack.DataDir, "forgebox.toml"), Events: &Recorder{t: t}}
	if err := config.Save(f.CfgPath, cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

// Ctx is a test context with a generous deadline (several engineers share two cores).
func Ctx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Secrets opens the stack's secret store as it is on disk now.
func (f *Fixture) Secrets() *config.Secrets {
	s, err := config.OpenSecrets(f.Cfg.Stack.DataDir)
	if err != nil {
		f.T.Fatal(err)
	}
	return s
}

// Stack is a Stack on the fixture's current config (reloaded from its file).
func (f *Fixture) Stack() *stack.Stack {
	cfg, err := config.Load(f.CfgPath)
	if err != nil {
		f.T.Fatal(err)
	}
	f.Cfg = cfg
	s := f.Secrets()
	return stack.New(cfg, f.Eng, s, stack.Options{Events: f.Events, Version: "test", SecretsPath: s.Path()})
}

// SaveConfig is the ConfigSaver operations get.
func (f *Fixture) SaveConfig(cfg config.Config) error {
	if err := config.Save(f.CfgPath, cfg); err != nil {
		return err
	}
	f.Cfg = cfg
	return nil
}

// Up brings the stack up and fails the test otherwise.
func (f *Fixture) Up(ctx context.Context) {
	f.T.Helper()
	if _, err := f.Stack().Up(ctx); err != nil {
		f.T.Fatalf("up: %v", err)
	}
}

// Session begins an operation on a fresh Stack; it ends with the test.
func (f *Fixture) Session(op string) *stack.Session {
	f.T.Helper()
	x, err := f.Stack().Begin(op)
	if err != nil {
		f.T.Fatal(err)
	}
	f.T.Cleanup(x.End)
	return x
}

// IP is a component's address on the stack network.
func (f *Fixture) IP(ctx context.Context, component string) string {
	f.T.Helper()
	det, ok, err := f.Stack().View().Container(ctx, component)
	if err != nil || !ok {
		f.T.Fatalf("%s: %v (found %v)", component, err, ok)
	}
	return det.IPs[f.Cfg.NetworkName()]
}

// GitLabURL is the GitLab stand-in as the host reaches it.
func (f *Fixture) GitLabURL(ctx context.Context) string {
	port := "80"
	if f.Cfg.GitLab.Flavour == "omnibus" {
		port = fmt.Sprint(f.Cfg.GitLab.HTTPPort)
	}
	return "http://" + f.IP(ctx, "gitlab") + ":" + port
}

// API calls the GitLab stand-in with the stored admin token and decodes its JSON answer.
func (f *Fixture) API(ctx context.Context, path string, out any) int {
	f.T.Helper()
	tok, _ := f.Secrets().Get(config.SecretGitLabAdminToken)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.GitLabURL(ctx)+path, nil)
	req.Header.Set("PRIVATE-TOKEN", tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.T.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, out); err != nil {
			f.T.Fatalf("GET %s: %v: %s", path, err, body)
		}
	}
	return resp.StatusCode
}

// State is the stand-in's GET /api/v4/standin/state.
type State struct {
	Version            string         `json:"version"`
	DataVersion        string         `json:"data_version"`
	MigrationsByStatus map[string]int `json:"migrations_by_status"`
	SecretsMatchData   bool           `json:"secrets_match_data"`
	DBKeyBaseMatches   bool           `json:"db_key_base_matches"`
	OTPKeyBaseMatches  bool           `json:"otp_key_base_matches"`
	SSHHostKey         string         `json:"ssh_host_key"`
	PumaStopped        bool           `json:"puma_stopped"`
	SidekiqStopped     bool           `json:"sidekiq_stopped"`
}

// StandinState asks the GitLab stand-in about itself.
func (f *Fixture) StandinState(ctx context.Context) State {
	f.T.Helper()
	var s State
	if code := f.API(ctx, "/api/v4/standin/state", &s); code != http.StatusOK {
		f.T.Fatalf("standin state: HTTP %d", code)
	}
	return s
}

// DB connects to GitLab's database as the PostgreSQL superuser.
func (f *Fixture) DB(ctx context.Context) *pgx.Conn {
	f.T.Helper()
	pw, _ := f.Secrets().Get(config.SecretPostgresSuperuser)
	cc, err := pgx.ParseConfig("sslmode=disable connect_timeout=10")
	if err != nil {
		f.T.Fatal(err)
	}
	cc.Host, cc.Port, cc.User, cc.Password, cc.Database = f.IP(ctx, "postgres"), 5432, f.Cfg.Postgres.Superuser, pw, stack.GitLabDatabase
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		f.T.Fatal(err)
	}
	f.T.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Logs is a component's container log.
func (f *Fixture) Logs(ctx context.Context, component string) string {
	det, ok, err := f.Stack().View().Container(ctx, component)
	if err != nil || !ok {
		return ""
	}
	lines, _ := f.Eng.Logs(ctx, det.ID, 400)
	return strings.Join(lines, "\n")
}
