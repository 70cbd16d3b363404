package fault_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/testenv"
	"github.com/forgebox/forgebox/service/internal/upgrade"
	"github.com/forgebox/forgebox/service/internal/upgrade/standintest"
)

// killOps are the operations besides a CLI `up` that a kill may interrupt. setup (optional)
// adjusts the config before the first up; prepare readies the converged stack and returns the
// command; lines is how many of its progress lines a kill may follow (fewer than it prints, so
// the kill lands while it runs).
var killOps = []struct {
	name    string
	lines   int
	setup   func(s *fbStack, im testenv.Images)
	prepare func(s *fbStack, im testenv.Images) []string
}{
	// "stop and remove" per component, then the network.
	{"down", 3, nil, func(*fbStack, testenv.Images) []string { return []string{"down"} }},
	// The step, GitLab's backup, writing the archive.
	{"backup create", 3, nil, func(*fbStack, testenv.Images) []string { return []string{"backup", "create"} }},
	// Checking the archive, the safety backup, unpacking, GitLab's restore.
	{"backup restore", 4, nil, func(s *fbStack, _ testenv.Images) []string {
		s.must("backup", "create")
		return []string{"backup", "restore", s.newestBackup(), "--yes"}
	}},
	// One hop to the next required stop: the pull step, the backup before the hop (its step,
	// GitLab's backup, the archive), GitLab and the runner switched and converged, the wait for
	// GitLab's version and its batched migrations.
	{"upgrade apply", 8, upgradeFrom, nextUpgrade},
	{"serve", 0, nil, nil}, // forgebox serve, killed during an up it runs: killServeDuringUp
}

// upgradeStops are the GitLab versions (sameersbn, required stops with PostgreSQL 17) an
// upgrade trial walks: the stack starts at the first, and each attempt at a kill upgrades one
// stop further (an attempt the kill missed has upgraded already).
var upgradeStops = []string{"18.2.8", "18.5.7", "18.8.11", "18.11.7"}

// upgradeFrom puts the stack on the GitLab and runner stand-ins claiming the first stop.
func upgradeFrom(s *fbStack, im testenv.Images) {
	s.cfg.GitLab.Flavour = "sameersbn"
	s.cfg.GitLab.Image = standintest.GitLabImage(s.t, im, upgradeStops[0])
	s.cfg.Runner.Image = standintest.RunnerImage(s.t, im, upgradeStops[0])
	s.save()
}

// nextUpgrade is `upgrade apply` to the stop after the one the config names now, with that
// stop's stand-in images in place.
func nextUpgrade(s *fbStack, im testenv.Images) []string {
	s.t.Helper()
	s.reload()
	at := slices.IndexFunc(upgradeStops, func(v string) bool {
		return s.cfg.GitLab.Image == standintest.RepoOf(s.t, im.GitLab)+":"+v
	})
	if at < 0 || at+1 == len(upgradeStops) {
		s.t.Fatalf("gitlab.image %s: no next stop in %v", s.cfg.GitLab.Image, upgradeStops)
	}
	to := upgradeStops[at+1]
	standintest.GitLabImage(s.t, im, to)
	standintest.RunnerImage(s.t, im, to)
	s.upgradeTo = to
	return []string{"upgrade", "apply", "--to", to, "--yes"}
}

// assertUpgraded: the upgrade finished (no progress file left), the config names the target's
// images, and GitLab runs that version.
func (s *fbStack) assertUpgraded(im testenv.Images) {
	s.t.Helper()
	s.reload()
	if st, err := upgrade.LoadState(s.cfg.Stack.DataDir); err != nil || st != nil {
		s.t.Errorf("upgrade state after the rerun: %+v, %v", st, err)
	}
	if want := standintest.RepoOf(s.t, im.GitLab) + ":" + s.upgradeTo; s.cfg.GitLab.Image != want {
		s.t.Errorf("gitlab.image %s after the upgrade, want %s", s.cfg.GitLab.Image, want)
	}
	if want := standintest.RunnerImage(s.t, im, s.upgradeTo); s.cfg.Runner.Image != want {
		s.t.Errorf("runner.image %s after the upgrade, want %s", s.cfg.Runner.Image, want)
	}
	if got := s.mustDocker("inspect", "-f", "{{.Config.Image}}", s.container("gitlab")); got != s.cfg.GitLab.Image {
		s.t.Errorf("the gitlab container runs %s, want %s", got, s.cfg.GitLab.Image)
	}
}

// reload reads the config file back: upgrade apply rewrites it.
func (s *fbStack) reload() {
	s.t.Helper()
	cfg, err := config.Load(s.path)
	if err != nil {
		s.t.Fatal(err)
	}
	s.cfg = cfg
}

// killAttempts bounds the draws for one trial's kill point (see TestKillDuringOtherOps).
const killAttempts = 3

