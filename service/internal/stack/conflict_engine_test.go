package stack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
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

// TestUpDropsADuplicateNetworkAnEarlierRunLeft: a killed run's network create and the next
// run's can both succeed at API 1.41 (the engine checks names only against networks it already
// has), leaving two networks of one name; containers on that name then fail to start ("network
// is ambiguous"). up keeps the older, removes the copy and converges.
func TestUpDropsADuplicateNetworkAnEarlierRunLeft(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	name := f.cfg.JobsNetworkName()
	var ids []string
	for range 2 {
		if id, ok := createNetworkUnchecked(t, name, f.cfg.Stack.Name); ok {
			ids = append(ids, id)
		}
	}
	if len(ids) == 1 {
		// Docker 25 and later refuse a second network of one name at every API version: the
		// race cannot leave two there (the newer-engine suite runs this on Docker 26). up must
		// still converge on the one there is. An older engine must take both, or this test
		// would show nothing.
		info, err := f.eng.Info(ctx)
		if major, _, _ := strings.Cut(info.ServerVersion, "."); err != nil || major < "25" || len(major) != 2 {
			t.Fatalf("engine %s (%v) refused a second network named %s; an engine before 25.0 takes it", info.ServerVersion, err, name)
		}
		t.Logf("engine %s refused a second network named %s (409): no duplicate to remove", info.ServerVersion, name)
	}
	if _, err := f.stack().Up(ctx); err != nil {
		t.Fatalf("up with two networks named %s: %v", name, err)
	}
	got := networksNamed(t, f, ctx, name)
	if len(got) != 1 || got[0] != ids[0] {
		t.Fatalf("networks named %s after up: %v, want only %s, the older", name, got, ids[0])
	}
	if plan := f.up(ctx); !plan.Empty() {
		t.Errorf("the next up planned:\n%s", plan)
	}
}

// lateNetwork is the real engine with a killed run's create of network landing late: after this
// run made its own and just before this run's first container create (the fault soak's seed
// 255834348791358), so a later container create or start finds the name ambiguous.
type lateNetwork struct {
	stack.Engine
	t                *testing.T
	network, stackOf string
	once             sync.Once
	copyID           string
	copied           bool
}

func (e *lateNetwork) Create(ctx context.Context, spec engine.ContainerSpec) (string, error) {
	e.once.Do(func() { e.copyID, e.copied = createNetworkUnchecked(e.t, e.network, e.stackOf) })
	return e.Engine.Create(ctx, spec)
}

// TestUpDropsANetworkCopyThatLandsMidRun: the copy appears after up made the jobs network; the
// container that asks for it fails ("is ambiguous"), up looks again, removes the late copy (the
// newer; nothing is on it) and converges, keeping the network it made.
func TestUpDropsANetworkCopyThatLandsMidRun(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	name := f.cfg.JobsNetworkName()
	late := &lateNetwork{Engine: f.eng, t: t, network: name, stackOf: f.cfg.Stack.Name}
	s := stack.New(f.cfg, late, f.secrets, stack.Options{Events: f.rec, Version: "test"})
	if _, err := s.Up(ctx); err != nil {
		t.Fatalf("up with a copy of %s landing mid-run: %v", name, err)
	}
	if !late.copied {
		info, err := f.eng.Info(ctx)
		if major, _, _ := strings.Cut(info.ServerVersion, "."); err != nil || major < "25" || len(major) != 2 {
			t.Fatalf("engine %s (%v) refused a second network named %s; an engine before 25.0 takes it", info.ServerVersion, err, name)
		}
		t.Logf("engine %s refused a second network named %s (409): the race cannot happen there", info.ServerVersion, name)
		return
	}
	got := networksNamed(t, f, ctx, name)
	if len(got) != 1 || got[0] == late.copyID {
		t.Fatalf("networks named %s after up: %v; the late copy %s must be the one removed", name, got, late.copyID)
	}
	var looked bool
	for _, e := range f.rec.evs {
		looked = looked || (e.Kind == events.KindInfo && strings.Contains(e.Message, "second network of the same name"))
	}
	if !looked {
		t.Error("up never said it looked again because of the copy: did the copy land where the test meant?")
	}
	if plan := f.up(ctx); !plan.Empty() {
		t.Errorf("the next up planned:\n%s", plan)
	}
}

// networksNamed lists the IDs of the stack's networks of that name.
func networksNamed(t *testing.T, f *fixture, ctx context.Context, name string) []string {
	t.Helper()
	nets, err := f.eng.ListNetworks(ctx, f.cfg.Stack.Name)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range nets {
		if n.Name == name {
			ids = append(ids, n.ID)
		}
	}
	return ids
}

// createNetworkUnchecked makes a labelled network over the engine's API with CheckDuplicate
// off, as two racing creates end up, which the docker CLI (it asks for the check) cannot do.
// ok is false when the engine refuses the name as taken (409), as Docker 25 and later do.
func createNetworkUnchecked(t *testing.T, name, stackName string) (id string, ok bool) {
	t.Helper()
	// The engine the suite runs on (the newer-engine step points DOCKER_HOST at a private one).
	sock := "/var/run/docker.sock"
	if h, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://"); ok {
		sock = h
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	body, _ := json.Marshal(map[string]any{"Name": name, "CheckDuplicate": false, "Driver": "bridge",
		"Labels": map[string]string{engine.LabelStack: stackName}})
	res, err := hc.Post("http://docker/v1.41/networks/create", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusConflict {
		return "", false
	}
	var created struct{ ID string }
	if err := json.NewDecoder(res.Body).Decode(&created); err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("create network %s: %d %v", name, res.StatusCode, err)
	}
	return created.ID, true // removed with the stack's networks (testenv.Config's cleanup)
}
