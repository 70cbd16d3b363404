package stack

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
)

// Error paths of apply and observe on the fake engine: the failures a real engine produces only
// by luck, each followed by the next run, which must converge from whatever was left.

func fakeStack(t *testing.T) (*fakeEngine, func(func(*config.Config)) *Stack) {
	t.Helper()
	cfg := config.Default()
	cfg.Stack.Name = "fbfake"
	cfg.Stack.DataDir = t.TempDir()
	cfg.Stack.PullPolicy = "never"
	cfg.GitLab.Host = "forgebox.example"
	f := newFakeEngine()
	for _, im := range []string{cfg.Postgres.Image, cfg.Redis.Image, cfg.GitLab.Image, cfg.Runner.Image, "redis:other"} {
		f.images[im] = "sha256:" + im
	}
	sec, err := config.OpenSecrets(cfg.Stack.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	return f, func(change func(*config.Config)) *Stack {
		c := cfg
		if change != nil {
			change(&c)
		}
		return New(c, f, sec, Options{Version: "test"})
	}
}

const redisName = "fbfake-redis"

func upRedis(t *testing.T, s *Stack) Plan {
	t.Helper()
	plan, err := s.UpComponent(context.Background(), "redis")
	if err != nil {
		t.Fatalf("up redis: %v", err)
	}
	return plan
}

func kinds(p Plan) []ActionKind {
	var out []ActionKind
	for _, a := range p.Actions {
		out = append(out, a.Kind)
	}
	return out
}

// failOnce fails the first call that starts with prefix, with err.
func failOnce(prefix string, err error) func(string) error {
	var done atomic.Bool
	return func(call string) error {
		if strings.HasPrefix(call, prefix) && done.CompareAndSwap(false, true) {
			return err
		}
		return nil
	}
}

func wantOneRedis(t *testing.T, f *fakeEngine, state string) {
	t.Helper()
	got := f.named()
	if len(got) != 1 || got[redisName] != state {
		t.Fatalf("containers %v, want only %s, %s", got, redisName, state)
	}
}

func TestStartFailsAfterCreate(t *testing.T) {
	f, stack := fakeStack(t)
	f.hook = failOnce("start ", errors.New("start container: port is already allocated"))
	if _, err := stack(nil).UpComponent(context.Background(), "redis"); err == nil || !strings.Contains(err.Error(), "port is already allocated") {
		t.Fatalf("up with a failing start: %v", err)
	}
	wantOneRedis(t, f, "created")
	// The next up starts what was created; it does not create a second one.
	plan := upRedis(t, stack(nil))
	if k := kinds(plan); !slices.Contains(k, ActStart) || slices.Contains(k, ActCreate) {
		t.Errorf("plan after a failed start: %v, want a start and no create", k)
	}
	wantOneRedis(t, f, "running")
}

func TestStopFailsMidRecreate(t *testing.T) {
	f, stack := fakeStack(t)
	upRedis(t, stack(nil))
	before := f.byName(redisName).id
	other := func(c *config.Config) { c.Redis.Image = "redis:other" }
	f.hook = failOnce("stop "+before, errors.New("stop container: tried to kill container, but did not receive an exit event"))
	if _, err := stack(other).UpComponent(context.Background(), "redis"); err == nil || !strings.Contains(err.Error(), "did not receive an exit event") {
		t.Fatalf("recreate with a failing stop: %v", err)
	}
	// The old container is as it was: not removed, no second one made beside it.
	wantOneRedis(t, f, "running")
	if id := f.byName(redisName).id; id != before {
		t.Fatalf("redis is %s, want the old %s", id, before)
	}
	plan := upRedis(t, stack(other))
	if k := kinds(plan); !slices.Contains(k, ActRecreate) {
		t.Errorf("plan after a failed stop: %v, want the recreate again", k)
	}
	wantOneRedis(t, f, "running")
	if c := f.byName(redisName); c.id == before || c.spec.Image != "redis:other" {
		t.Errorf("redis after the second try: %s from %s", c.id, c.spec.Image)
	}
}

func TestNetworkVanishesBeforeCreate(t *testing.T) {
	f, stack := fakeStack(t)
	upRedis(t, stack(nil))
	other := func(c *config.Config) { c.Redis.Image = "redis:other" }
	var gone atomic.Bool
	f.hook = func(call string) error {
		if call == "create "+redisName && gone.CompareAndSwap(false, true) {
			f.mu.Lock()
			clear(f.networks) // somebody ran `docker network prune` between the stop and the create
			f.mu.Unlock()
		}
		return nil
	}
	if _, err := stack(other).UpComponent(context.Background(), "redis"); err == nil || !engine.IsNotFound(err) || !strings.Contains(err.Error(), "network") {
		t.Fatalf("create on a vanished network: %v", err)
	}
	if got := f.named(); len(got) != 0 {
		t.Fatalf("containers after the failed create: %v", got)
	}
	plan := upRedis(t, stack(other))
	if k := kinds(plan); !slices.Contains(k, ActCreateNetwork) || !slices.Contains(k, ActCreate) {
		t.Errorf("plan after the network vanished: %v, want the network and redis created", k)
	}
	wantOneRedis(t, f, "running")
}

// TestConflictWithOurOwnIsAdopted: 409 on create, and the container holding the name carries
// this stack's labels (an earlier run's create landed after this run looked).
func TestConflictWithOurOwnIsAdopted(t *testing.T) {
	f, stack := fakeStack(t)
	var landed atomic.Bool
	f.hook = func(call string) error {
		if call == "create "+redisName && landed.CompareAndSwap(false, true) {
			d, err := stack(nil).desiredNow(context.Background(), stack(nil).secrets)
			if err != nil {
				return err
			}
			c, _ := d.Component("redis")
			if _, err := f.create(c.Spec); err != nil {
				return err
			}
		}
		return nil
	}
	plan := upRedis(t, stack(nil))
	wantOneRedis(t, f, "running")
	if k := kinds(plan); !slices.Contains(k, ActStart) {
		t.Errorf("plan %v: want the adopted container started", k)
	}
	if !slices.Contains(f.calls, "inspect "+redisName) {
		t.Errorf("the name was not looked up after the conflict: %v", f.calls)
	}
}

// TestConflictWithAStrangerIsRefused: 409 on create, and the name is held by a container
// without this stack's label, or with another stack's: refused, saying which, untouched.
func TestConflictWithAStrangerIsRefused(t *testing.T) {
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   string
	}{
		{"unlabelled", nil, "no " + engine.LabelStack + " label"},
		{"another stack's", map[string]string{engine.LabelStack: "elsewhere"}, `belongs to forgebox stack "elsewhere"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, stack := fakeStack(t)
			// Listed under no stack (or another), so observe cannot see it: only the create meets it.
			id, err := f.create(engine.ContainerSpec{Name: redisName, Image: "busybox", Labels: c.labels})
			if err != nil {
				t.Fatal(err)
			}
			f.setState(id, "running")
			_, err = stack(nil).UpComponent(context.Background(), "redis")
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "not this stack's") || !engine.IsConflict(err) {
				t.Fatalf("up against %s container: %v", c.name, err)
			}
			for _, call := range f.calls {
				if call == "stop "+id || call == "remove "+id || call == "start "+id {
					t.Errorf("the stranger's container was touched: %s", call)
				}
			}
			wantOneRedis(t, f, "running")
		})
	}
}

// TestConflictThatKeepsComingBackEnds: a name that is taken at every create and free at every
// look (something keeps making and removing it) is looked at a bounded number of times.
func TestConflictThatKeepsComingBackEnds(t *testing.T) {
	f, stack := fakeStack(t)
	var creates atomic.Int32
	f.hook = func(call string) error {
		if call == "create "+redisName {
			creates.Add(1)
			return fmt.Errorf("create container %s: %w", redisName, errdefs.ErrConflict)
		}
		return nil
	}
	_, err := stack(nil).UpComponent(context.Background(), "redis")
	if err == nil || !strings.Contains(err.Error(), "looked again 2 times") {
		t.Fatalf("up against a name that keeps coming back: %v", err)
	}
	if n := creates.Load(); n != maxLooks {
		t.Errorf("%d creates, want %d (one per look)", n, maxLooks)
	}
}

// TestCreateTimesOutAfterTheEngineActed: the create's answer is lost (a timeout) but the engine
// made the container; the run looks, finds it its own, and starts it, with no second one.
func TestCreateTimesOutAfterTheEngineActed(t *testing.T) {
	f, stack := fakeStack(t)
	var once atomic.Bool
	f.after = func(call string) error {
		if call == "create "+redisName && once.CompareAndSwap(false, true) {
			return fmt.Errorf("create container %s: %w", redisName, context.DeadlineExceeded)
		}
		return nil
	}
	upRedis(t, stack(nil))
	wantOneRedis(t, f, "running")
}

// TestStartTimesOutAfterTheEngineActed: the start's answer is lost; the run says so, and the
// next one finds redis running and only waits for it.
func TestStartTimesOutAfterTheEngineActed(t *testing.T) {
	f, stack := fakeStack(t)
	var once atomic.Bool
	f.after = func(call string) error {
		if strings.HasPrefix(call, "start ") && once.CompareAndSwap(false, true) {
			return fmt.Errorf("start container: %w", context.DeadlineExceeded)
		}
		return nil
	}
	if _, err := stack(nil).UpComponent(context.Background(), "redis"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("up with a start that timed out: %v", err)
	}
	plan := upRedis(t, stack(nil))
	if k := kinds(plan); slices.Contains(k, ActCreate) || slices.Contains(k, ActStart) || slices.Contains(k, ActRecreate) {
		t.Errorf("plan after the lost answer: %v, want nothing created or started", k)
	}
	wantOneRedis(t, f, "running")
}

// TestNetworkCreateConflictWithOurOwn: the network an earlier run created lands between this
// run's look and its create.
func TestNetworkCreateConflictWithOurOwn(t *testing.T) {
	f, stack := fakeStack(t)
	var once atomic.Bool
	f.hook = func(call string) error {
		if call == "network create fbfake-net" && once.CompareAndSwap(false, true) {
			_, err := f.addNetwork("fbfake", "fbfake-net", nil)
			return err
		}
		return nil
	}
	upRedis(t, stack(nil))
	wantOneRedis(t, f, "running")
	// The stack's two networks (internal and jobs), the raced one adopted, not doubled.
	if n := len(f.networks); n != 2 {
		t.Errorf("%d networks, want 2", n)
	}
}

// TestObserveFailsWhenTheEngineDoes: an engine that fails a list mid-observe fails the
// operation with its error, changing nothing.
func TestObserveFailsWhenTheEngineDoes(t *testing.T) {
	f, stack := fakeStack(t)
	upRedis(t, stack(nil))
	f.hook = failOnce("list", errors.New("Cannot connect to the Docker daemon"))
	if _, err := stack(nil).UpComponent(context.Background(), "redis"); err == nil || !strings.Contains(err.Error(), "Cannot connect") {
		t.Fatalf("up with a failing list: %v", err)
	}
	wantOneRedis(t, f, "running")
}

// TestDownRemovesACreateThatLandsLate: a create that a cancelled up had sent lands after down's
// first look; down looks again and removes it too.
func TestDownRemovesACreateThatLandsLate(t *testing.T) {
	f, stack := fakeStack(t)
	upRedis(t, stack(nil))
	var once atomic.Bool
	f.hook = func(call string) error {
		if strings.HasPrefix(call, "stop ") && once.CompareAndSwap(false, true) {
			_, err := f.create(engine.ContainerSpec{Name: "fbfake-postgres", Image: "postgres",
				Labels: map[string]string{engine.LabelStack: "fbfake", engine.LabelComponent: "postgres"}})
			return err
		}
		return nil
	}
	if err := stack(nil).Down(context.Background()); err != nil {
		t.Fatalf("down: %v", err)
	}
	if got := f.named(); len(got) != 0 {
		t.Errorf("containers after down: %v", got)
	}
}
