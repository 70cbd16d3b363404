package fault_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/gitlab"
	"github.com/forgebox/forgebox/service/internal/stack"
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// forgeboxBinary builds forgebox once per run: the faults hit a real, separate process.
func forgeboxBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "fbfault-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "forgebox")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/forgebox/forgebox/service/cmd/forgebox").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build forgebox: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// need skips the test, or fails it under FORGEBOX_REQUIRE_ENGINE=1, when something it needs is
// missing (the same rule as testenv's).
func need(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("FORGEBOX_REQUIRE_ENGINE") == "1" {
		t.Fatalf("%s (FORGEBOX_REQUIRE_ENGINE=1)", why)
	}
	t.Skip(why)
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		need(t, "the fault suite mounts file systems and runs a dockerd: it needs root")
	}
}

// fbStack is one stack driven through the forgebox binary, as a user would drive it.
type fbStack struct {
	t    *testing.T
	cfg  config.Config
	path string   // the config file
	host string   // DOCKER_HOST for forgebox and the docker CLI; "" for the default engine
	wrap []string // command prefix, e.g. nsenter into the private engine's network namespace

	upgradeTo string // the GitLab version an upgrade trial's last `upgrade apply` went to
}

func newStack(t *testing.T, cfg config.Config) *fbStack {
	t.Helper()
	s := &fbStack{t: t, cfg: cfg, path: filepath.Join(t.TempDir(), "forgebox.toml")}
	s.save()
	return s
}

func (s *fbStack) save() {
	s.t.Helper()
	if err := config.Save(s.path, s.cfg); err != nil {
		s.t.Fatal(err)
	}
}

func (s *fbStack) command(ctx context.Context, args ...string) *exec.Cmd {
	argv := append(slices.Clone(s.wrap), forgeboxBinary(s.t), "--config", s.path)
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = os.Environ()
	if s.host != "" {
		cmd.Env = append(cmd.Env, "DOCKER_HOST="+s.host)
	}
	return cmd
}

// forgebox runs one forgebox command to its end and returns its output (stdout and stderr).
func (s *fbStack) forgebox(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	out, err := s.command(ctx, args...).CombinedOutput()
	return string(out), err
}

