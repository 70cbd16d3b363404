package gitlab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestStagesKeepOrderAndLatestTry(t *testing.T) {
	// GitLab lists every try in creation order: the retry of test comes after deploy.
	all := []Job{
		{ID: 1, Name: "build", Stage: "build", Status: "success"},
		{ID: 2, Name: "test", Stage: "test", Status: "failed"},
		{ID: 3, Name: "lint", Stage: "test", Status: "failed", AllowFailure: true},
		{ID: 4, Name: "deploy", Stage: "deploy", Status: "created"},
		{ID: 5, Name: "test", Stage: "test", Status: "running"},
	}
	st := stages(all)
	if len(st) != 3 || st[0].Name != "build" || st[1].Name != "test" || st[2].Name != "deploy" {
		t.Fatalf("stages %+v", st)
	}
	if j := st[1].Jobs; len(j) != 2 || j[0].ID != 5 || j[0].Tries != 2 || j[1].Name != "lint" {
		t.Errorf("test stage jobs %+v", j)
	}
	if st[0].Status != "success" || st[1].Status != "running" || st[2].Status != "created" {
		t.Errorf("stage statuses %s %s %s", st[0].Status, st[1].Status, st[2].Status)
	}
}

func TestCompositeStatus(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{
		{nil, "skipped"},
		{[]string{"success", "success"}, "success"},
		{[]string{"success", "failed"}, "failed"},
		{[]string{"success", "pending"}, "running"},
		{[]string{"pending", "pending"}, "pending"},
		{[]string{"manual"}, "manual"},
		{[]string{"success", "manual"}, "success"},
		{[]string{"canceled", "skipped"}, "canceled"},
		{[]string{"created"}, "created"},
	} {
		if got := compositeStatus(c.in); got != c.want {
			t.Errorf("%v: %s, want %s", c.in, got, c.want)
		}
	}
}

func TestStuckReason(t *testing.T) {
	docker := RunnerStatus{ID: 1, Description: "fb-default", Online: true, Tags: []string{"docker"}, RunUntagged: true}
	deploy := RunnerStatus{ID: 2, Description: "fb-deploy", Online: false, Tags: []string{"deploy", "docker"}}
	paused := RunnerStatus{ID: 3, Description: "fb-gpu", Online: true, Paused: true, Tags: []string{"gpu"}}
	runners := []RunnerStatus{docker, deploy, paused}
	job := func(tags ...string) Job { return Job{Status: "pending", Tags: tags} }
	if s := StuckReason(job("docker"), runners); s != nil {
		t.Errorf("docker job stuck: %+v", s)
	}
	if s := StuckReason(job(), runners); s != nil {
		t.Errorf("untagged job stuck although a runner runs untagged jobs: %+v", s)
	}
	if s := StuckReason(job("gpu"), runners); s == nil || s.Reason != StuckNoRunnerWithTags || !strings.Contains(s.Hint, "gpu") || !strings.Contains(s.Hint, "add a runner profile") {
		t.Errorf("gpu job (only a paused runner has the tag): %+v", s)
	}
	if s := StuckReason(job("deploy"), runners); s == nil || s.Reason != StuckRunnersOffline || len(s.Offline) != 1 || s.Offline[0] != "fb-deploy" {
		t.Errorf("deploy job (its runner is offline): %+v", s)
	}
	if s := StuckReason(job(), []RunnerStatus{deploy}); s == nil || s.Reason != StuckNoUntaggedRunner {
		t.Errorf("untagged job with no untagged runner: %+v", s)
	}
	if s := StuckReason(Job{Status: "running", Tags: []string{"gpu"}}, runners); s != nil {
		t.Errorf("a running job is never stuck: %+v", s)
	}
}

func TestCutAtRune(t *testing.T) {
	s := []byte("ab构建")
	for n := 0; n <= len(s); n++ {
		got := string(CutAtRune(s[:n]))
		if !strings.HasPrefix("ab构建", got) || len(got) < n-2 {
			t.Errorf("cut %d: %q", n, got)
		}
		if n == 3 || n == 4 { // inside 构
			if got != "ab" {
				t.Errorf("cut %d = %q, want ab", n, got)
			}
		}
	}
}

