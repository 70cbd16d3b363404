package stack_test

// A project runner on the stand-ins: forgebox registers it with runner_type project_type and the
// project's id resolved from its path; the GitLab stand-in gives it only that project's jobs, as
// GitLab does; changing the scope registers a new runner.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
)

// pipeline makes a stand-in pipeline of one job with tags in project and returns the project's
// and the job's id.
func (f *fixture) pipeline(ctx context.Context, project string, tags []string) (int64, int64) {
	f.t.Helper()
	body, _ := json.Marshal(map[string]any{"project": project, "ref": "main", "commit_title": "scope",
		"jobs": []map[string]any{{"name": "build", "stage": "test", "tags": tags, "script": []string{"true"}}}})
	code, b := f.standin(ctx, http.MethodPost, "/api/v4/standin/pipelines", string(body))
	if code != http.StatusCreated {
		f.t.Fatalf("stand-in pipeline: %d %s", code, b)
	}
	var created struct {
		Project struct{ ID int64 }   `json:"project"`
		Jobs    []struct{ ID int64 } `json:"jobs"`
	}
	json.Unmarshal(b, &created)
	return created.Project.ID, created.Jobs[0].ID
}

type jobState struct {
	Status string `json:"status"`
	Runner *struct {
		ID          int64  `json:"id"`
		Description string `json:"description"`
	} `json:"runner"`
}

func (f *fixture) job(ctx context.Context, project, job int64) jobState {
	f.t.Helper()
	var j jobState
	f.apiGet(ctx, fmt.Sprintf("/api/v4/projects/%d/jobs/%d", project, job), &j)
	return j
}

// waitJobDone waits for the job's own end, the event.
func (f *fixture) waitJobDone(ctx context.Context, project, job int64) jobState {
	f.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		j := f.job(ctx, project, job)
		if j.Status == "success" || j.Status == "failed" {
			return j
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("job %d is still %s", job, j.Status)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func TestProjectRunnerGetsOnlyItsProjectsJobs(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.up(ctx)

	// The other project's job first: it has the lower id, so a runner that ignored its scope
	// would be given it before the scoped project's.
	otherProject, otherJob := f.pipeline(ctx, "demo/other", []string{"scoped"})
	scopedProject, scopedJob := f.pipeline(ctx, "demo/scoped", []string{"scoped"})

	f.cfg.Runner.Concurrent = 2
	f.cfg.Runner.Profiles = append(f.cfg.Runner.Profiles, config.Profile{Name: "proj", Image: f.cfg.Redis.Image,
		Tags: []string{"scoped"}, Concurrency: 1, Project: "demo/scoped"})
	f.up(ctx)
	rec := f.records()["proj"]
	if rec.Project != "demo/scoped" {
		t.Fatalf("record: %+v", rec)
	}
	var det struct {
		RunnerType string `json:"runner_type"`
	}
	f.apiGet(ctx, fmt.Sprintf("/api/v4/runners/%d", rec.ID), &det)
	if det.RunnerType != "project_type" {
		t.Fatalf("runner %d is %q, want project_type", rec.ID, det.RunnerType)
	}

	done := f.waitJobDone(ctx, scopedProject, scopedJob)
	if done.Runner == nil || done.Runner.ID != rec.ID {
		t.Fatalf("scoped job ran on %+v, want runner %d", done.Runner, rec.ID)
	}
	if o := f.job(ctx, otherProject, otherJob); o.Status != "pending" || o.Runner != nil {
		t.Fatalf("the other project's job went to %+v (%s): a project runner took another project's job", o.Runner, o.Status)
	}

	t.Run("a new scope registers a new runner", func(t *testing.T) {
		f.cfg.Runner.Profiles[1].Project = ""
		plan := f.up(ctx)
		if !strings.Contains(plan.String(), "register runner proj again: its scope changes from project demo/scoped to every project") {
			t.Errorf("plan:\n%s", plan)
		}
		now := f.records()["proj"]
		if now.ID == rec.ID || now.Project != "" {
			t.Fatalf("after the scope change: %+v (was %d)", now, rec.ID)
		}
		f.apiGet(ctx, fmt.Sprintf("/api/v4/runners/%d", now.ID), &det)
		if det.RunnerType != "instance_type" {
			t.Errorf("new runner is %q", det.RunnerType)
		}
		// Now an instance runner with that tag: the other project's job runs on it.
		if o := f.waitJobDone(ctx, otherProject, otherJob); o.Runner == nil || o.Runner.ID != now.ID {
			t.Errorf("other project's job ran on %+v, want %d", o.Runner, now.ID)
		}
	})
}
