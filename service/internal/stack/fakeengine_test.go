package stack

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	"github.com/forgebox/forgebox/service/internal/engine"
)

// fakeEngine is an in-memory engine for the error paths a real one produces only by luck. It
// keeps containers and networks as the engine would (unique names, labels, states) and lets a
// test step in before or instead of any call: hook returns an error to fail the call, or nil
// after doing something of its own (an earlier run's create landing, a network vanishing).
type fakeEngine struct {
	mu         sync.Mutex
	seq        int
	containers map[string]*fakeContainer // by ID
	networks   map[string]engine.Network // by ID
	netLabels  map[string]map[string]string
	images     map[string]string // ref -> ID
	calls      []string

	// hook runs first in every call, outside the lock: "create <name>", "start <id>",
	// "stop <id>", "remove <id>", "network create <name>"... A non-nil error fails the call.
	hook func(call string) error
	// after runs once the call has taken effect, outside the lock; its error replaces the
	// result (a call that timed out after the engine acted).
	after func(call string) error
}

type fakeContainer struct {
	spec  engine.ContainerSpec
	id    string
	state string
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{containers: map[string]*fakeContainer{}, networks: map[string]engine.Network{},
		netLabels: map[string]map[string]string{}, images: map[string]string{}}
}

func (f *fakeEngine) call(c string) error {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	h := f.hook
	f.mu.Unlock()
	if h != nil {
		return h(c)
	}
	return nil
}

func (f *fakeEngine) done(c string, err error) error {
	f.mu.Lock()
	a := f.after
	f.mu.Unlock()
	if err == nil && a != nil {
		return a(c)
	}
	return err
}

func (f *fakeEngine) byName(name string) *fakeContainer {
	for _, c := range f.containers {
		if c.spec.Name == name {
			return c
		}
	}
	return nil
}

func (f *fakeEngine) lookup(idOrName string) *fakeContainer {
	if c, ok := f.containers[idOrName]; ok {
		return c
	}
	return f.byName(idOrName)
}