// fakeGitLab serves the admin API calls the builds code makes, in GitLab's shapes.
func fakeGitLab(t *testing.T, trace *atomic.Value, calls *atomic.Int64) *httptest.Server {
	now := time.Now().UTC().Format(time.RFC3339)
	job := func(id int64, name, stage, status string) map[string]any {
		return map[string]any{"id": id, "name": name, "stage": stage, "status": status, "ref": "main", "tag_list": []string{"docker"},
			"pipeline": map[string]any{"id": 7, "project_id": 3}, "commit": map[string]any{"title": "Fix the build"},
			"user": map[string]any{"username": "root"}, "runner": map[string]any{"id": 1, "description": "fb-default"}, "created_at": now}
	}
	mux := http.NewServeMux()
	write := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /api/v4/projects", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.URL.Query().Get("order_by") != "last_activity_at" {
			t.Errorf("projects not by activity: %s", r.URL.RawQuery)
		}
		write(w, []map[string]any{{"id": 3, "path_with_namespace": "demo/app"}, {"id": 4, "path_with_namespace": "demo/other"}})
	})
	mux.HandleFunc("GET /api/v4/projects/3/pipelines", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		write(w, []map[string]any{{"id": 7, "project_id": 3, "status": "success", "updated_at": now}, {"id": 2, "project_id": 3, "status": "failed", "updated_at": now}})
	})
	mux.HandleFunc("GET /api/v4/projects/4/pipelines", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		write(w, []map[string]any{{"id": 5, "project_id": 4, "status": "running", "updated_at": now}})
	})
	for _, id := range []int64{2, 5, 7} {
		project := 3
		if id == 5 {
			project = 4
		}
		mux.HandleFunc(fmt.Sprintf("GET /api/v4/projects/%d/pipelines/%d", project, id), func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			st := map[int64]string{2: "failed", 5: "running", 7: "success"}[id]
			write(w, map[string]any{"id": id, "project_id": project, "status": st, "ref": "main", "duration": 42, "updated_at": now,
				"user": map[string]any{"username": "root", "name": "Administrator"}})
		})
		mux.HandleFunc(fmt.Sprintf("GET /api/v4/projects/%d/pipelines/%d/jobs", project, id), func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			if r.URL.Query().Get("include_retried") != "true" {
				t.Errorf("jobs without the retried tries: %s", r.URL.RawQuery)
			}
			write(w, []map[string]any{job(id*10, "build", "build", "success"), job(id*10+1, "test", "test", "pending")})
		})
	}
	mux.HandleFunc("GET /api/v4/projects/3/jobs/70/trace", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(trace.Load().(string)))
	})
	mux.HandleFunc("POST /api/v4/projects/3/jobs/70/retry", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`{"message":"403 Forbidden - Job is not retryable"}`))
	})
	mux.HandleFunc("POST /api/v4/projects/3/jobs/71/cancel", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		write(w, job(71, "test", "test", "canceled"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestRecentPipelinesAndTrace(t *testing.T) {
	var trace atomic.Value
	var calls atomic.Int64
	trace.Store("line 1\nline 2\n")
	srv := fakeGitLab(t, &trace, &calls)
	c, err := New(srv.URL, "glpat-test")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var cache BuildsCache
	list, err := c.RecentPipelines(ctx, &cache, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != 7 || list[1].ID != 5 || list[0].Project != "demo/app" || list[1].Project != "demo/other" ||
		list[0].CommitTitle != "Fix the build" || list[0].User != "root" || list[0].Duration != 42 || len(list[0].Stages) != 2 {
		t.Fatalf("recent %+v", list)
	}
	// Again: the finished pipeline comes from the cache, the running one is asked for.
	before := calls.Load()
	if _, err := c.RecentPipelines(ctx, &cache, 2); err != nil {
		t.Fatal(err)
	}
	// projects cached; 2 pipeline lists; running pipeline 5: get + jobs = 4 calls.
	if n := calls.Load() - before; n != 4 {
		t.Errorf("second listing made %d calls, want 4", n)
	}

	ch, err := c.Trace(ctx, 3, 70, 0, 0)
	if err != nil || string(ch.Data) != "line 1\nline 2\n" || ch.Size != 14 {
		t.Fatalf("trace from 0: %+v %v", ch, err)
	}
	trace.Store("line 1\nline 2\nline 3\n" + "构"[:2])
	ch, _ = c.Trace(ctx, 3, 70, 14, 0)
	if string(ch.Data) != "line 3\n" || ch.Offset != 14 {
		t.Errorf("trace from 14: %q (a half character must wait)", ch.Data)
	}
	ch, _ = c.Trace(ctx, 3, 70, 14, 4)
	if string(ch.Data) != "line" {
		t.Errorf("limited: %q", ch.Data)
	}
	ch, _ = c.Trace(ctx, 3, 70, 500, 0)
	if !ch.Reset || ch.Offset != 0 {
		t.Errorf("past the end: %+v", ch)
	}

	_, err = c.RetryJob(ctx, 3, 70)
	var refused *APIError
	if !errors.As(err, &refused) || refused.Status != 403 || refused.Message != "403 Forbidden - Job is not retryable" {
		t.Errorf("retry refused: %v", err)
	}
	if _, err := c.Job(ctx, 3, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing job: %v", err)
	}
	j, err := c.CancelJob(ctx, 3, 71)
	if err != nil || j.Status != "canceled" {
		t.Errorf("cancel: %+v %v", j, err)
	}
}

// TestVersionAsksThroughTheClient: the version comes from GET /api/v4/version with the token,
// and a refusal is the package's ErrUnauthorized.
func TestVersionAsksThroughTheClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v4/version" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("PRIVATE-TOKEN") != "good" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"message":"401 Unauthorized"}`)
			return
		}
		fmt.Fprint(w, `{"version":"18.5.1-ee","revision":"abc"}`)
	}))
	defer srv.Close()
	c, err := New(srv.URL, "good")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.Version(context.Background()); err != nil || v != "18.5.1-ee" {
		t.Fatalf("Version = %q, %v; want 18.5.1-ee", v, err)
	}
	bad, _ := New(srv.URL, "bad")
	if _, err := bad.Version(context.Background()); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("Version with a refused token: %v, want ErrUnauthorized", err)
	}
}
