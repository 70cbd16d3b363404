package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/testenv"
)

func healthError(t *testing.T, err error) *engine.HealthError {
	t.Helper()
	var he *engine.HealthError
	if !errors.As(err, &he) {
		t.Fatalf("error %v (%T) is no *engine.HealthError", err, err)
	}
	return he
}

func TestWaitHealthyExitFailsFast(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	im := testenv.TestImages(t)
	stack := newStack(t)
	name := stack + "-boom"
	id := startContainer(t, eng, stack, engine.ContainerSpec{
		Name:       name,
		Image:      im.Redis,
		Entrypoint: []string{"sh", "-c", "echo boom-line; exit 3"},
	})

	start := time.Now()
	d, err := eng.WaitHealthy(ctxFor(t, 2*time.Minute), id, engine.WaitOptions{Deadline: 60 * time.Second, Poll: 200 * time.Millisecond})
	took := time.Since(start)
	if err == nil {
		t.Fatalf("WaitHealthy of a container that exits 3 succeeded: %+v", d)
	}
	if took > 20*time.Second {
		t.Errorf("WaitHealthy took %s to see the exit", took)
	}
	he := healthError(t, err)
	if errors.Is(err, engine.ErrHealthTimeout) {
		t.Errorf("an exit is reported as a timeout: %v", err)
	}
	if he.Container != name {
		t.Errorf("HealthError.Container = %q, want %q", he.Container, name)
	}
	wantContains(t, "error", err.Error(), name, "exited with code 3", "boom-line")
	if !strings.Contains(strings.Join(he.LastLogs, "\n"), "boom-line") {
		t.Errorf("LastLogs = %q, want boom-line", he.LastLogs)
	}
	if d.State != "exited" || d.ExitCode != 3 {
		t.Errorf("Detail = %+v", d)
	}
}

// Restarted by its policy, a crashing container is running now and then; it is no success.
func TestWaitHealthyCrashLoopFails(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	im := testenv.TestImages(t)
	stack := newStack(t)
	name := stack + "-loop"
	id := startContainer(t, eng, stack, engine.ContainerSpec{
		Name:       name,
		Image:      im.Redis,
		Entrypoint: []string{"sh", "-c", "echo loop-line; exit 3"},
		Restart:    "on-failure",
	})
	start := time.Now()
	d, err := eng.WaitHealthy(ctxFor(t, 2*time.Minute), id, engine.WaitOptions{Deadline: 60 * time.Second, Poll: 200 * time.Millisecond})
	if err == nil {
		t.Fatalf("WaitHealthy of a crash-looping container succeeded: %+v", d)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("WaitHealthy took %s to see the crash loop", took)
	}
	he := healthError(t, err)
	if !strings.Contains(he.Reason, "keeps restarting") && !strings.Contains(he.Reason, "exited with code 3") {
		t.Errorf("HealthError reason %q", he.Reason)
	}
	wantContains(t, "error", err.Error(), name, "loop-line")
}

// Without a healthcheck, a container that stays up counts as up once it has run a moment.
func TestWaitHealthyNoHealthcheck(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	im := testenv.TestImages(t)
	stack := newStack(t)
	id := startContainer(t, eng, stack, engine.ContainerSpec{Image: im.Redis, Entrypoint: []string{"sleep", "1000"}})
	start := time.Now()
	d, err := eng.WaitHealthy(ctxFor(t, 2*time.Minute), id, engine.WaitOptions{Deadline: 30 * time.Second, Poll: 100 * time.Millisecond})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("WaitHealthy: %v", err)
	}
	if d.State != "running" || d.Health != "" {
		t.Errorf("Detail = %+v", d)
	}
	if took < 900*time.Millisecond || took > 10*time.Second {
		t.Errorf("WaitHealthy without a healthcheck returned after %s, want about 1s", took)
	}
}

func TestWaitHealthyUnhealthy(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	im := testenv.TestImages(t)
	stack := newStack(t)
	name := stack + "-sick"
	id := startContainer(t, eng, stack, engine.ContainerSpec{
		Name:       name,
		Image:      im.Redis,
		Entrypoint: []string{"sh", "-c", "echo sick-line; exec sleep 1000"},
		Health:     &engine.Healthcheck{Test: []string{"CMD", "false"}, Interval: time.Second, Timeout: 5 * time.Second, Retries: 1},
	})

	start := time.Now()
	d, err := eng.WaitHealthy(ctxFor(t, 2*time.Minute), id, engine.WaitOptions{Deadline: 40 * time.Second, Poll: 200 * time.Millisecond})
	took := time.Since(start)
	if err == nil {
		t.Fatalf("WaitHealthy of a failing healthcheck succeeded: %+v", d)
	}
	if took > 20*time.Second {
		t.Errorf("WaitHealthy took %s to see unhealthy", took)
	}
	he := healthError(t, err)
	if errors.Is(err, engine.ErrHealthTimeout) {
		t.Errorf("unhealthy is reported as a timeout: %v", err)
	}
	if he.Container != name || he.Reason != "is unhealthy" {
		t.Errorf("HealthError = %+v", he)
	}
	wantContains(t, "error", err.Error(), name, "unhealthy", "sick-line")
	if d.Health != "unhealthy" || d.State != "running" {
		t.Errorf("Detail = %+v", d)
	}
}