func (f *fakeEngine) ListContainers(ctx context.Context, stack string) ([]engine.Container, error) {
	if err := f.call("list"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []engine.Container
	for _, c := range f.containers {
		if c.spec.Labels[engine.LabelStack] == stack {
			out = append(out, c.container(f.images))
		}
	}
	return out, nil
}

func (c *fakeContainer) container(images map[string]string) engine.Container {
	return engine.Container{ID: c.id, Name: c.spec.Name, Image: c.spec.Image, ImageID: images[c.spec.Image],
		Component: c.spec.Labels[engine.LabelComponent], SpecHash: c.spec.Labels[engine.LabelSpecHash],
		State: c.state, Labels: maps.Clone(c.spec.Labels)}
}

func (f *fakeEngine) Inspect(ctx context.Context, id string) (engine.Detail, error) {
	if err := f.call("inspect " + id); err != nil {
		return engine.Detail{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.lookup(id)
	if c == nil {
		return engine.Detail{}, fmt.Errorf("inspect container %s: %w", id, errdefs.ErrNotFound)
	}
	d := engine.Detail{Container: c.container(f.images), IPs: map[string]string{}}
	if c.state == "running" {
		d.Health = "healthy"
		d.StartedAt = time.Now()
		d.IPs[c.spec.Network] = "10.0.0." + c.id[1:]
	}
	return d, nil
}

func (f *fakeEngine) FindNetwork(ctx context.Context, stack, name string) (engine.Network, bool, error) {
	if err := f.call("network find " + name); err != nil {
		return engine.Network{}, false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, n := range f.networks {
		if n.Name == name {
			if why := engine.Foreign(f.netLabels[id], stack); why != "" {
				return engine.Network{}, false, fmt.Errorf("a network named %s exists but is not this stack's: %s", name, why)
			}
			return n, true, nil
		}
	}
	return engine.Network{}, false, nil
}

func (f *fakeEngine) CreateStackNetwork(ctx context.Context, stack string, spec engine.NetworkSpec) (string, error) {
	c := "network create " + spec.Name
	if err := f.call(c); err != nil {
		return "", err
	}
	id, err := f.addNetwork(stack, spec.Name, spec.Labels)
	if err == nil {
		f.mu.Lock()
		n := f.networks[id]
		n.Internal = spec.Internal
		f.networks[id] = n
		f.mu.Unlock()
	}
	return id, f.done(c, err)
}

func (f *fakeEngine) ListNetworks(ctx context.Context, stack string) ([]engine.Network, error) {
	if err := f.call("network list"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []engine.Network
	for id, n := range f.networks {
		if f.netLabels[id][engine.LabelStack] == stack {
			out = append(out, n)
		}
	}
	return out, nil
}

func (f *fakeEngine) Info(ctx context.Context) (engine.Info, error) {
	if err := f.call("info"); err != nil {
		return engine.Info{}, err
	}
	return engine.Info{OS: "linux", Arch: "x86_64", ServerVersion: "28.2.2", APIVersion: "1.41", ServerAPI: "1.50"}, nil
}

func (f *fakeEngine) addNetwork(stack, name string, labels map[string]string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.networks {
		if n.Name == name {
			return "", fmt.Errorf("create network %s: network with name %s already exists: %w", name, name, errdefs.ErrConflict)
		}
	}
	f.seq++
	id := "n" + strconv.Itoa(f.seq)
	all := maps.Clone(labels)
	if all == nil {
		all = map[string]string{}
	}
	all[engine.LabelStack] = stack
	f.networks[id] = engine.Network{ID: id, Name: name, Subnets: []string{"10.0.0.0/24"}}
	f.netLabels[id] = all
	return id, nil
}

func (f *fakeEngine) RemoveNetwork(ctx context.Context, id string) error {
	if err := f.call("network remove " + id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.networks, id)
	delete(f.netLabels, id)
	return nil
}

func (f *fakeEngine) ConnectNetwork(ctx context.Context, networkID, container string) error {
	return f.call("network connect " + container)
}

func (f *fakeEngine) DisconnectNetwork(ctx context.Context, networkID, container string) error {
	return f.call("network disconnect " + container)
}

func (f *fakeEngine) ImageID(ctx context.Context, ref string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.images[ref], nil
}

// ImageArch: the fake's images are built for the fake engine's own architecture.
func (f *fakeEngine) ImageArch(ctx context.Context, ref string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.images[ref] == "" {
		return "", nil
	}
	return "amd64", nil
}

func (f *fakeEngine) Pull(ctx context.Context, ref string, retry engine.PullRetry, progress func(engine.PullProgress)) error {
	if err := f.call("pull " + ref); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images[ref] = "sha256:" + ref
	return nil
}

func (f *fakeEngine) Create(ctx context.Context, spec engine.ContainerSpec) (string, error) {
	c := "create " + spec.Name
	if err := f.call(c); err != nil {
		return "", err
	}
	id, err := f.create(spec)
	return id, f.done(c, err)
}

// create is the engine's side of a create, for hooks that play an earlier run's request.
func (f *fakeEngine) create(spec engine.ContainerSpec) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byName(spec.Name) != nil {
		return "", fmt.Errorf("create container %s: Conflict. The container name %q is already in use: %w", spec.Name, "/"+spec.Name, errdefs.ErrConflict)
	}
	found := spec.Network == ""
	for _, n := range f.networks {
		found = found || n.Name == spec.Network
	}
	if !found {
		return "", fmt.Errorf("create container %s: network %s not found: %w", spec.Name, spec.Network, errdefs.ErrNotFound)
	}
	f.seq++
	id := "c" + strconv.Itoa(f.seq)
	f.containers[id] = &fakeContainer{spec: spec, id: id, state: "created"}
	return id, nil
}

func (f *fakeEngine) Start(ctx context.Context, id string) error {
	c := "start " + id
	if err := f.call(c); err != nil {
		return err
	}
	return f.done(c, f.setState(id, "running"))
}

func (f *fakeEngine) setState(id, state string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.lookup(id)
	if c == nil {
		return fmt.Errorf("container %s: %w", id, errdefs.ErrNotFound)
	}
	c.state = state
	return nil
}

func (f *fakeEngine) Stop(ctx context.Context, id string, timeout time.Duration) error {
	c := "stop " + id
	if err := f.call(c); err != nil {
		return err
	}
	err := f.setState(id, "exited")
	if errdefs.IsNotFound(err) {
		err = nil // as engine.Client: stopping a missing container is fine
	}
	return f.done(c, err)
}

func (f *fakeEngine) Remove(ctx context.Context, id string) error {
	c := "remove " + id
	if err := f.call(c); err != nil {
		return err
	}
	f.mu.Lock()
	if ct := f.lookup(id); ct != nil {
		delete(f.containers, ct.id)
	}
	f.mu.Unlock()
	return f.done(c, nil)
}

func (f *fakeEngine) WaitHealthy(ctx context.Context, id string, o engine.WaitOptions) (engine.Detail, error) {
	d, err := f.Inspect(ctx, id)
	if err != nil {
		return d, err
	}
	if !d.Running() {
		return d, fmt.Errorf("container %s is %s: %w", d.Name, d.State, engine.ErrHealthTimeout)
	}
	return d, nil
}

func (f *fakeEngine) Logs(ctx context.Context, id string, n int) ([]string, error) { return nil, nil }

func (f *fakeEngine) Exec(ctx context.Context, id, user string, cmd []string) (engine.ExecResult, error) {
	return engine.ExecResult{}, fmt.Errorf("the fake engine runs no commands")
}

// named returns the containers by name, for assertions.
func (f *fakeEngine) named() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for _, c := range f.containers {
		out[c.spec.Name] = c.state
	}
	return out
}