func (s *fbStack) must(args ...string) string {
	s.t.Helper()
	out, err := s.forgebox(args...)
	if err != nil {
		s.t.Fatalf("forgebox %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (s *fbStack) docker(args ...string) (string, error) {
	if s.host != "" {
		args = append([]string{"-H", s.host}, args...)
	}
	out, err := exec.Command("docker", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (s *fbStack) mustDocker(args ...string) string {
	s.t.Helper()
	out, err := s.docker(args...)
	if err != nil {
		s.t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (s *fbStack) container(component string) string { return s.cfg.Stack.Name + "-" + component }

// containers lists the stack's containers by component (job containers, which carry the stack
// label but no component, are left out).
func (s *fbStack) containers() map[string][]string {
	s.t.Helper()
	out := s.mustDocker("ps", "-a", "--filter", "label=io.forgebox.stack="+s.cfg.Stack.Name,
		"--format", `{{.ID}} {{.Label "io.forgebox.component"}}`)
	per := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		id, comp, _ := strings.Cut(strings.TrimSpace(line), " ")
		if id != "" && comp != "" {
			per[comp] = append(per[comp], id)
		}
	}
	return per
}

func (s *fbStack) status() []stack.ComponentStatus {
	s.t.Helper()
	var rows []stack.ComponentStatus
	out := s.must("status", "--json")
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		s.t.Fatalf("status --json: %v\n%s", err, out)
	}
	return rows
}

func (s *fbStack) statusOf(component string) stack.ComponentStatus {
	s.t.Helper()
	for _, r := range s.status() {
		if r.Component == component {
			return r
		}
	}
	s.t.Fatalf("status has no row for %s", component)
	return stack.ComponentStatus{}
}

var components = []string{"postgres", "redis", "gitlab", "runner"}

// assertConverged is the end state every fault must reach: another `up` has nothing to do (so
// provisioning, GitLab's admin token and the runners are as they should be too), every
// component runs, up to date, in exactly one container, and the lock is free and empty.
func (s *fbStack) assertConverged() {
	s.t.Helper()
	if out := s.must("up"); !strings.Contains(out, "nothing to do") {
		s.t.Errorf("one more up still had work to do:\n%s", out)
	}
	rows := s.status()
	if len(rows) != len(components) {
		s.t.Errorf("status has %d rows, want %d: %+v", len(rows), len(components), rows)
	}
	for _, r := range rows {
		healthy := r.Health == "healthy" || (r.Component == "gitlab" || r.Component == "runner") && r.Health == ""
		if r.State != "running" || !r.UpToDate || !healthy {
			s.t.Errorf("%s: state %s, health %q, up to date %v", r.Component, r.State, r.Health, r.UpToDate)
		}
	}
	per := s.containers()
	for _, c := range components {
		if len(per[c]) != 1 {
			s.t.Errorf("%d %s containers: %v", len(per[c]), c, per[c])
		}
		delete(per, c)
	}
	if len(per) > 0 {
		s.t.Errorf("containers of components that are not configured: %v", per)
	}
	s.assertLockFree()
	s.assertProvisioned()
}

// assertLockFree: nobody holds the stack lock, and the holder note was cleared on release.
func (s *fbStack) assertLockFree() {
	s.t.Helper()
	path := filepath.Join(s.cfg.Stack.DataDir, stack.LockFile)
	f, err := os.Open(path)
	if err != nil {
		s.t.Errorf("lock file: %v", err)
		return
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		s.t.Errorf("the stack lock is still held: %v", err)
		return
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	if fi, err := f.Stat(); err == nil && fi.Size() != 0 {
		b, _ := os.ReadFile(path)
		s.t.Errorf("the lock file still names a holder: %s", b)
	}
}

// psql runs SQL as the superuser inside the PostgreSQL container (over its local socket, so the
// check needs no network path of its own).
func (s *fbStack) psql(db, sql string) (string, error) {
	return s.docker("exec", s.container("postgres"), "psql", "-v", "ON_ERROR_STOP=1", "-U", s.cfg.Postgres.Superuser,
		"-d", db, "-tAc", sql)
}

// assertProvisioned checks GitLab's role, database and extensions directly in PostgreSQL.
func (s *fbStack) assertProvisioned() {
	s.t.Helper()
	out, err := s.psql(stack.GitLabDatabase, `SELECT (SELECT rolsuper::text || rolcreatedb::text || rolcanlogin::text FROM pg_roles WHERE rolname = '`+stack.GitLabRole+`')
		|| ' ' || (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database())
		|| ' ' || (SELECT count(*) FROM pg_extension WHERE extname IN ('pg_trgm', 'btree_gist', 'amcheck'))`)
	if err != nil || out != "falsetruetrue "+stack.GitLabRole+" 3" {
		s.t.Errorf("provisioning: %q %v (want role not superuser, CREATEDB, LOGIN; owner %s; 3 extensions)", out, err, stack.GitLabRole)
	}
}

// writeMarker stores a row in GitLab's database, for checking later that no data was lost.
func (s *fbStack) writeMarker() string {
	s.t.Helper()
	v := randHex(8)
	if out, err := s.psql(stack.GitLabDatabase, "CREATE TABLE IF NOT EXISTS fault_marker (v text); INSERT INTO fault_marker VALUES ('"+v+"')"); err != nil {
		s.t.Fatalf("write marker: %v %s", err, out)
	}
	return v
}

func (s *fbStack) assertMarker(v string) {
	s.t.Helper()
	var out string
	var err error
	for range 30 { // PostgreSQL may still be recovering from the fault
		if out, err = s.psql(stack.GitLabDatabase, "SELECT count(*) FROM fault_marker WHERE v = '"+v+"'"); err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil || out != "1" {
		s.t.Errorf("the row written before the fault: %q, %v", out, err)
	}
}

// baseline is what a fault must not lose, noted on a converged stack: a committed row, the
// files forgebox keeps (dataFiles) and each component's container.
type baseline struct {
	marker string
	files  dataFiles
	ids    map[string][]string
}

func (s *fbStack) noteBaseline() baseline {
	s.t.Helper()
	return baseline{marker: s.writeMarker(), files: s.dataFiles(), ids: s.containers()}
}

// assertRecovered runs `up` once the fault is gone: it must carry out the change that was
// pending (the runner's config.toml), end converged with the row, and recreate nothing.
func (s *fbStack) assertRecovered(b baseline, after string) {
	s.t.Helper()
	out := s.must("up")
	if !strings.Contains(out, "write the runner's config.toml") {
		s.t.Errorf("up after %s did not carry out the pending change:\n%s", after, out)
	}
	s.assertConverged()
	s.assertMarker(b.marker)
	s.assertSameContainers(b)
}

// assertSameContainers: healing restarts containers, it never recreates them.
func (s *fbStack) assertSameContainers(b baseline) {
	s.t.Helper()
	now := s.containers()
	for _, c := range components {
		if len(now[c]) != 1 || now[c][0] != b.ids[c][0] {
			s.t.Errorf("%s: container %v before, %v after", c, b.ids[c], now[c])
		}
	}
}

// dataFiles is what must survive a fault byte for byte: the secret store and the runner's
// config.toml.
type dataFiles map[string][]byte

func (s *fbStack) dataFiles() dataFiles {
	s.t.Helper()
	d := dataFiles{}
	for _, p := range []string{filepath.Join(s.cfg.Stack.DataDir, config.SecretsFile), stack.RunnerConfigPath(s.cfg)} {
		b, err := os.ReadFile(p)
		if err != nil {
			s.t.Fatal(err)
		}
		d[p] = b
	}
	return d
}

func (s *fbStack) assertSameFiles(before dataFiles) {
	s.t.Helper()
	for p, b := range s.dataFiles() {
		if string(b) != string(before[p]) {
			s.t.Errorf("%s changed", p)
		}
	}
	s.assertNoTempFiles()
}

// assertNoTempFiles: an interrupted atomic write leaves no temporary file behind.
func (s *fbStack) assertNoTempFiles() {
	s.t.Helper()
	for _, dir := range []string{s.cfg.Stack.DataDir, filepath.Dir(stack.RunnerConfigPath(s.cfg))} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp-") {
				s.t.Errorf("temporary file left in %s: %s", dir, e.Name())
			}
		}
	}
}

// assertRunnersMatchRecords asks the GitLab stand-in (over the stack network) which runners it
// has: exactly the ones forgebox recorded, one per profile, none left over by an interrupted
// registration. Only for stacks on the default engine, whose network the host reaches.
func (s *fbStack) assertRunnersMatchRecords() {
	s.t.Helper()
	sec, err := config.OpenSecrets(s.cfg.Stack.DataDir)
	if err != nil {
		s.t.Fatal(err)
	}
	token, _ := sec.Get(config.SecretGitLabAdminToken)
	ip := s.mustDocker("inspect", "-f", `{{(index .NetworkSettings.Networks "`+s.cfg.NetworkName()+`").IPAddress}}`, s.container("gitlab"))
	api, err := gitlab.New("http://"+ip, token)
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	listed, err := api.ListRunners(ctx)
	if err != nil {
		s.t.Fatalf("list GitLab's runners: %v", err)
	}
	var recorded []int64
	for _, n := range sec.Names() {
		if strings.HasPrefix(n, "runner/") {
			v, _ := sec.Get(n)
			var r stack.RunnerRecord
			if err := json.Unmarshal([]byte(v), &r); err != nil {
				s.t.Fatal(err)
			}
			recorded = append(recorded, r.ID)
		}
	}
	var have []int64
	for _, r := range listed {
		have = append(have, r.ID)
	}
	slices.Sort(recorded)
	slices.Sort(have)
	if !slices.Equal(have, recorded) || len(recorded) != len(s.cfg.Runner.Profiles) {
		s.t.Errorf("GitLab has runners %v, forgebox recorded %v, for %d profiles", have, recorded, len(s.cfg.Runner.Profiles))
	}
}

// waitFor polls cond every 200 ms until it holds or limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var last string
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s (last: %s)", what, limit, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func atoi(s string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(s))
	return n
}

var errNotKilled = errors.New("the process ended before the kill")
