package fault_test

import (
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/testenv"
)

// killOps are the commands besides `up` that a kill may interrupt, each with how many of its
// progress lines a kill may follow (fewer than it prints, so the kill lands while it runs).
var killOps = []struct {
	args  []string
	lines int
}{
	{[]string{"down"}, 3},             // "stop and remove" per component, then the network
	{[]string{"backup", "create"}, 3}, // the step, GitLab's backup, writing the archive
}

// TestKillDuringOtherOps kills `down` or `backup create` at a random point on a converged stack
// with a row of data, runs the command again, which must succeed, and checks the stack comes
// back converged with the row, and no temporary file or lock left behind.
func TestKillDuringOtherOps(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	eng := testenv.Engine(t)
	im := testenv.TestImages(t)
	forgeboxBinary(t)
	seed := faultSeed(t)
	runTrials(t, seed, func(t *testing.T, i int, rng *rand.Rand) {
		op := killOps[rng.IntN(len(killOps))]
		after := 1 + rng.IntN(op.lines)
		delay := time.Duration(rng.IntN(800)) * time.Millisecond
		name := strings.Join(op.args, " ")
		s := newStack(t, testenv.Config(t, eng, im))
		s.must("up")
		marker := s.writeMarker()
		line, err := s.killedAfter(op.args, after, delay)
		if err != nil {
			t.Fatalf("kill %s after progress line %d + %s: %v", name, after, delay, err)
		}
		t.Logf("killed %s %s after progress line %d: %q", name, delay, after, line)
		if out, err := s.forgebox(op.args...); err != nil {
			t.Fatalf("%s after the kill failed: %v\n%s", name, err, out)
		}
		if op.args[0] == "down" {
			if per := s.containers(); len(per) != 0 {
				t.Errorf("containers after the second down: %v", per)
			}
			s.must("up")
		} else {
			s.assertBackupsComplete()
		}
		s.assertConverged()
		s.assertMarker(marker)
		s.assertNoTempFiles()
	})
}

// assertBackupsComplete: the backup directory holds finished archives only, and `backup list`
// finds no problem with any of them.
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
	if out := s.must("backup", "list"); strings.Contains(strings.ToLower(out), "unreadable") || strings.Contains(strings.ToLower(out), "problem") {
		s.t.Errorf("backup list after a killed backup:\n%s", out)
	}
}
