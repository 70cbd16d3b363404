package stack

import (
	"context"
	"errors"
	"fmt"

	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/msg"
)

// maxLooks bounds how often one converge observes again after finding the engine changed
// under it. An earlier run killed half way leaves at most a few requests in flight, so a
// change that keeps coming back is something else, and is reported rather than chased.
const maxLooks = 3

// staleError says that the engine holds an object of this stack that the observation the plan
// was made from did not show: most likely a create sent by an earlier run that was stopped
// after the engine had taken the request. Nothing is wrong; the plan is out of date.
type staleError struct {
	what msg.Msg
	err  error
}

func (e *staleError) Error() string { return e.msg().String() }

func (e *staleError) msg() msg.Msg {
	return msg.New("stale.appeared", "what", e.what, "error", msg.Raw(e.err.Error()))
}

func (e *staleError) Unwrap() error { return e.err }

// converge observes, plans and applies; when the plan turns out to be out of date (a
// staleError) it looks again, at most maxLooks times.
func (s *Stack) converge(ctx context.Context) (Plan, error) {
	return s.replanning(ctx, s.convergeOnce)
}

func (s *Stack) replanning(ctx context.Context, run func(context.Context) (Plan, error)) (Plan, error) {
	var done Plan
	for look := 1; ; look++ {
		plan, err := run(ctx)
		done.Actions = append(done.Actions, plan.Actions...)
		var stale *staleError
		if !errors.As(err, &stale) {
			return done, err
		}
		if look == maxLooks {
			return done, fmt.Errorf("%w (looked again %d times and the engine had changed each time: is a second forgebox managing this stack?)", err, maxLooks-1)
		}
		s.emit(events.Event{Kind: events.KindInfo, Status: events.Warning}.With(msg.New("stale.lookAgain", "stale", stale.msg())))
		s.log.Info("plan out of date", "what", stale.what.String(), "look", look, "err", stale.err)
	}
}

// settleCreate decides what a failed container create means. A taken name, or a create that
// timed out after the engine may have acted, is looked up: this stack's own container there
// means the plan is stale; anybody else's is foreign and left alone, and the error says whose.
func (s *Stack) settleCreate(ctx context.Context, name string, err error) error {
	conflict := engine.IsConflict(err)
	timedOut := errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil
	if !conflict && !timedOut {
		return err
	}
	det, ierr := s.eng.Inspect(ctx, name)
	switch {
	case engine.IsNotFound(ierr):
		if conflict {
			return &staleError{what: msg.New("stale.container", "name", name), err: fmt.Errorf("the name was taken, then free again: %w", err)}
		}
		return err // the create did not happen
	case ierr != nil:
		return fmt.Errorf("%w; looking up the container that holds the name failed: %v", err, ierr)
	}
	if why := engine.Foreign(det.Labels, s.cfg.Stack.Name); why != "" {
		if !conflict {
			return err
		}
		return fmt.Errorf("a container named %s exists but is not this stack's: %s. Rename or remove it yourself (forgebox never touches containers it did not create), or change stack.name: %w", name, why, err)
	}
	return &staleError{what: msg.New("stale.container", "name", name), err: err}
}

// settleNetwork decides what a failed network create means: a taken name sends the converge
// back to look, and the next look either finds this stack's network or says whose it is.
func settleNetwork(name string, err error) error {
	if engine.IsConflict(err) {
		return &staleError{what: msg.New("stale.network", "name", name), err: err}
	}
	return err
}
