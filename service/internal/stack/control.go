package stack

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/events"
)

// UnknownComponentError says a component name is not part of the configured stack.
type UnknownComponentError struct {
	Name  string
	Known []string
}

func (e *UnknownComponentError) Error() string {
	return fmt.Sprintf("no component %q in this stack; it has %s", e.Name, strings.Join(e.Known, ", "))
}

// NoContainerError says a component has no container to act on yet.
type NoContainerError struct{ Component string }

func (e *NoContainerError) Error() string {
	return fmt.Sprintf("%s has no container yet: bring it up first", e.Component)
}

// ComponentNames lists the configured components in start order. It reads secrets without
// generating any.
func (s *Stack) ComponentNames() []string {
	d, err := s.desiredNow(context.Background(), readOnlySecrets{s.secrets})
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(d.Components))
	for _, c := range d.Components {
		names = append(names, c.Name)
	}
	return names
}

func (s *Stack) component(d Desired, name string) (Component, error) {
	c, ok := d.Component(name)
	if !ok {
		known := make([]string, 0, len(d.Components))
		for _, c := range d.Components {
			known = append(known, c.Name)
		}
		return Component{}, &UnknownComponentError{Name: name, Known: known}
	}
	return c, nil
}

// componentNow is a component as the config wants it now, and its own container if it has one.
func (s *Stack) componentNow(ctx context.Context, name string) (Component, engine.Detail, bool, error) {
	d, err := s.desiredNow(ctx, readOnlySecrets{s.secrets})
	if err != nil {
		return Component{}, engine.Detail{}, false, err
	}
	comp, err := s.component(d, name)
	if err != nil {
		return Component{}, engine.Detail{}, false, err
	}
	det, found, err := s.findContainer(ctx, d, comp)
	return comp, det, found, err
}

// UpComponent converges one component: the same plan as Up, keeping only that component's steps
// (and the network, which every component needs). Its dependencies are not touched.
func (s *Stack) UpComponent(ctx context.Context, name string) (Plan, error) {
	op := "up " + name
	lock, err := TryLock(s.cfg.Stack.DataDir, op)
	if err != nil {
		return Plan{}, err
	}
	defer lock.Unlock()
	start := time.Now()
	plan, err := s.replanning(ctx, func(ctx context.Context) (Plan, error) { return s.convergeOne(ctx, name) })
	if err != nil {
		s.emit(events.Event{Kind: events.KindError, Op: op, Component: name, Message: err.Error(), Status: events.Error, Msg: errMsg(err)})
		return plan, err
	}
	s.say(events.Event{Kind: events.KindDone, Status: events.Done, Op: op, Component: name}, "component.up", "component", name, "took", took(start))
	return plan, nil
}

func (s *Stack) convergeOne(ctx context.Context, name string) (Plan, error) {
	info, err := s.eng.Info(ctx) // a network it creates is internal or not by the engine's version
	if err != nil {
		return Plan{}, err
	}
	// The networks first: the component's spec names the internal subnet (pg_hba.conf, GitLab's
	// allowlist), which exists only once the network does.
	var done Plan
	nw, err := s.ensureNetworks(ctx, info, "up "+name, &done)
	if err != nil {
		return done, err
	}
	d, err := s.desiredFor(ctx, s.secrets, &nw, info.ServerVersion)
	if err != nil {
		return done, err
	}
	if _, err := s.component(d, name); err != nil {
		return done, err
	}
	if name == "gitlab" {
		if err := s.checkGitLabVersion(ctx); err != nil { // versionguard.go
			return Plan{}, err
		}
	}
	o, err := s.observe(ctx, d)
	if err != nil {
		return Plan{}, err
	}
	full := MakePlan(d, o, s.cfg.Stack.PullPolicy)
	var plan Plan
	for _, a := range full.Actions {
		if a.Component == name || a.Kind == ActCreateNetwork {
			plan.Actions = append(plan.Actions, a)
		}
	}
	op := "up " + name
	if plan.Empty() && done.Empty() {
		s.say(events.Event{Kind: events.KindPlan, Status: events.Done, Op: op, Component: name}, "plan.nothingFor", "component", name)
		return plan, nil
	}
	for i, a := range plan.Actions {
		s.emit(events.Event{Kind: events.KindPlan, ID: stepID(i), Op: op, Component: a.Component}.With(a.Msg()))
	}
	err = s.apply(ctx, d, o, plan)
	return Plan{Actions: append(done.Actions, plan.Actions...)}, err
}

