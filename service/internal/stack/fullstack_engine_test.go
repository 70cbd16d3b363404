package stack_test

// The full stack on the real engine. GitLab and GitLab Runner are contract stand-ins
// (service/standins): what passes here shows forgebox wires them as the real images' contracts
// say, not that a real GitLab boots.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/gitlab"
	"github.com/forgebox/forgebox/service/internal/runnercfg"
	"github.com/forgebox/forgebox/service/internal/stack"
)

// gitlabURL is the GitLab stand-in as the host reaches it.
func (f *fixture) gitlabURL(ctx context.Context) string {
	port := "80"
	if f.cfg.GitLab.Flavour == "omnibus" {
		port = fmt.Sprint(f.cfg.GitLab.HTTPPort)
	}
	return "http://" + f.ip(ctx, "gitlab") + ":" + port
}

func (f *fixture) adminToken() string {
	tok, ok := f.secrets.Get(config.SecretGitLabAdminToken)
	if !ok {
		f.t.Fatal("no admin token in the secret store")
	}
	return tok
}

// apiGet calls the GitLab stand-in with the admin token and decodes the JSON answer.
func (f *fixture) apiGet(ctx context.Context, path string, out any) {
	f.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.gitlabURL(ctx)+path, nil)
	req.Header.Set("PRIVATE-TOKEN", f.adminToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		f.t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

type apiRunner struct {
	ID          int64    `json:"id"`
	Description string   `json:"description"`
	TagList     []string `json:"tag_list"`
	RunUntagged bool     `json:"run_untagged"`
}

func (f *fixture) gitlabRunners(ctx context.Context) map[int64]apiRunner {
	var list []apiRunner
	f.apiGet(ctx, "/api/v4/runners/all?type=instance_type", &list)
	out := map[int64]apiRunner{}
	for _, r := range list {
		var det apiRunner
		f.apiGet(ctx, fmt.Sprintf("/api/v4/runners/%d", r.ID), &det)
		out[r.ID] = det
	}
	return out
}

func (f *fixture) records() map[string]stack.RunnerRecord {
	out := map[string]stack.RunnerRecord{}
	for _, n := range f.secrets.Names() {
		if name, ok := strings.CutPrefix(n, "runner/"); ok {
			v, _ := f.secrets.Get(n)
			var r stack.RunnerRecord
			if err := json.Unmarshal([]byte(v), &r); err != nil {
				f.t.Fatal(err)
			}
			out[name] = r
		}
	}
	return out
}

func (f *fixture) runnerConfig() runnercfg.Config {
	f.t.Helper()
	b, err := os.ReadFile(stack.RunnerConfigPath(f.cfg))
	if err != nil {
		f.t.Fatal(err)
	}
	c, err := runnercfg.Parse(b)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// waitJobFetches waits until the GitLab stand-in has recorded a fetch through clone_url from a
// job container of each runner id: the network path real jobs take.
func (f *fixture) waitJobFetches(ctx context.Context, ids []int64) {
	f.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var fetches []map[string]any
		f.apiGet(ctx, "/api/v4/standin/fetches", &fetches)
		seen := map[int64]bool{}
		for _, fe := range fetches {
			for _, k := range []string{"runner_id", "runner"} {
				switch v := fe[k].(type) {
				case float64:
					seen[int64(v)] = true
				case string:
					var id int64
					fmt.Sscan(v, &id)
					seen[id] = true
				}
			}
		}
		missing := slices.DeleteFunc(slices.Clone(ids), func(id int64) bool { return seen[id] })
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			logs, _ := f.eng.Logs(ctx, f.status(ctx)["runner"].ID, 30)
			f.t.Fatalf("no job container of runners %v reached GitLab through clone_url; fetches %v; runner log:\n%s", missing, fetches, strings.Join(logs, "\n"))
		}
		time.Sleep(time.Second)
	}
}

func twoProfiles(f *fixture) {
	p := f.cfg.Runner.Profiles[0]
	second := p
	second.Name, second.Tags, second.RunUntagged = "build", []string{"build", "linux"}, false
	f.cfg.Runner.Profiles = []config.Profile{p, second}
}