// TestWaitHealthyUnhealthyButReady: with a direct probe, Docker's "unhealthy" (a slow first
// start outlasting the start period) is not the end: the wait goes on until the probe answers.
func TestWaitHealthyUnhealthyButReady(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	im := testenv.TestImages(t)
	stack := newStack(t)
	id := startContainer(t, eng, stack, engine.ContainerSpec{
		Name:       stack + "-slow",
		Image:      im.Redis,
		Entrypoint: []string{"sh", "-c", "exec sleep 1000"},
		Health:     &engine.Healthcheck{Test: []string{"CMD", "false"}, Interval: time.Second, Timeout: 5 * time.Second, Retries: 1},
	})
	var sawUnhealthy, probed int
	d, err := eng.WaitHealthy(ctxFor(t, 2*time.Minute), id, engine.WaitOptions{Deadline: time.Minute, Poll: 200 * time.Millisecond,
		Ready: func(ctx context.Context, d engine.Detail) bool {
			probed++
			if d.Health == "unhealthy" {
				sawUnhealthy++
			}
			return sawUnhealthy >= 3 // the service answers a while after Docker gave up on it
		}})
	if err != nil {
		t.Fatalf("WaitHealthy with a probe that answers: %v", err)
	}
	if d.Health != "unhealthy" || sawUnhealthy < 3 {
		t.Errorf("returned at health %q after %d unhealthy probes (%d in all), want unhealthy and 3", d.Health, sawUnhealthy, probed)
	}
}

func TestWaitHealthyHealthy(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	im := testenv.TestImages(t)
	stack := newStack(t)
	id := startContainer(t, eng, stack, engine.ContainerSpec{
		Image:  im.Redis,
		Cmd:    []string{"redis-server"},
		Health: &engine.Healthcheck{Test: []string{"CMD", "redis-cli", "ping"}, Interval: time.Second, Timeout: 5 * time.Second, Retries: 3},
	})

	var mu sync.Mutex
	var seen []engine.Detail
	d, err := eng.WaitHealthy(ctxFor(t, 2*time.Minute), id, engine.WaitOptions{
		Deadline: 40 * time.Second,
		Poll:     100 * time.Millisecond,
		Every:    100 * time.Millisecond,
		Progress: func(d engine.Detail, _ time.Duration) { mu.Lock(); seen = append(seen, d); mu.Unlock() },
	})
	if err != nil {
		t.Fatalf("WaitHealthy: %v", err)
	}
	if d.Health != "healthy" || d.State != "running" || !d.Running() || d.StartedAt.IsZero() || d.ID != id {
		t.Errorf("Detail = %+v", d)
	}
	// It waited through "starting": running alone is not enough with a healthcheck.
	mu.Lock()
	defer mu.Unlock()
	for _, s := range seen {
		if s.Health != "starting" {
			t.Errorf("progress reported health %q before the end", s.Health)
		}
	}
	if len(seen) == 0 {
		t.Errorf("no progress while the container was starting (interval 1s, progress every 100ms)")
	}
}

func TestWaitHealthyDeadline(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	im := testenv.TestImages(t)
	stack := newStack(t)
	name := stack + "-slow"
	id := startContainer(t, eng, stack, engine.ContainerSpec{
		Name:       name,
		Image:      im.Redis,
		Entrypoint: []string{"sleep", "1000"},
		// Never succeeds, but the start period keeps it "starting" far beyond the deadline.
		Health: &engine.Healthcheck{Test: []string{"CMD", "false"}, Interval: time.Second, Timeout: 5 * time.Second, StartPeriod: 10 * time.Minute, Retries: 1},
	})

	type report struct {
		d      engine.Detail
		waited time.Duration
	}
	var mu sync.Mutex
	var reports []report
	start := time.Now()
	d, err := eng.WaitHealthy(ctxFor(t, 2*time.Minute), id, engine.WaitOptions{
		Deadline: 8 * time.Second,
		Poll:     100 * time.Millisecond,
		Every:    500 * time.Millisecond,
		Progress: func(d engine.Detail, waited time.Duration) {
			mu.Lock()
			reports = append(reports, report{d, waited})
			mu.Unlock()
		},
	})
	took := time.Since(start)
	if err == nil {
		t.Fatalf("WaitHealthy of a container that stays starting succeeded: %+v", d)
	}
	if !errors.Is(err, engine.ErrHealthTimeout) {
		t.Fatalf("error %v does not wrap ErrHealthTimeout", err)
	}
	he := healthError(t, err)
	if he.Container != name {
		t.Errorf("HealthError.Container = %q, want %q", he.Container, name)
	}
	wantContains(t, "error", err.Error(), name, "not healthy after 8s")
	if took < 8*time.Second-100*time.Millisecond || took > 30*time.Second {
		t.Errorf("WaitHealthy with an 8s deadline returned after %s", took)
	}

	// Progress every 500ms at most, in order, all while starting. How many fit in 8s depends
	// on how long each Inspect takes on a loaded engine (seconds, on a 2-core box running
	// several suites), so only the bounds that hold however slow it is are checked: at least
	// two (the wait reports more than once), never more often than every 500ms.
	mu.Lock()
	defer mu.Unlock()
	if len(reports) < 2 || len(reports) > 17 {
		t.Errorf("%d progress reports in 8s at every 500ms, want 2 to 17", len(reports))
	}
	var last time.Duration
	for i, r := range reports {
		if r.d.Health != "starting" || r.d.State != "running" || r.d.ID != id {
			t.Errorf("report %d: %+v", i, r.d)
		}
		if r.waited < last+400*time.Millisecond || r.waited > 8*time.Second+200*time.Millisecond {
			t.Errorf("report %d after %s (previous %s)", i, r.waited, last)
		}
		last = r.waited
	}
}

// A missing container is an error at once, not a wait until the deadline.
func TestWaitHealthyMissingContainer(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	_, err := eng.WaitHealthy(context.Background(), "fbt-no-such-container-"+randHex(t, 4), engine.WaitOptions{Deadline: 10 * time.Second})
	if err == nil || !engine.IsNotFound(err) {
		t.Fatalf("WaitHealthy of a missing container: %v, want not found", err)
	}
}
