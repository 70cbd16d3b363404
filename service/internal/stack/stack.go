// Package stack keeps forgebox's containers as the config describes them. It builds the desired
// state from the config, observes what the engine holds, plans the difference as a pure function
// with one reason per action, and applies the plan, all under a lock so that only one operation
// changes a stack at a time. Each component has its own file (postgres.go, redis.go).
package stack

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/msg"
)

// Stack runs operations on one configured stack.
type Stack struct {
	cfg         config.Config
	eng         Engine
	secrets     SecretStore
	secretsPath string
	log         *slog.Logger
	sink        events.Sink
	version     string
	pullRetry   engine.PullRetry

	archMu sync.Mutex
	arch   string // the engine's, once asked (helper.go)
}

// Options are the parts of a Stack that are not the config.
type Options struct {
	Logger      *slog.Logger
	Events      events.Sink
	Version     string // forgebox's version, written on every container
	PullRetry   engine.PullRetry
	SecretsPath string // shown in messages about the secret store
}

// SecretStore is the secret store as the stack uses it: secrets for the containers, the admin
// token and the runner records.
type SecretStore interface {
	SecretSource
	Names() []string
	Set(name, value string) error
	Delete(name string) error
}

// New returns a Stack for cfg on eng.
func New(cfg config.Config, eng Engine, secrets SecretStore, o Options) *Stack {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Events == nil {
		o.Events = events.Discard
	}
	if o.PullRetry.Attempts == 0 {
		o.PullRetry = engine.DefaultPullRetry
	}
	return &Stack{
		cfg: cfg, eng: eng, secrets: secrets, secretsPath: o.SecretsPath,
		log: o.Logger.With("stack", cfg.Stack.Name), sink: o.Events,
		version: o.Version, pullRetry: o.PullRetry,
	}
}

func (s *Stack) emit(e events.Event) { s.sink.Emit(e) }

// Up converges the stack: it creates, starts or recreates what differs from the config, waits
// for health and provisions PostgreSQL. On a converged stack it changes nothing. It returns the
// plan it carried out.
func (s *Stack) Up(ctx context.Context) (Plan, error) {
	lock, err := TryLock(s.cfg.Stack.DataDir, "up")
	if err != nil {
		return Plan{}, err
	}
	defer lock.Unlock()
	start := time.Now()
	plan, err := s.converge(ctx)
	if err != nil {
		s.emit(events.Event{Kind: events.KindError, Status: events.Error, Op: "up", Message: err.Error(), Msg: errMsg(err)})
		return plan, err
	}
	s.say(events.Event{Kind: events.KindDone, Status: events.Done, Op: "up"}, "up.done", "took", took(start))
	return plan, nil
}

// Plan observes and plans without changing anything (a dry run).
func (s *Stack) Plan(ctx context.Context) (Plan, error) {
	if err := s.checkFlavourArch(ctx); err != nil { // helper.go
		return Plan{}, err
	}
	info, err := s.eng.Info(ctx)
	if err != nil {
		return Plan{}, err
	}
	d, err := s.desiredOn(ctx, readOnlySecrets{s.secrets}, info.ServerVersion)
	if err != nil {
		return Plan{}, err
	}
	o, err := s.observe(ctx, d)
	if err != nil {
		return Plan{}, err
	}
	return MakePlan(d, o, s.cfg.Stack.PullPolicy), nil
}

// desiredNow builds the desired stack for the engine as it is: the internal network's subnet,
// when the network exists, goes into GitLab's monitoring allowlist and PostgreSQL's pg_hba.conf.
func (s *Stack) desiredNow(ctx context.Context, secrets SecretSource) (Desired, error) {
	return s.desiredOn(ctx, secrets, "")
}

// desiredOn is desiredNow for an engine of that version ("" when not asked), which decides only
// the internal network's internal flag: no container spec depends on it.
func (s *Stack) desiredOn(ctx context.Context, secrets SecretSource, engineVersion string) (Desired, error) {
	nw, ok, err := s.eng.FindNetwork(ctx, s.cfg.Stack.Name, s.cfg.NetworkName())
	if err != nil {
		return Desired{}, err
	}
	if !ok {
		return s.desiredFor(ctx, secrets, nil, engineVersion)
	}
	return s.desiredFor(ctx, secrets, &nw, engineVersion)
}