// DownComponent stops and removes one component's container; its data stays.
func (s *Stack) DownComponent(ctx context.Context, name string) error {
	op := "down " + name
	lock, err := TryLock(s.cfg.Stack.DataDir, op)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	comp, det, found, err := s.componentNow(ctx, name)
	if err != nil {
		return err
	}
	if !found {
		s.say(events.Event{Kind: events.KindDone, Status: events.Done, Op: op, Component: name}, "component.noContainer", "component", name)
		return nil
	}
	s.say(events.Event{Kind: events.KindStep, ID: "down-" + name, Status: events.Working, Op: op, Component: name}, "down.remove", "container", det.Name)
	if err := s.eng.Stop(ctx, det.ID, comp.StopTimeout); err != nil {
		s.emit(events.Event{Kind: events.KindError, Op: op, Component: name, Message: err.Error(), Status: events.Error, Msg: errMsg(err)})
		return err
	}
	if err := s.eng.Remove(ctx, det.ID); err != nil {
		s.emit(events.Event{Kind: events.KindError, Op: op, Component: name, Message: err.Error(), Status: events.Error, Msg: errMsg(err)})
		return err
	}
	s.say(events.Event{Kind: events.KindDone, Status: events.Done, Op: op, Component: name}, "component.down", "component", name)
	return nil
}

// RestartComponent stops and starts one component's container and waits until it is healthy.
func (s *Stack) RestartComponent(ctx context.Context, name string) error {
	op := "restart " + name
	lock, err := TryLock(s.cfg.Stack.DataDir, op)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	err = s.restartOne(ctx, op, name)
	if err != nil {
		s.emit(events.Event{Kind: events.KindError, Op: op, Component: name, Message: err.Error(), Status: events.Error, Msg: errMsg(err)})
	}
	return err
}

func (s *Stack) restartOne(ctx context.Context, op, name string) error {
	start := time.Now()
	comp, det, found, err := s.componentNow(ctx, name)
	if err != nil {
		return err
	}
	if !found {
		return &NoContainerError{Component: name}
	}
	s.say(events.Event{Kind: events.KindStep, ID: "restart-" + name, Status: events.Working, Op: op, Component: name}, "restart.step", "container", det.Name)
	if det.Running() {
		if err := s.eng.Stop(ctx, det.ID, comp.StopTimeout); err != nil {
			return err
		}
	}
	if err := s.eng.Start(ctx, det.ID); err != nil {
		return err
	}
	if _, err := s.waitHealthy(ctx, comp, det.ID); err != nil {
		return err
	}
	s.say(events.Event{Kind: events.KindDone, Status: events.Done, Op: op, Component: name}, "component.restarted", "component", name, "took", took(start))
	return nil
}

// Restart stops every running component, last started first, then converges the stack, which
// starts them again in order, waits for each to be healthy and checks provisioning.
func (s *Stack) Restart(ctx context.Context) (Plan, error) {
	lock, err := TryLock(s.cfg.Stack.DataDir, "restart")
	if err != nil {
		return Plan{}, err
	}
	defer lock.Unlock()
	start := time.Now()
	plan, err := s.restartAll(ctx)
	if err != nil {
		s.emit(events.Event{Kind: events.KindError, Op: "restart", Message: err.Error(), Status: events.Error, Msg: errMsg(err)})
		return plan, err
	}
	s.say(events.Event{Kind: events.KindDone, Status: events.Done, Op: "restart"}, "restart.done", "took", took(start))
	return plan, nil
}

func (s *Stack) restartAll(ctx context.Context) (Plan, error) {
	d, err := s.desiredNow(ctx, readOnlySecrets{s.secrets})
	if err != nil {
		return Plan{}, err
	}
	comps := slices.Clone(d.Components)
	slices.Reverse(comps)
	for _, comp := range comps {
		det, found, err := s.findContainer(ctx, d, comp)
		if err != nil {
			return Plan{}, err
		}
		if !found || !det.Running() {
			continue
		}
		s.say(events.Event{Kind: events.KindStep, ID: "stop-" + comp.Name, Status: events.Working, Op: "restart", Component: comp.Name}, "restart.stop", "container", det.Name)
		if err := s.eng.Stop(ctx, det.ID, comp.StopTimeout); err != nil {
			return Plan{}, err
		}
	}
	return s.converge(ctx)
}

// findContainer returns the component's own container (by its name and labels), if it exists.
func (s *Stack) findContainer(ctx context.Context, d Desired, comp Component) (engine.Detail, bool, error) {
	list, err := s.eng.ListContainers(ctx, d.Stack)
	if err != nil {
		return engine.Detail{}, false, err
	}
	for _, c := range list {
		if c.Name != comp.Spec.Name || c.Component != comp.Name {
			continue
		}
		det, err := s.eng.Inspect(ctx, c.ID)
		if engine.IsNotFound(err) {
			return engine.Detail{}, false, nil
		}
		if err != nil {
			return engine.Detail{}, false, err
		}
		return det, true, nil
	}
	return engine.Detail{}, false, nil
}
