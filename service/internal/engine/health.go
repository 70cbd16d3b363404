package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrHealthTimeout is returned when a container did not become healthy before the deadline.
var ErrHealthTimeout = errors.New("not healthy before the deadline")

// HealthError says which container failed, how, and what it printed last.
type HealthError struct {
	Container string
	Reason    string
	LastLogs  []string
	Err       error
}

func (e *HealthError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "container %s %s", e.Container, e.Reason)
	if len(e.LastLogs) > 0 {
		b.WriteString("; its last log lines:")
		for _, l := range e.LastLogs {
			b.WriteString("\n    ")
			b.WriteString(l)
		}
	}
	return b.String()
}

func (e *HealthError) Unwrap() error { return e.Err }

// settleWithoutHealthcheck is how long a container without a healthcheck must be seen running
// before it counts as up.
const settleWithoutHealthcheck = time.Second

// WaitOptions tune a health wait.
type WaitOptions struct {
	Deadline time.Duration // total time allowed
	Poll     time.Duration // how often to inspect
	LogLines int           // how many log lines to attach to a failure
	// Progress, when set, is called about every Every with the state seen so far.
	Progress func(d Detail, waited time.Duration)
	// Ready, when set, is a direct probe of the service (a database login, a PING). Once it
	// succeeds on a running container the wait is over, without waiting for the engine's next
	// healthcheck run, which on API 1.41 comes a whole interval after the start.
	Ready func(ctx context.Context, d Detail) bool
	Every time.Duration
}

// WaitHealthy polls the container until it is healthy (or, without a healthcheck, running for
// settleWithoutHealthcheck) and fails fast when it exits, restarts or turns unhealthy (with a
// Ready probe, unhealthy waits for the probe instead).
func (c *Client) WaitHealthy(ctx context.Context, id string, o WaitOptions) (Detail, error) {
	if o.Poll == 0 {
		o.Poll = 500 * time.Millisecond
	}
	if o.LogLines == 0 {
		o.LogLines = 20
	}
	if o.Every == 0 {
		o.Every = 5 * time.Second
	}
	start := time.Now()
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, o.Deadline)
	defer cancel()
	var first *Detail
	var last Detail            // the last state seen, for a deadline that ends an Inspect
	var runningSince time.Time // first seen running, without a healthcheck
	lastReport := start
	for {
		d, err := c.Inspect(ctx, id)
		if err != nil {
			if parent.Err() != nil { // the caller gave up (a down cancels an up): no health verdict
				return last, fmt.Errorf("wait for container %s: %w", orID(last.Name, id), parent.Err())
			}
			if ctx.Err() != nil {
				return last, c.healthFailure(id, last, fmt.Sprintf("was not healthy after %s", o.Deadline.Round(time.Second)), ErrHealthTimeout, o.LogLines)
			}
			return d, err
		}
		last = d
		if first == nil {
			first = &d
		}
		switch {
		case d.State == "running" && d.Health == "healthy":
			return d, nil
		case d.State == "running" && d.Health == "starting" && o.Ready != nil && d.RestartCount == first.RestartCount && o.Ready(ctx, d):
			return d, nil
		case d.State == "running" && d.Health == "" && d.RestartCount == first.RestartCount:
			// Without a healthcheck, running is all there is to see; but right after the
			// start a process that is about to fail is running too, so it must stay up a while.
			if runningSince.IsZero() {
				runningSince = time.Now()
			} else if time.Since(runningSince) >= settleWithoutHealthcheck {
				return d, nil
			}
		case d.State == "exited" || d.State == "dead":
			reason := fmt.Sprintf("exited with code %d", d.ExitCode)
			if d.OOMKilled {
				reason += " (killed: out of memory)"
			}
			return d, c.healthFailure(id, d, reason, nil, o.LogLines)
		case d.State == "restarting" && first.State == "restarting" && d.RestartCount == first.RestartCount:
			// The engine was already restarting it (its restart policy, after a crash) when the
			// wait began: that one restart is what is being waited for.
		case d.State == "restarting" || d.RestartCount > first.RestartCount:
			return d, c.healthFailure(id, d, fmt.Sprintf("keeps restarting (exit code %d)", d.ExitCode), nil, o.LogLines)
		case d.Health == "unhealthy" && o.Ready != nil && d.State == "running" && d.RestartCount == first.RestartCount:
			// Docker's verdict can be stale: a first start that outlasts the healthcheck's start
			// period (PostgreSQL's initdb on a slow or loaded machine) is called unhealthy while
			// it still works its way up. The direct probe decides; without an answer the wait
			// goes on to its deadline.
			if o.Ready(ctx, d) {
				return d, nil
			}
		case d.Health == "unhealthy":
			return d, c.healthFailure(id, d, "is unhealthy", nil, o.LogLines)
		}
		if o.Progress != nil && time.Since(lastReport) >= o.Every {
			lastReport = time.Now()
			o.Progress(d, time.Since(start))
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return d, fmt.Errorf("wait for container %s: %w", orID(d.Name, id), parent.Err())
			}
			return d, c.healthFailure(id, d, fmt.Sprintf("was not healthy after %s (state %s, health %s)", o.Deadline.Round(time.Second), d.State, orNone(d.Health)), ErrHealthTimeout, o.LogLines)
		case <-time.After(o.Poll):
		}
	}
}

func (c *Client) healthFailure(id string, d Detail, reason string, cause error, lines int) error {
	name := d.Name
	if name == "" {
		name = id
	}
	// The wait's context may be spent; the logs are worth a fresh, short one.
	logs, _ := c.Logs(context.Background(), id, lines)
	return &HealthError{Container: name, Reason: reason, LastLogs: logs, Err: cause}
}

func orID(name, id string) string {
	if name != "" {
		return name
	}
	return id
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