func (s *Stack) desiredFor(ctx context.Context, secrets SecretSource, nw *engine.Network, engineVersion string) (Desired, error) {
	host, err := ResolveHost(s.cfg)
	if err != nil {
		return Desired{}, err
	}
	arch, err := s.engineArch(ctx)
	if err != nil {
		return Desired{}, err
	}
	env := Env{Host: host, EngineVersion: engineVersion, Arch: arch, TimeZone: ResolveTimeZone(s.cfg)}
	if nw != nil && len(nw.Subnets) > 0 {
		env.Subnet = nw.Subnets[0]
	}
	return Build(s.cfg, secrets, s.version, env)
}

// ensureNetworks creates the stack's missing networks first, because GitLab's settings and
// PostgreSQL's pg_hba.conf name the internal network's subnet, and attaches the controller. It
// adds what it did to done and returns the internal network.
func (s *Stack) ensureNetworks(ctx context.Context, info engine.Info, op string, done *Plan) (engine.Network, error) {
	if err := s.dropDuplicateNetworks(ctx, op, done); err != nil {
		return engine.Network{}, err
	}
	for _, n := range stackNetworks(s.cfg, info.ServerVersion) {
		_, ok, err := s.eng.FindNetwork(ctx, s.cfg.Stack.Name, n.Name)
		if err != nil {
			return engine.Network{}, err
		}
		if ok {
			continue
		}
		a := newAction(ActCreateNetwork, "", n.Name, networkMissing(n))
		s.emit(events.Event{Kind: events.KindPlan, ID: "network-" + n.Name, Op: op}.With(a.Msg()))
		s.emit(events.Event{Kind: events.KindStep, ID: "network-" + n.Name, Status: events.Working, Op: op}.With(a.Msg()))
		if _, err := s.eng.CreateStackNetwork(ctx, s.cfg.Stack.Name, engine.NetworkSpec{Name: n.Name, Internal: n.Internal}); err != nil {
			return engine.Network{}, settleNetwork(n.Name, err)
		}
		done.Actions = append(done.Actions, a)
	}
	nw, ok, err := s.eng.FindNetwork(ctx, s.cfg.Stack.Name, s.cfg.NetworkName())
	if err != nil || !ok {
		return engine.Network{}, fmt.Errorf("network %s vanished right after it was created: %v", s.cfg.NetworkName(), err)
	}
	return nw, s.attachController(ctx, nw)
}

