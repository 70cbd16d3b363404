package fault_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/testenv"
)

// Kill trials: each run draws a fresh seed (printed first; FORGEBOX_FAULT_SEED replays it) and
// runs as many trials as FORGEBOX_FAULT_TRIALS says, or as fit in FORGEBOX_FAULT_BUDGET (a Go
// duration), else defaultTrials. Trial i's kill point comes from (seed, i) alone, so a failed
// trial replays with the same seed.
const (
	defaultTrials  = 6
	killConcurrent = 2  // stacks converging at once (2 cores, and other tests share the engine)
	killLines      = 22 // progress lines of a cold up that a kill may follow
)

// faultSeed is FORGEBOX_FAULT_SEED, or a fresh random seed. It is printed before anything runs,
// on stdout too, so a run that hangs or is killed still shows it.
func faultSeed(t *testing.T) uint64 {
	t.Helper()
	seed := rand.Uint64() >> 1
	if v := os.Getenv("FORGEBOX_FAULT_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("FORGEBOX_FAULT_SEED=%q: %v", v, err)
		}
		seed = n
	}
	fmt.Printf("%s: fault seed %d (FORGEBOX_FAULT_SEED=%d replays it)\n", t.Name(), seed, seed)
	t.Logf("seed %d (FORGEBOX_FAULT_SEED=%d replays it)", seed, seed)
	return seed
}

// faultTrials says how many trials to run: a count, or a time budget (trials start while it
// lasts; at least one runs).
func faultTrials(t *testing.T) (count int, budget time.Duration) {
	t.Helper()
	if v := os.Getenv("FORGEBOX_FAULT_TRIALS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("FORGEBOX_FAULT_TRIALS=%q: want a number of trials, 1 or more", v)
		}
		return n, 0
	}
	if v := os.Getenv("FORGEBOX_FAULT_BUDGET"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("FORGEBOX_FAULT_BUDGET=%q: want a duration such as 4m", v)
		}
		return 1 << 20, d
	}
	return defaultTrials, 0
}

// trialSlots bounds the stacks converging at once across all kill tests of the package.
var trialSlots = make(chan struct{}, killConcurrent)

// runTrials checks what every kill test needs (root, the engine, the test images, the forgebox
// binary), draws the seed, and runs trial(i, rng) for each trial, killConcurrent at a time
// (shared with the other kill tests), each as a subtest.
func runTrials(t *testing.T, trial func(t *testing.T, i int, rng *rand.Rand, eng *engine.Client, im testenv.Images)) {
	requireRoot(t)
	eng := testenv.Engine(t)
	im := testenv.TestImages(t)
	forgeboxBinary(t)
	seed := faultSeed(t)
	count, budget := faultTrials(t)
	start := time.Now()
	var next, ran atomic.Int64
	var wg sync.WaitGroup
	for range killConcurrent {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= count || (budget > 0 && i > 0 && time.Since(start) > budget) {
					return
				}
				trialSlots <- struct{}{}
				if budget > 0 && i > 0 && time.Since(start) > budget {
					<-trialSlots
					return
				}
				ran.Add(1)
				t.Run(fmt.Sprintf("trial%d", i+1), func(t *testing.T) {
					defer func() { <-trialSlots }()
					defer func() {
						if t.Failed() {
							t.Logf("replay: FORGEBOX_FAULT_SEED=%d FORGEBOX_FAULT_TRIALS=%d (this is trial %d)", seed, i+1, i+1)
						}
					}()
					trial(t, i, rand.New(rand.NewPCG(seed, uint64(i))), eng, im)
				})
			}
		})
	}
	wg.Wait()
	t.Logf("%d trials with seed %d in %s", ran.Load(), seed, time.Since(start).Round(time.Second))
}

// TestKillDuringUp kills `forgebox up` with SIGKILL at random points of a cold converge (after
// the n-th progress line it prints, plus a random delay), runs `up` again, which must succeed,
// and checks the stack ends converged: a third `up` has nothing to do, every component runs in
// exactly one container, provisioning is intact, GitLab (the stand-in) has exactly the runners
// forgebox recorded, and no lock is left behind.
func TestKillDuringUp(t *testing.T) {
	t.Parallel()
	runTrials(t, func(t *testing.T, i int, rng *rand.Rand, eng *engine.Client, im testenv.Images) {
		// A cold `up` prints about 27 progress lines (steps, waits, provisioning changes, token
		// and runner notes), the last as it finishes; a kill follows one of the first 22 (a
		// margin for plans that print a few lines less), anywhere from the network to the
		// runner registration.
		after := 1 + rng.IntN(killLines)
		delay := time.Duration(rng.IntN(500)) * time.Millisecond
		s := newStack(t, testenv.Config(t, eng, im))
		line, err := s.killedAfter([]string{"up"}, after, delay)
		if err != nil {
			t.Fatalf("kill after progress line %d + %s: %v", after, delay, err)
		}
		t.Logf("killed %s after progress line %d: %q", delay, after, line)
		if out, err := s.forgebox("up"); err != nil {
			t.Fatalf("up after the kill failed: %v\n%s", err, out)
		}
		s.assertConverged()
		s.assertRunnersMatchRecords()
		s.assertNoTempFiles()
	})
}

// killedAfter runs forgebox with args, and after the n-th progress line (plan lines, printed
// before anything changes, do not count) waits delay and sends SIGKILL. It returns the last line
// read before the kill, or errNotKilled when the command ended first.
func (s *fbStack) killedAfter(args []string, n int, delay time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := s.command(ctx, args...)
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
