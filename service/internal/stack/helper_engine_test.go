package stack_test

// The runner's job helper image on the real engine, with the contract stand-ins. No registry is
// reachable here, so the step where `up` would pull the helper from registry.gitlab.com is shown
// failing, and the image is then made available by tagging a local image under the helper's name:
// that tag stands in for the pull. What passes here passed on the stand-ins, not on GitLab Runner.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/stack"
	"github.com/forgebox/forgebox/service/internal/testenv"
)

type ciJob struct {
	ID     int64  `json:"id"`
	Status string `json:"status"`
}

// runCIJob starts a one-job pipeline on the GitLab stand-in and waits until the job ends; it
// returns the job's status and trace.
func (f *fixture) runCIJob(ctx context.Context, name string) (string, string) {
	f.t.Helper()
	body := fmt.Sprintf(`{"project":"demo/helper","ref":"main","commit_title":"%s","jobs":[{"name":"%s","stage":"test","tags":["docker"],"script":["echo job %s ran"]}]}`, name, name, name)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.gitlabURL(ctx)+"/api/v4/standin/pipelines", strings.NewReader(body))
	req.Header.Set("PRIVATE-TOKEN", f.adminToken())
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		f.t.Fatalf("stand-in pipeline: %d %s", res.StatusCode, b)
	}
	var created struct {
		Project struct {
			ID int64 `json:"id"`
		} `json:"project"`
		Jobs []ciJob `json:"jobs"`
	}
	if err := json.Unmarshal(b, &created); err != nil || len(created.Jobs) != 1 {
		f.t.Fatalf("stand-in pipeline: %v %s", err, b)
	}
	job := fmt.Sprintf("/api/v4/projects/%d/jobs/%d", created.Project.ID, created.Jobs[0].ID)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var j ciJob
		f.apiGet(ctx, job, &j)
		switch j.Status {
		case "success", "failed", "canceled":
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.gitlabURL(ctx)+job+"/trace", nil)
			req.Header.Set("PRIVATE-TOKEN", f.adminToken())
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				f.t.Fatal(err)
			}
			trace, _ := io.ReadAll(res.Body)
			res.Body.Close()
			return j.Status, string(trace)
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("job %s still %s after 2 minutes", name, j.Status)
		}
		time.Sleep(500 * time.Millisecond) // polling GitLab's job state, as a client would
	}
}

// TestRunnerHelperImageOnStandIns: a job fails on the runner stand-in when its helper image is not
// on the engine (the config.toml forgebox wrote before named none); `up` works out the helper of
// the runner's version for the engine's arch, plans its pull with the reason, fails clearly when
// it cannot be pulled, and once the image is there writes helper_image, shows it in status, and
// the job passes.
func TestRunnerHelperImageOnStandIns(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	im := testenv.TestImages(t)

	info, err := f.eng.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The name GitLab Runner 19.2.2 pulls on this engine (helpers/container/helperimage at
	// v19.2.2: GitLabRegistryName, tag <arch>-v<version>, amd64 -> x86_64).
	arch := map[string]string{"amd64": "x86_64", "arm64": "arm64"}[info.Arch]
	if arch == "" {
		t.Fatalf("engine arch %q: this test knows amd64 and arm64", info.Arch)
	}
	helper := "registry.gitlab.com/gitlab-org/gitlab-runner/gitlab-runner-helper:" + arch + "-v19.2.2"
	// Only this test makes that tag; a previous run's is dropped (the image keeps its other tags).
	exec.Command("docker", "image", "rm", "--no-prune", helper).Run()
	t.Cleanup(func() { exec.Command("docker", "image", "rm", "--no-prune", helper).Run() })

	// 1. The runner as forgebox ran it before: no helper_image in config.toml (here because the
	// stand-in's tag names no runner version). The stand-in claims 19.2.2, looks for its default
	// helper, does not find it, and fails the job, where the real runner would pull it.
	f.cfg.Runner.HelperImage = ""
	f.up(ctx)
	if rc := f.runnerConfig(); rc.Runners[0].Docker.HelperImage != "" {
		t.Fatalf("config.toml names helper %q for a runner image without a version", rc.Runners[0].Docker.HelperImage)
	}
	status, trace := f.runCIJob(ctx, "without-helper")
	if status != "failed" || !strings.Contains(trace, "helper image "+helper+" is not on the engine") {
		t.Fatalf("job without its helper image: %s\n%s", status, trace)
	}

	// 2. The runner image tagged like gitlab/gitlab-runner 19.2.2: up works out the helper and
	// plans its pull in the runner's stage, with the reason. Nothing can be pulled here, so up
	// stops there and says which image.
	runnerImage := strings.Replace(im.Runner, ":", "-", 1) + ":alpine-v19.2.2"
	docker(t, "tag", im.Runner, runnerImage)
	f.cfg.Runner.Image = runnerImage
	f.cfg.Stack.PullPolicy = "missing"
	plan, err := f.stack().Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan.String(), "pull runner: job helper image "+helper+" (the helper of GitLab Runner 19.2.2 on "+info.Arch+") is not on this engine") {
		t.Fatalf("plan does not pull the helper:\n%s", plan)
	}
	st := stack.New(f.cfg, f.eng, f.secrets, stack.Options{Events: f.rec, Version: "test", PullRetry: engine.PullRetry{Attempts: 1}})
	if _, err := st.Up(ctx); err == nil || !strings.Contains(err.Error(), helper) {
		t.Fatalf("up without a reachable registry: %v", err)
	}
	if rows := f.status(ctx); rows["runner"].HelperImage != helper || !strings.HasPrefix(rows["runner"].HelperState, "missing") {
		t.Errorf("status: helper %q %q", rows["runner"].HelperImage, rows["runner"].HelperState)
	}
	// With pull_policy "never", up refuses before changing anything.
	f.cfg.Stack.PullPolicy = "never"
	if _, err := f.stack().Up(ctx); err == nil || !strings.Contains(err.Error(), `stack.pull_policy is "never"`) {
		t.Fatalf("up with pull_policy never and no helper: %v", err)
	}

	// 3. The helper image is made available: a local image tagged under its name, standing in
	// for the pull no registry can serve here. up passes, config.toml names it, status shows it,
	// and the job passes.
	docker(t, "tag", im.Runner, helper)
	plan = f.up(ctx)
	if strings.Contains(plan.String(), "pull runner") {
		t.Errorf("up pulls although the helper is there:\n%s", plan)
	}
	if rc := f.runnerConfig(); rc.Runners[0].Docker.HelperImage != helper {
		t.Errorf("config.toml helper_image = %q, want %q", rc.Runners[0].Docker.HelperImage, helper)
	}
	if row := f.status(ctx)["runner"]; row.HelperImage != helper || row.HelperState != "present" {
		t.Errorf("status: helper %q %q", row.HelperImage, row.HelperState)
	}
	status, trace = f.runCIJob(ctx, "with-helper")
	if status != "success" || !strings.Contains(trace, "job with-helper ran") || !strings.Contains(trace, "Using helper image:  "+helper) {
		t.Fatalf("job with its helper image: %s\n%s", status, trace)
	}
	// GitLab Runner has nothing to warn about in the config.toml forgebox wrote.
	logs, _ := f.eng.Logs(ctx, f.status(ctx)["runner"].ID, 200)
	if all := strings.Join(logs, "\n"); strings.Contains(all, "Long polling issues detected") || !strings.Contains(all, "loaded") {
		t.Errorf("runner stand-in log:\n%s", all)
	}
}
