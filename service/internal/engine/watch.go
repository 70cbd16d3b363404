package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// ContainerEvent is a change the engine reported about one of forgebox's containers.
type ContainerEvent struct {
	Time      time.Time
	Action    string // start, die, stop, oom, health_status: healthy, destroy, ...
	ID        string
	Name      string
	Stack     string
	Component string
	ExitCode  string // for die
}

// watchedActions are the container events that change what a status shows. Exec events (every
// healthcheck makes three) are left out.
var watchedActions = []string{"create", "start", "restart", "stop", "die", "kill", "oom", "pause", "unpause", "destroy", "rename", "health_status"}

// WatchContainers calls fn for each event about a container labelled for any forgebox stack,
// until ctx ends or the stream breaks; it returns the error that broke it (nil when ctx ended).
// Callers reconnect: the engine restarting ends every stream.
func (c *Client) WatchContainers(ctx context.Context, fn func(ContainerEvent)) error {
	args := filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)), filters.Arg("label", LabelStack))
	for _, a := range watchedActions {
		args.Add("event", a)
	}
	c.calls.add()
	msgs, errs := c.api.Events(ctx, events.ListOptions{Filters: args})
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("engine event stream: %w", err)
		case m := <-msgs:
			at := m.Actor.Attributes
			fn(ContainerEvent{
				Time:      time.Unix(0, m.TimeNano),
				Action:    string(m.Action),
				ID:        m.Actor.ID,
				Name:      at["name"],
				Stack:     at[LabelStack],
				Component: at[LabelComponent],
				ExitCode:  at["exitCode"],
			})
		}
	}
}
