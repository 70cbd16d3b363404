package stack_test

import (
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/stack"
)

// earlierRun is the real engine with an earlier, killed run's requests landing at the worst
// moment: right before this run's own create of the same network or container, after this run
// observed that it did not exist. The engine carries out the earlier request in full (the
// labelled object exists), as it does when the process that sent it dies waiting for the answer.
type earlierRun struct {
	stack.Engine
	container string // the container whose create the earlier run had sent
	network   string

	mu     sync.Mutex
	landed []string
}

func (e *earlierRun) CreateStackNetwork(ctx context.Context, st string, spec engine.NetworkSpec) (string, error) {
	if e.first(spec.Name == e.network, "network "+spec.Name) {
		if _, err := e.Engine.CreateStackNetwork(ctx, st, spec); err != nil {
			return "", err
		}
	}
	return e.Engine.CreateStackNetwork(ctx, st, spec)
}

func (e *earlierRun) Create(ctx context.Context, spec engine.ContainerSpec) (string, error) {
	if e.first(spec.Name == e.container, "container "+spec.Name) {
		if _, err := e.Engine.Create(ctx, spec); err != nil {
			return "", err
		}
	}
	return e.Engine.Create(ctx, spec)
}

func (e *earlierRun) first(match bool, what string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !match || strings.Contains(strings.Join(e.landed, "\n"), what) {
		return false
	}
	e.landed = append(e.landed, what)
	return true
}

// TestUpAdoptsWhatAnEarlierRunCreated: the race. A labelled container (and network)
// with the wanted name appears between observe and create; up looks again, finds it is the
// stack's own, and converges instead of calling it foreign.
func TestUpAdoptsWhatAnEarlierRunCreated(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	late := &earlierRun{Engine: f.eng, container: f.cfg.Stack.Name + "-redis", network: f.cfg.NetworkName()}
	s := stack.New(f.cfg, late, f.secrets, stack.Options{Events: f.rec, Version: "test"})
	if _, err := s.Up(ctx); err != nil {
		t.Fatalf("up with an earlier run's creates landing first: %v", err)
	}
	if len(late.landed) != 2 {
		t.Fatalf("the earlier run's creates landed for %q, want the network and redis", late.landed)
	}
	var looked int
	for _, e := range f.rec.evs {
		if e.Kind == events.KindInfo && strings.Contains(e.Message, "appeared after forgebox looked") {
			looked++
		}
	}
	if looked != 2 {
		t.Errorf("%d 'looking again' events, want one for the network and one for redis", looked)
	}
	st := f.status(ctx)
	if st["redis"].State != "running" || !st["redis"].UpToDate {
		t.Errorf("redis after up: %+v", st["redis"])
	}
	if plan := f.up(ctx); !plan.Empty() {
		t.Errorf("the next up planned:\n%s", plan)
	}
}

// TestUpRefusesAnotherStacksContainer: a container with the wanted name that another stack's
// labels mark is not adopted; the error says whose it is, and it is left running.
func TestUpRefusesAnotherStacksContainer(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	name := f.cfg.Stack.Name + "-redis"
	out, err := exec.Command("docker", "run", "-d", "--name", name, "--label", engine.LabelStack+"=fbt-elsewhere",
		"--entrypoint", "sleep", f.cfg.Redis.Image, "600").CombinedOutput()
	if err != nil {
		t.Fatalf("docker run: %v %s", err, out)
	}
	id := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", id).Run() })

	_, err = f.stack().Up(ctx)
	if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), `belongs to forgebox stack "fbt-elsewhere"`) {
		t.Fatalf("up with another stack's container named %s: %v", name, err)
	}
	state, err := exec.Command("docker", "inspect", "-f", "{{.Id}} {{.State.Running}}", name).Output()
	if err != nil {
		t.Fatalf("docker inspect: %v", err)
	}
	if strings.TrimSpace(string(state)) != id+" true" {
		t.Errorf("the other stack's container was touched: %s", state)
	}
}
