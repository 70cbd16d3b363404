package fault_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/testenv"
)

// Kill trials: a fixed number of seeded runs, each on a stack of its own. The seed makes the kill
// points reproducible: FORGEBOX_FAULT_SEED=N replays (or explores) another set.
const (
	killTrials     = 6
	killSeed       = 20261129
	killConcurrent = 2  // stacks converging at once (2 cores, and other tests share the engine)
	killLines      = 22 // progress lines of a cold up that a kill may follow
)

// TestKillDuringUp kills `forgebox up` with SIGKILL at seeded random points of a cold converge
// (after the n-th progress line it prints, plus a random delay), runs `up` again, which must
// succeed, and checks the stack ends converged: a third `up` has nothing to do, every component
// runs in exactly one container, provisioning is intact, GitLab (the stand-in) has exactly the
// runners forgebox recorded, and no lock is left behind.
func TestKillDuringUp(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	eng := testenv.Engine(t)
	im := testenv.TestImages(t)
	forgeboxBinary(t)
	seed := uint64(killSeed)
	if v := os.Getenv("FORGEBOX_FAULT_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("FORGEBOX_FAULT_SEED=%q: %v", v, err)
		}
		seed = n
	}
	t.Logf("seed %d (FORGEBOX_FAULT_SEED replays a set of trials)", seed)
	slots := make(chan struct{}, killConcurrent)
	var killed atomic.Int32
	t.Cleanup(func() {
		// Every trial must have hit a running `up`: one that finished first tests nothing.
		if n := killed.Load(); !t.Failed() && n < killTrials {
			t.Errorf("only %d of %d trials killed a running up", n, killTrials)
		}
	})
	for i := range killTrials {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		// A cold `up` prints about 27 progress lines (steps, waits, provisioning changes, token
		// and runner notes), the last as it finishes. Each trial kills in its own stretch of the
		// first 22 (a margin for plans that print a few lines less), so the set covers the
		// network, PostgreSQL and its provisioning, Redis, GitLab's boot, the admin token and
		// the runner registration.
		lo, hi := 1+i*killLines/killTrials, (i+1)*killLines/killTrials
		after := lo + rng.IntN(hi-lo+1)
		delay := time.Duration(rng.IntN(500)) * time.Millisecond
		t.Run(fmt.Sprintf("trial%d", i+1), func(t *testing.T) {
			t.Parallel()
			slots <- struct{}{}
			defer func() { <-slots }()
			s := newStack(t, testenv.Config(t, eng, im))
			line, err := s.upKilledAfter(after, delay)
			if err != nil {
				t.Fatalf("kill after progress line %d + %s: %v", after, delay, err)
			}
			killed.Add(1)
			t.Logf("killed %s after progress line %d: %q", delay, after, line)
			if out, err := s.forgebox("up"); err != nil {
				t.Fatalf("up after the kill failed: %v\n%s", err, out)
			}
			s.assertConverged()
			s.assertRunnersMatchRecords()
			s.assertNoTempFiles()
		})
	}
}

// upKilledAfter runs `forgebox up`, and after the n-th progress line (plan lines, printed before
// anything changes, do not count) waits delay and sends SIGKILL. It returns the last line read
// before the kill, or errNotKilled when up ended first.
func (s *fbStack) upKilledAfter(n int, delay time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := s.command(ctx, "up")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", err
	}
	sc := bufio.NewScanner(stdout)
	var last string
	var output strings.Builder
	seen := 0
	for sc.Scan() {
		line := sc.Text()
		output.WriteString(line + "\n")
		if strings.HasPrefix(line, "plan: ") {
			continue
		}
		last = line
		if seen++; seen == n {
			break
		}
	}
	if seen == n {
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
	}
	go func() { // drain, so a process that was not killed can finish
		for sc.Scan() {
		}
	}()
	cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		return last, fmt.Errorf("%w (exit: %v):\n%s%s", errNotKilled, cmd.ProcessState, output.String(), stderr.String())
	}
	return last, nil
}