// TestKillDuringOtherOps kills `down`, `backup create`, `backup restore`, `upgrade apply` or
// `forgebox serve` (during an up it runs) at a random point on a converged stack holding a row
// of data, runs the command again (an `up` for serve), which must succeed (an upgrade resumes),
// and checks the stack comes back converged with the row, and no temporary file, unfinished
// archive or lock left behind (and, for the upgrade, on the target version).
func TestKillDuringOtherOps(t *testing.T) {
	t.Parallel()
	runTrials(t, func(t *testing.T, i int, rng *rand.Rand, eng *engine.Client, im testenv.Images) {
		op := killOps[rng.IntN(len(killOps))]
		s := newStack(t, testenv.Config(t, eng, im))
		if op.setup != nil {
			op.setup(s, im)
		}
		if op.prepare == nil {
			s.killServeDuringUp(rng)
			s.assertConverged()
			s.assertNoTempFiles()
			return
		}
		s.must("up")
		marker := s.writeMarker()
		// A point drawn past the operation's end (its last step can take less than the delay)
		// kills nothing: the operation is run again, from a converged stack, with a point drawn
		// anew, up to killAttempts times, so every trial that passes did survive a kill.
		var args []string
		for attempt := 1; ; attempt++ {
			args = op.prepare(s, im)
			after := 1 + rng.IntN(op.lines)
			delay := time.Duration(rng.IntN(800>>(attempt-1))) * time.Millisecond
			line, err := s.killedAfter(args, after, delay)
			if err == nil {
				t.Logf("killed %s %s after progress line %d: %q", op.name, delay, after, line)
				break
			}
			if !errors.Is(err, errNotKilled) || attempt == killAttempts {
				t.Fatalf("kill %s after progress line %d + %s (attempt %d): %v", op.name, after, delay, attempt, err)
			}
			t.Logf("%s ended before the kill after progress line %d + %s; drawing another point", op.name, after, delay)
			s.must("up")
		}
		if out, err := s.forgebox(args...); err != nil {
			t.Fatalf("%s after the kill failed: %v\n%s", op.name, err, out)
		}
		if op.name == "down" {
			if per := s.containers(); len(per) != 0 {
				t.Errorf("containers after the second down: %v", per)
			}
			s.must("up")
		} else {
			s.assertBackupsComplete()
		}
		if op.name == "upgrade apply" {
			s.assertUpgraded(im)
		}
		s.assertConverged()
		s.assertMarker(marker)
		s.assertNoTempFiles()
	})
}

// newestBackup names the newest backup `backup list` shows.
func (s *fbStack) newestBackup() string {
	s.t.Helper()
	var out struct {
		Backups []struct {
			Name string `json:"name"`
		} `json:"backups"`
	}
	if err := json.Unmarshal([]byte(s.must("backup", "list", "--json")), &out); err != nil || len(out.Backups) == 0 {
		s.t.Fatalf("backup list --json: %v (%d backups)", err, len(out.Backups))
	}
	return out.Backups[0].Name
}

// assertBackupsComplete: the backup directory holds finished archives only, and `backup list`
// finds every one readable.
func (s *fbStack) assertBackupsComplete() {
	s.t.Helper()
	entries, err := os.ReadDir(s.cfg.BackupDir())
	if err != nil {
		s.t.Fatalf("backup dir: %v", err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") || strings.HasPrefix(e.Name(), ".") {
			s.t.Errorf("unfinished file in the backup dir: %s", e.Name())
		}
	}
	var out struct {
		Backups []struct {
			Name    string `json:"name"`
			Problem string `json:"problem"`
		} `json:"backups"`
	}
	if err := json.Unmarshal([]byte(s.must("backup", "list", "--json")), &out); err != nil {
		s.t.Fatalf("backup list --json: %v", err)
	}
	for _, b := range out.Backups {
		if b.Problem != "" {
			s.t.Errorf("backup %s after a killed backup: %s", b.Name, b.Problem)
		}
	}
}

// killServeDuringUp starts `forgebox serve`, asks it for an up over the API, kills it with
// SIGKILL once the up has reached a randomly chosen component's step (plus a random delay), and
// runs `forgebox up` from the CLI, which must take over and succeed.
func (s *fbStack) killServeDuringUp(rng *rand.Rand) {
	s.t.Helper()
	component := []string{"postgres", "redis", "gitlab", "runner"}[rng.IntN(4)]
	delay := time.Duration(rng.IntN(800)) * time.Millisecond
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(s.t))
	cmd := s.command(s.t.Context(), "serve", "--listen", addr)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	base := "http://" + addr
	api := func(method, path string) (int, []byte) {
		tok, _ := os.ReadFile(filepath.Join(s.cfg.Stack.DataDir, config.AdminTokenFile))
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			s.t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, []byte(err.Error())
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	waitFor(s.t, 2*time.Minute, "forgebox serve answers", func() (bool, string) {
		code, b := api("GET", "/healthz")
		return code == http.StatusOK, string(b)
	})
	if code, b := api("POST", "/api/v1/up"); code != http.StatusAccepted {
		s.t.Fatalf("POST /api/v1/up: %d %s\n%s", code, b, out.String())
	}
	waitFor(s.t, 8*time.Minute, "the up reaches "+component, func() (bool, string) {
		code, b := api("GET", "/api/v1/events?after=0&limit=2000")
		var page struct{ Events []events.Event }
		if code != http.StatusOK || json.Unmarshal(b, &page) != nil {
			return false, string(b)
		}
		for _, e := range page.Events {
			if e.Kind == events.KindStep && e.Component == component {
				return true, ""
			}
			if e.Kind == events.KindDone || e.Kind == events.KindError {
				s.t.Fatalf("the up ended before it reached %s: %s", component, e.Message)
			}
		}
		return false, fmt.Sprintf("%d events", len(page.Events))
	})
	time.Sleep(delay) // where in that step the kill lands (not synchronisation)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	killed = true
	s.t.Logf("killed forgebox serve %s after the up reached %s", delay, component)
	if o, err := s.forgebox("up"); err != nil {
		s.t.Fatalf("up after serve was killed: %v\n%s", err, o)
	}
}