func TestFullStackOnStandIns(t *testing.T) {
	f := newFixture(t)
	twoProfiles(f)
	ctx := context.Background()
	var logs bytes.Buffer
	logged := func() *stack.Stack {
		return stack.New(f.cfg, f.eng, f.secrets, stack.Options{Events: f.rec, Version: "test",
			Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	}

	if _, err := logged().Up(ctx); err != nil {
		t.Fatalf("up: %v", err)
	}
	st := f.status(ctx)
	for _, c := range []string{"postgres", "redis", "gitlab", "runner"} {
		if st[c].State != "running" {
			t.Errorf("%s is %s", c, st[c].State)
		}
	}
	if err := gitlab.Readiness(ctx, f.gitlabURL(ctx)); err != nil {
		t.Fatalf("GitLab stand-in not ready after up: %v", err)
	}

	recs := f.records()
	if len(recs) != 2 {
		t.Fatalf("runner records %v, want one per profile", recs)
	}
	api, _ := gitlab.New(f.gitlabURL(ctx), f.adminToken())
	var ids []int64
	for name, r := range recs {
		ok, err := api.VerifyRunner(ctx, r.Token)
		if err != nil || !ok {
			t.Errorf("runner %s (%d) does not verify: %v", name, r.ID, err)
		}
		ids = append(ids, r.ID)
	}
	rc := f.runnerConfig()
	if len(rc.Runners) != 2 || rc.Runners[0].Docker.NetworkMode != f.cfg.JobsNetworkName() {
		t.Fatalf("config.toml runners %+v", rc.Runners)
	}
	f.waitJobFetches(ctx, ids)

	t.Run("second up changes nothing", func(t *testing.T) {
		before := f.gitlabRunners(ctx)
		ids := map[string]string{}
		for c, s := range f.status(ctx) {
			ids[c] = s.ID
		}
		plan := f.up(ctx)
		if !plan.Empty() {
			t.Fatalf("second up planned:\n%s", plan)
		}
		if after := f.gitlabRunners(ctx); len(after) != len(before) {
			t.Errorf("runners in GitLab: %d before, %d after", len(before), len(after))
		}
		for c, s := range f.status(ctx) {
			if ids[c] != s.ID {
				t.Errorf("%s was recreated", c)
			}
		}
	})

	t.Run("GitLab's health is its readiness, the runner's whether GitLab sees it online", func(t *testing.T) {
		// The runner reaches GitLab on its first job poll, a few seconds after it starts.
		deadline := time.Now().Add(2 * time.Minute)
		for {
			st := f.status(ctx)
			if st["gitlab"].Health == "healthy" && st["runner"].Health == "healthy" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("gitlab %q, runner %q: want both healthy", st["gitlab"].Health, st["runner"].Health)
			}
			select {
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			case <-time.After(time.Second): // polling GitLab's view, which has no event to wait on
			}
		}
	})

	t.Run("no secret in logs, events or status", func(t *testing.T) {
		rows, err := f.stack().Status(ctx)
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		js, err := json.Marshal(rows)
		if err != nil {
			t.Fatal(err)
		}
		var evs strings.Builder
		for _, e := range f.rec.evs {
			evs.WriteString(e.Message + "\n")
		}
		seen := logs.String() + string(js) + evs.String()
		for _, n := range f.secrets.Names() {
			v, _ := f.secrets.Get(n)
			if strings.HasSuffix(n, "_expires") {
				continue // a date, kept beside the token it belongs to
			}
			// Runner records are JSON that hold a token: look for the token itself.
			var r stack.RunnerRecord
			if json.Unmarshal([]byte(v), &r) == nil && r.Token != "" {
				v = r.Token
			}
			if len(v) >= 8 && strings.Contains(seen, v) {
				t.Errorf("a secret value (%.4s...) appears in logs, events or status", v)
			}
		}
	})

	t.Run("down then up keeps runners, secrets and data", func(t *testing.T) {
		secretsBefore := map[string]string{}
		for _, n := range f.secrets.Names() {
			secretsBefore[n], _ = f.secrets.Get(n)
		}
		if err := f.stack().Down(ctx); err != nil {
			t.Fatal(err)
		}
		f.secrets = openSecrets(t, f.cfg)
		plan := f.up(ctx)
		for _, a := range plan.Actions {
			if a.Kind == stack.ActRunners && strings.Contains(a.Reason, "register a runner") {
				t.Errorf("up after down registers runners anew: %s", a)
			}
		}
		for name, r := range f.records() {
			if r.ID != recs[name].ID {
				t.Errorf("profile %s: runner %d became %d", name, recs[name].ID, r.ID)
			}
		}
		for n, v := range secretsBefore {
			if got, _ := f.secrets.Get(n); got != v {
				t.Errorf("secret %s changed across down/up", n)
			}
		}
	})

	t.Run("changed tags update the runner, a removed profile is unregistered", func(t *testing.T) {
		keep, drop := recs["default"], recs["build"]
		f.cfg.Runner.Profiles = f.cfg.Runner.Profiles[:1]
		f.cfg.Runner.Profiles[0].Tags = []string{"docker", "nas"}
		plan := f.up(ctx)
		if !strings.Contains(plan.String(), "unregister runner") || !strings.Contains(plan.String(), "update runner") {
			t.Errorf("plan:\n%s", plan)
		}
		inGitLab := f.gitlabRunners(ctx)
		if _, still := inGitLab[drop.ID]; still {
			t.Errorf("runner %d of the removed profile is still in GitLab", drop.ID)
		}
		got := inGitLab[keep.ID].TagList
		slices.Sort(got)
		if !slices.Equal(got, []string{"docker", "nas"}) {
			t.Errorf("runner %d tags in GitLab %v, want [docker nas]", keep.ID, got)
		}
		rc := f.runnerConfig()
		if len(rc.Runners) != 1 || rc.Runners[0].ID != keep.ID {
			t.Errorf("config.toml runners after removing a profile: %+v", rc.Runners)
		}
		if _, ok := f.records()["build"]; ok {
			t.Error("the removed profile's record is still in the secret store")
		}
	})

	t.Run("an admin token near its expiry is renewed", func(t *testing.T) {
		old := f.adminToken()
		if err := f.secrets.Set(config.SecretGitLabAdminToken+"_expires", time.Now().Add(48*time.Hour).Format(time.DateOnly)); err != nil {
			t.Fatal(err)
		}
		plan := f.up(ctx)
		if !strings.Contains(plan.String(), "admin-token gitlab: the admin token expires soon") {
			t.Errorf("plan:\n%s", plan)
		}
		if f.adminToken() == old {
			t.Fatal("the token was not renewed")
		}
		exp, _ := f.secrets.Get(config.SecretGitLabAdminToken + "_expires")
		if d, err := time.Parse(time.DateOnly, exp); err != nil || time.Until(d) < 200*24*time.Hour {
			t.Errorf("new expiry %q", exp)
		}
		if plan := f.up(ctx); !plan.Empty() {
			t.Errorf("up after renewal planned:\n%s", plan)
		}
	})

	t.Run("a runner GitLab forgot is registered again", func(t *testing.T) {
		r := f.records()["default"]
		// GitLab's address may have changed with the recreate above.
		api, _ := gitlab.New(f.gitlabURL(ctx), f.adminToken())
		if err := api.DeleteRunner(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if known, err := api.VerifyRunner(ctx, r.Token); known || err != nil {
			t.Fatalf("runner %d still verifies after its deletion (%v)", r.ID, err)
		}
		plan := f.up(ctx)
		if !strings.Contains(plan.String(), "no longer knows runner") {
			t.Errorf("plan:\n%s", plan)
		}
		if n := f.records()["default"]; n.ID == r.ID {
			t.Error("the forgotten runner kept its id")
		} else if ok, _ := api.VerifyRunner(ctx, n.Token); !ok {
			t.Error("the new runner does not verify")
		}
	})
}

func TestOmnibusFlavourOnStandIns(t *testing.T) {
	f := newFixture(t)
	f.cfg.GitLab.Flavour = "omnibus"
	ctx := context.Background()
	f.up(ctx)
	if err := gitlab.Readiness(ctx, f.gitlabURL(ctx)); err != nil {
		t.Fatalf("omnibus GitLab stand-in not ready: %v", err)
	}
	r := f.records()["default"]
	api, _ := gitlab.New(f.gitlabURL(ctx), f.adminToken())
	if ok, err := api.VerifyRunner(ctx, r.Token); !ok || err != nil {
		t.Fatalf("runner does not verify: %v", err)
	}
	if rc := f.runnerConfig(); rc.Runners[0].URL != fmt.Sprintf("http://gitlab:%d", f.cfg.GitLab.HTTPPort) {
		t.Errorf("runner url %q", rc.Runners[0].URL)
	}
	f.waitJobFetches(ctx, []int64{r.ID})
	if plan := f.up(ctx); !plan.Empty() {
		t.Errorf("second up planned:\n%s", plan)
	}
	checkRedisPassword(ctx, t, f) // network_engine_test.go
}