// dropDuplicateNetworks removes all but one of the stack's networks that share a name. An engine
// asked at API 1.43 or older checks a new network's name only against the networks it already
// has, so a create sent by a killed run and the next run's own can both succeed (the fault
// soak's seed 39770811133210); containers then cannot start: "network ... is ambiguous". Every
// run keeps the same one, the oldest (then the lowest ID), so two runs at once agree; and when
// the killed run's create lands after this run made its network and started containers on it
// (seed 255834348791358), the copy that goes is the late one, which nothing uses yet.
func (s *Stack) dropDuplicateNetworks(ctx context.Context, op string, done *Plan) error {
	nets, err := s.eng.ListNetworks(ctx, s.cfg.Stack.Name)
	if err != nil {
		return err
	}
	byName := map[string][]engine.Network{}
	for _, n := range nets {
		byName[n.Name] = append(byName[n.Name], n)
	}
	for name, group := range byName {
		if len(group) < 2 {
			continue
		}
		slices.SortFunc(group, func(a, b engine.Network) int {
			if c := a.Created.Compare(b.Created); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
		var kept []string
		for _, n := range group[1:] {
			why := msg.New("plan.network.duplicate", "network", name, "n", len(group), "kept", short(group[0].ID))
			a := Action{Kind: ActRemoveNetwork, Target: n.ID, Reason: why.String(), Why: why}
			s.emit(events.Event{Kind: events.KindStep, Status: events.Working, Op: op}.With(a.Msg()))
			if err := s.eng.RemoveNetwork(ctx, n.ID); err != nil {
				kept = append(kept, short(n.ID))
				continue
			}
			done.Actions = append(done.Actions, a)
		}
		if len(kept) > 0 {
			return fmt.Errorf("network %s exists %d times and the copies %s could not be removed (containers on them?); run forgebox down, then up again", name, len(group), strings.Join(kept, ", "))
		}
	}
	return nil
}

// convergeOnce creates the networks first when they are missing, because GitLab's settings and
// PostgreSQL's pg_hba.conf name the internal network's subnet, then observes, plans and applies
// the rest.
func (s *Stack) convergeOnce(ctx context.Context) (Plan, error) {
	var done Plan
	if err := s.checkGitLabVersion(ctx); err != nil { // versionguard.go
		return done, err
	}
	if err := s.checkFlavourArch(ctx); err != nil { // helper.go
		return done, err
	}
	if err := s.checkRemoteEngines(ctx); err != nil { // remote.go
		return done, err
	}
	info, err := s.eng.Info(ctx)
	if err != nil {
		return done, err
	}
	nw, err := s.ensureNetworks(ctx, info, "up", &done)
	if err != nil {
		return done, err
	}
	d, err := s.desiredFor(ctx, s.secrets, &nw, info.ServerVersion)
	if err != nil {
		return done, err
	}
	o, err := s.observe(ctx, d)
	if err != nil {
		return done, err
	}
	if err := helperAvailable(d, o, s.cfg.Stack.PullPolicy); err != nil {
		return done, err
	}
	plan := MakePlan(d, o, s.cfg.Stack.PullPolicy)
	if plan.Empty() && done.Empty() {
		s.say(events.Event{Kind: events.KindPlan, Status: events.Done, Op: "up"}, "plan.nothing")
		return plan, nil
	}
	for i, a := range plan.Actions {
		s.emit(events.Event{Kind: events.KindPlan, ID: stepID(i), Op: "up", Component: a.Component}.With(a.Msg()))
	}
	done.Actions = append(done.Actions, plan.Actions...)
	return done, s.apply(ctx, d, o, plan)
}

// ControllerContainerEnv names the container forgebox itself runs in, when it does (the DSM
// package's controller). That container joins the internal network, and only that one, because
// PostgreSQL and GitLab are reached at their addresses there and are never published on the
// host; CI jobs, on the jobs network, cannot reach it.
const ControllerContainerEnv = "FORGEBOX_CONTROLLER_CONTAINER"

func (s *Stack) attachController(ctx context.Context, nw engine.Network) error {
	name := os.Getenv(ControllerContainerEnv)
	if name == "" {
		return nil
	}
	return s.eng.ConnectNetwork(ctx, nw.ID, name)
}

// Down stops and removes the stack's containers, last started first, and its network. Data
// directories stay as they are.
func (s *Stack) Down(ctx context.Context) error {
	lock, err := TryLock(s.cfg.Stack.DataDir, "down")
	if err != nil {
		return err
	}
	defer lock.Unlock()
	// Looked at again after each pass: a create that a cancelled or killed up had sent can land
	// after the first look (the engine finishes what it was asked), and must go too.
	for pass := 1; ; pass++ {
		removed, err := s.downContainers(ctx)
		if err != nil {
			return err
		}
		if removed == 0 || pass == maxLooks {
			break
		}
	}
	// Every network of the stack: both of today's and an older forgebox's single one.
	nets, err := s.eng.ListNetworks(ctx, s.cfg.Stack.Name)
	if err != nil {
		return err
	}
	for _, nw := range nets {
		if name := os.Getenv(ControllerContainerEnv); name != "" {
			if err := s.eng.DisconnectNetwork(ctx, nw.ID, name); err != nil {
				return err
			}
		}
		if err := s.eng.RemoveNetwork(ctx, nw.ID); err != nil {
			// A job container the runner left behind can still hold it. The network holds no
			// data and the next up reuses it, so this is worth a word, not a failed down.
			s.say(events.Event{Kind: events.KindInfo, Status: events.Warning, Op: "down"}, "down.networkKept", "network", nw.Name, "error", msg.Raw(err.Error()))
			s.log.Warn("network kept", "network", nw.Name, "err", err)
		}
	}
	s.say(events.Event{Kind: events.KindDone, Status: events.Done, Op: "down"}, "down.done", "dir", s.cfg.Stack.DataDir)
	return nil
}

// downContainers stops and removes the stack's component containers, last started first, and
// reports how many it removed.
func (s *Stack) downContainers(ctx context.Context) (int, error) {
	list, err := s.eng.ListContainers(ctx, s.cfg.Stack.Name)
	if err != nil {
		return 0, err
	}
	// Last started, first stopped: the runner before GitLab, GitLab before its database.
	order := []string{"runner", "gitlab", "redis", "postgres"}
	slices.SortStableFunc(list, func(a, b engine.Container) int {
		return rank(order, a.Component) - rank(order, b.Component)
	})
	removed := 0
	for _, c := range list {
		if c.Component == "" {
			continue // a CI job container: the runner owns it and removes it itself
		}
		s.say(events.Event{Kind: events.KindStep, ID: "down-" + c.Component, Status: events.Working, Op: "down", Component: c.Component}, "down.remove", "container", c.Name)
		if err := s.eng.Stop(ctx, c.ID, stopTimeout(c.Component)); err != nil {
			return removed, err
		}
		if err := s.eng.Remove(ctx, c.ID); err != nil {
			return removed, err
		}
		removed++
	}
	return removed, nil
}

func rank(order []string, name string) int {
	if i := slices.Index(order, name); i >= 0 {
		return i
	}
	return -1 // unknown components go first
}

func stopTimeout(component string) time.Duration {
	switch component {
	case "postgres":
		return 60 * time.Second
	case "gitlab":
		return 120 * time.Second
	}
	return 30 * time.Second
}

// ComponentStatus is one row of `forgebox status`.
type ComponentStatus struct {
	Component string    `json:"component"`
	Container string    `json:"container"`
	ID        string    `json:"id,omitempty"`
	State     string    `json:"state"`  // running, exited, ..., or "missing"
	Health    string    `json:"health"` // healthy, starting, unhealthy, or "" when unknown
	Image     string    `json:"image"`
	StartedAt time.Time `json:"started_at,omitzero"`
	Uptime    string    `json:"uptime,omitempty"`
	UpToDate  bool      `json:"up_to_date"` // its spec matches the config
	// The runner's job helper image (helper.go) and whether the engine has it: present, missing.
	HelperImage string `json:"helper_image,omitempty"`
	HelperState string `json:"helper_state,omitempty"`
}

// Status reports each configured component, and any leftover container of the stack.
func (s *Stack) Status(ctx context.Context) ([]ComponentStatus, error) {
	d, err := s.desiredNow(ctx, readOnlySecrets{s.secrets})
	if err != nil {
		return nil, err
	}
	list, err := s.eng.ListContainers(ctx, d.Stack)
	if err != nil {
		return nil, err
	}
	byName := map[string]engine.Container{}
	for _, c := range list {
		byName[c.Name] = c
	}
	var out []ComponentStatus
	var gitlabDet *engine.Detail // for the runner check, which asks GitLab
	for _, comp := range d.Components {
		row := ComponentStatus{Component: comp.Name, Container: comp.Spec.Name, Image: comp.Spec.Image, State: "missing"}
		if c, ok := byName[comp.Spec.Name]; ok {
			delete(byName, comp.Spec.Name)
			det, err := s.eng.Inspect(ctx, c.ID)
			if engine.IsNotFound(err) {
				out = append(out, row) // removed between list and inspect
				continue
			}
			if err != nil {
				return nil, err
			}
			det.Health = s.probedHealth(ctx, comp, det)
			if comp.Name == "gitlab" {
				gitlabDet = &det
			}
			// GitLab's readiness is its health (its image's own check says little); the runner has none.
			if det.Running() && (det.Health == "" || comp.Name == "gitlab") {
				if h := s.componentCheck(ctx, comp, det, gitlabDet); h != "" { // health.go
					det.Health = h
				}
			}
			row.fill(det)
			row.UpToDate = det.SpecHash == comp.Spec.Labels[engine.LabelSpecHash]
		}
		if comp.Name == "runner" && d.HelperImage != "" {
			id, err := s.eng.ImageID(ctx, d.HelperImage)
			if err != nil {
				return nil, err
			}
			row.HelperImage, row.HelperState = d.HelperImage, "present"
			if id == "" {
				row.HelperState = "missing (run up)"
			}
		}
		out = append(out, row)
	}
	for _, c := range list {
		if _, left := byName[c.Name]; !left || c.Component == "" {
			continue
		}
		det, err := s.eng.Inspect(ctx, c.ID)
		if engine.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		row := ComponentStatus{Component: c.Component + " (not configured)", Container: c.Name}
		row.fill(det)
		out = append(out, row)
	}
	return out, nil
}

func (r *ComponentStatus) fill(det engine.Detail) {
	r.ID = det.ID
	r.State = det.State
	r.Health = det.Health
	r.Image = det.Image
	if det.Running() && !det.StartedAt.IsZero() {
		r.StartedAt = det.StartedAt
		r.Uptime = time.Since(det.StartedAt).Round(time.Second).String()
	}
}

// readOnlySecrets lets Status build the desired state without generating secrets: a status call
// must not write anything. A secret that does not exist yet gives an empty value, which only
// makes the spec hash differ, and so reports the component as not up to date.
type readOnlySecrets struct{ s SecretSource }

func (r readOnlySecrets) Ensure(name string) (string, error) {
	v, _ := r.s.Get(name)
	return v, nil
}

func (r readOnlySecrets) Get(name string) (string, bool) { return r.s.Get(name) }
