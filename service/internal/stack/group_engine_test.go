package stack_test

// A group runner on the stand-ins: forgebox registers it with runner_type group_type and the
// group's id resolved from its path; the GitLab stand-in gives it the jobs of the group's
// projects and of its subgroups' projects, never another group's, as GitLab does; changing the
// group registers a new runner, and a group GitLab does not have keeps the old one.

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/config"
)

func TestGroupRunnerGetsOnlyItsGroupsJobs(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.up(ctx)

	// Jobs outside the group first: they have the lower ids, so a runner that ignored its
	// scope would be given them before the group's. "teamx" shares the group's first letters.
	outProject, outJob := f.pipeline(ctx, "outside/app", []string{"grp"})
	xProject, xJob := f.pipeline(ctx, "teamx/app", []string{"grp"})
	appProject, appJob := f.pipeline(ctx, "team/app", []string{"grp"})
	subProject, subJob := f.pipeline(ctx, "team/sub/lib", []string{"grp"})

	f.cfg.Runner.Concurrent = 2
	f.cfg.Runner.Profiles = append(f.cfg.Runner.Profiles, config.Profile{Name: "grp", Image: f.cfg.Redis.Image,
		Tags: []string{"grp"}, Concurrency: 1, Group: "team"})
	f.up(ctx)
	rec := f.records()["grp"]
	if rec.Group != "team" || rec.Project != "" {
		t.Fatalf("record: %+v", rec)
	}
	var det struct {
		RunnerType string `json:"runner_type"`
	}
	f.apiGet(ctx, fmt.Sprintf("/api/v4/runners/%d", rec.ID), &det)
	if det.RunnerType != "group_type" {
		t.Fatalf("runner %d is %q, want group_type", rec.ID, det.RunnerType)
	}

	for _, j := range [][2]int64{{appProject, appJob}, {subProject, subJob}} {
		if done := f.waitJobDone(ctx, j[0], j[1]); done.Runner == nil || done.Runner.ID != rec.ID {
			t.Fatalf("job %d of the group ran on %+v, want runner %d", j[1], done.Runner, rec.ID)
		}
	}
	for _, j := range [][2]int64{{outProject, outJob}, {xProject, xJob}} {
		if o := f.job(ctx, j[0], j[1]); o.Status != "pending" || o.Runner != nil {
			t.Fatalf("job %d outside the group went to %+v (%s): a group runner took another group's job", j[1], o.Runner, o.Status)
		}
	}

	t.Run("a group GitLab does not have keeps the runner", func(t *testing.T) {
		f.cfg.Runner.Profiles[1].Group = "nosuch"
		_, err := f.stack().Up(ctx)
		if err == nil || !strings.Contains(err.Error(), "GitLab has no group nosuch") {
			t.Fatalf("up: %v", err)
		}
		if now := f.records()["grp"]; now.ID != rec.ID {
			t.Fatalf("record after the failed change: %+v (was %d)", now, rec.ID)
		}
		if _, ok := f.standinRunners(ctx)[rec.ID]; !ok {
			t.Fatalf("runner %d was unregistered although its new group does not exist", rec.ID)
		}
	})

	t.Run("another group registers a new runner", func(t *testing.T) {
		f.cfg.Runner.Profiles[1].Group = "teamx"
		plan := f.up(ctx)
		if !strings.Contains(plan.String(), "register runner grp again: its scope changes from group team to group teamx") {
			t.Errorf("plan:\n%s", plan)
		}
		now := f.records()["grp"]
		if now.ID == rec.ID || now.Group != "teamx" {
			t.Fatalf("after the scope change: %+v (was %d)", now, rec.ID)
		}
		if _, ok := f.standinRunners(ctx)[rec.ID]; ok {
			t.Errorf("the old runner %d is still registered", rec.ID)
		}
		f.apiGet(ctx, fmt.Sprintf("/api/v4/runners/%d", now.ID), &det)
		if det.RunnerType != "group_type" {
			t.Errorf("new runner is %q", det.RunnerType)
		}
		if x := f.waitJobDone(ctx, xProject, xJob); x.Runner == nil || x.Runner.ID != now.ID {
			t.Errorf("teamx's job ran on %+v, want %d", x.Runner, now.ID)
		}
		if o := f.job(ctx, outProject, outJob); o.Status != "pending" || o.Runner != nil {
			t.Errorf("outside/app's job went to %+v (%s)", o.Runner, o.Status)
		}
	})
}
