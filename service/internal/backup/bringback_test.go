package backup

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/stack"
)

// fakeRestarter plays the stack for bringBack: start commands that fail, a converge that fails,
// components that are not running afterwards.
type fakeRestarter struct {
	failStart   map[string]bool // by the command's first two words
	convergeErr error
	down        map[string]bool
	execs       [][]string
	converged   int
}

func (f *fakeRestarter) Config() config.Config {
	c := config.Default()
	c.Stack.Name = "fbtest"
	return c
}

func (f *fakeRestarter) Emit(events.Event) {}

func (f *fakeRestarter) Exec(ctx context.Context, component, user string, cmd []string) (engine.ExecResult, error) {
	f.execs = append(f.execs, cmd)
	if f.failStart[strings.Join(cmd, " ")] {
		return engine.ExecResult{ExitCode: 7}, nil
	}
	return engine.ExecResult{}, nil
}

func (f *fakeRestarter) Converge(ctx context.Context) (stack.Plan, error) {
	f.converged++
	return stack.Plan{}, f.convergeErr
}

func (f *fakeRestarter) Running(ctx context.Context, name string) (engine.Detail, error) {
	if f.down[name] {
		return engine.Detail{}, errors.New(name + " is exited: bring the stack up first (forgebox up)")
	}
	return engine.Detail{}, nil
}

// TestFailedRestoreBringsBackOrSaysWhatItLeftStopped: a failed restore starts what it stopped
// (in reverse order) and converges; the error keeps its cause and names exactly each process and
// component it could not bring back, or says all run again (issue 16 item 6).
func TestFailedRestoreBringsBackOrSaysWhatItLeftStopped(t *testing.T) {
	cause := errors.New("GitLab's restore failed (exit code 1)")
	stopped := stopCommands("sameersbn")

	f := &fakeRestarter{}
	err := bringBack(context.Background(), f, stopped, cause)
	if !errors.Is(err, cause) || !strings.Contains(err.Error(), "run again") || strings.Contains(err.Error(), "left stopped") {
		t.Errorf("all back: %v", err)
	}
	var order []string
	for _, c := range f.execs {
		order = append(order, strings.Join(c, " "))
	}
	want := []string{"supervisorctl start sidekiq", "supervisorctl start gitlab:*", "supervisorctl start gitlab_extensions:*"}
	if !slices.Equal(order, want) || f.converged != 1 {
		t.Errorf("started %v and converged %d times, want %v and once", order, f.converged, want)
	}

	f = &fakeRestarter{failStart: map[string]bool{"supervisorctl start sidekiq": true},
		convergeErr: errors.New("pull sameersbn/gitlab: no such image"), down: map[string]bool{"runner": true}}
	err = bringBack(context.Background(), f, stopped, cause)
	msg := err.Error()
	if !errors.Is(err, cause) {
		t.Errorf("the cause is lost: %v", err)
	}
	for _, part := range []string{
		"left stopped",
		"GitLab's sidekiq (exit code 7; start it with: docker exec fbtest-gitlab supervisorctl start sidekiq)",
		"runner (runner is exited",
		"no such image",
		"run forgebox up",
	} {
		if !strings.Contains(msg, part) {
			t.Errorf("message lacks %q:\n%s", part, msg)
		}
	}
	for _, running := range []string{"postgres (", "redis (", "gitlab (", "puma and gitlab-workhorse"} {
		if strings.Contains(msg, running) {
			t.Errorf("message names %q, which was brought back:\n%s", running, msg)
		}
	}

	// Only the converge complained, and every component runs: said, without "left stopped".
	f = &fakeRestarter{convergeErr: errors.New("runner check: token refused")}
	if err := bringBack(context.Background(), f, nil, cause); strings.Contains(err.Error(), "left stopped") || !strings.Contains(err.Error(), "token refused") {
		t.Errorf("converge error only: %v", err)
	}
}
