package main

// The runner stand-in's CI jobs on the real engine, against a fake GitLab in this process that
// speaks the job protocol (request, trace at offsets, update, cancel as 403 Job-Status).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

func TestCIScript(t *testing.T) {
	s := ciScript([]string{"echo it's", "false"})
	want := "set -e\nprintf '\\033[32;1m$ %s\\033[0;m\\n' 'echo it'\\''s'\necho it's\nprintf '\\033[32;1m$ %s\\033[0;m\\n' 'false'\nfalse\n"
	if s != want {
		t.Errorf("script:\n%q\nwant\n%q", s, want)
	}
}

func TestCITraceMasksAndLimits(t *testing.T) {
	tr := &ciTrace{masked: []string{"glcbt-secretsecret"}, limit: 64}
	fmt.Fprintf(tr, "token glcbt-secretsecret here\n")
	if got := string(tr.data); got != "token [MASKED] here\n" {
		t.Errorf("masked: %q", got)
	}
	fmt.Fprint(tr, strings.Repeat("x", 100))
	fmt.Fprint(tr, "later output")
	if !strings.Contains(string(tr.data), "exceeded limit of 64 bytes") || strings.Contains(string(tr.data), "later output") {
		t.Errorf("limit: %q", tr.data)
	}
}

// fakeCoordinator is GitLab's job API for one runner token, with jobs handed out in order.
type fakeCoordinator struct {
	mu       sync.Mutex
	queue    []map[string]any
	traces   map[int64][]byte
	ranges   map[int64][]string
	final    map[int64]map[string]any
	canceled map[int64]bool
	running  map[int64]bool
	maxRun   int
	refuse   map[int64]bool // jobs whose token the clone refuses
	fetched  map[int64]bool // jobs whose sources were fetched with their token
}

func (f *fakeCoordinator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, _ := io.ReadAll(r.Body)
	id := func() int64 {
		m := regexp.MustCompile(`/jobs/(\d+)`).FindStringSubmatch(r.URL.Path)
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return n
	}
	switch {
	case r.Method == "POST" && r.URL.Path == "/api/v4/jobs/request":
		if len(f.queue) == 0 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		j := f.queue[0]
		f.queue = f.queue[1:]
		f.running[j["id"].(int64)] = true
		j["git_info"] = map[string]any{"repo_url": "http://gitlab-ci-token:" + j["token"].(string) + "@" + r.Host + "/demo/app.git"}
		n := 0
		for id, v := range f.running {
			if v && !f.canceled[id] { // a canceled job sends no result; its slot is free once it is gone
				n++
			}
		}
		f.maxRun = max(f.maxRun, n)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(j)
	case r.Method == "GET" && r.URL.Path == "/demo/app.git/info/refs":
		// As GitLab: HTTP basic gitlab-ci-token and the token of a running job.
		user, tok, ok := r.BasicAuth()
		for jid, run := range f.running {
			if ok && run && user == "gitlab-ci-token" && tok == fmt.Sprintf("glcbt-testjobtoken%04d", jid) && !f.refuse[jid] {
				f.fetched[jid] = true
				w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
				fmt.Fprint(w, advertisementStart+"0000")
				return
			}
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="GitLab"`)
		w.WriteHeader(http.StatusUnauthorized)
	case r.Method == "PATCH":
		j := id()
		if f.canceled[j] {
			w.Header().Set("Job-Status", "canceled")
			w.WriteHeader(http.StatusForbidden)
			return
		}
		rng := r.Header.Get("Content-Range")
		f.ranges[j] = append(f.ranges[j], rng)
		start, _ := strconv.Atoi(strings.Split(rng, "-")[0])
		if start != len(f.traces[j]) {
			w.Header().Set("Range", fmt.Sprintf("0-%d", len(f.traces[j])))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		f.traces[j] = append(f.traces[j], b...)
		w.Header().Set("Range", fmt.Sprintf("0-%d", len(f.traces[j])))
		w.Header().Set("Job-Status", "running")
		w.WriteHeader(http.StatusAccepted)
	case r.Method == "PUT":
		j := id()
		if f.canceled[j] {
			w.Header().Set("Job-Status", "canceled")
			w.WriteHeader(http.StatusForbidden)
			return
		}
		var body map[string]any
		json.Unmarshal(b, &body)
		if body["state"] != "running" {
			f.final[j] = body
			f.running[j] = false
		}
		w.Header().Set("Job-Status", fmt.Sprint(body["state"]))
		w.WriteHeader(http.StatusOK)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeCoordinator) trace(id int64) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return string(f.traces[id])
}

func (f *fakeCoordinator) result(id int64) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.final[id]
}

func ciJob(id int64, script ...string) map[string]any {
	tok := fmt.Sprintf("glcbt-testjobtoken%04d", id)
	return map[string]any{"id": id, "token": tok,
		"job_info":    map[string]any{"name": "job" + fmt.Sprint(id), "stage": "test", "project_id": 7, "project_name": "app"},
		"runner_info": map[string]any{"timeout": 120},
		"variables": []map[string]any{{"key": "CI_JOB_TOKEN", "value": tok, "public": false, "masked": true},
			{"key": "CI_PROJECT_PATH", "value": "demo/app", "public": true}},
		"steps": []map[string]any{{"name": "script", "script": script, "when": "on_success"}},
		"image": map[string]any{"name": ""}}
}

func waitFor(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestCIJobsOnEngine(t *testing.T) {
	// This runner plays 18.5.0, before FF_TIMESTAMPS was on by default (trace.go).
	t.Setenv("FORGEBOX_STANDIN_VERSION", "18.5.0")
	image := os.Getenv("FORGEBOX_TEST_REDIS_IMAGE") // any local image with /bin/sh
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = cli.Ping(ctx)
		cancel()
	}
	if image == "" || err != nil {
		if os.Getenv("FORGEBOX_REQUIRE_ENGINE") == "1" {
			t.Fatalf("needs the engine and FORGEBOX_TEST_REDIS_IMAGE (%v)", err)
		}
		t.Skip("needs the engine and FORGEBOX_TEST_REDIS_IMAGE")
	}
	defer cli.Close()
	stack := "fbt-runner-ci-" + randomSuffix()
	jobContainers := func(id int64) []container.Summary {
		list, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(
			filters.Arg("label", labelStack+"="+stack), filters.Arg("label", fmt.Sprintf("%s=%d", labelJob, id)))})
		if err != nil {
			t.Fatal(err)
		}
		return list
	}
	t.Cleanup(func() {
		list, _ := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", labelStack+"="+stack))})
		for _, c := range list {
			cli.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true})
		}
	})

	// Job 4 turns FF_TIMESTAMPS on by its variable (this runner claims 18.5.0, where it is off).
	stamped := ciJob(4, `printf 'fetching 1/2\r'; sleep 1; printf 'fetching 2/2\r'; sleep 1; echo 'fetched 2 of 2'`, "echo 'warning: slow' >&2")
	stamped["variables"] = append(stamped["variables"].([]map[string]any), map[string]any{"key": "FF_TIMESTAMPS", "value": "true", "public": true})
	fake := &fakeCoordinator{traces: map[int64][]byte{}, ranges: map[int64][]string{}, final: map[int64]map[string]any{},
		canceled: map[int64]bool{}, running: map[int64]bool{}, refuse: map[int64]bool{5: true}, fetched: map[int64]bool{}}
	fake.queue = []map[string]any{
		ciJob(1, "echo one", "sleep 1.5", "echo two; echo err >&2", "echo $CI_JOB_TOKEN"),
		ciJob(2, "echo failing", "exit 3", "echo never"),
		stamped,
		ciJob(3, "i=0; while [ $i -lt 60 ]; do i=$((i+1)); echo tick $i; sleep 1; done"),
		ciJob(5, "echo never"),
	}
	srv := httptest.NewServer(fake)
	defer srv.Close()

	d := newDaemon(filepath.Join(t.TempDir(), "config.toml"))
	d.stack = &stack
	cfg := &Config{Concurrent: 1, CheckInterval: 1, Runners: []Runner{{Name: "ci-test", URL: srv.URL, ID: 9, Token: "glrt-citest",
		Executor: "docker", Limit: 1, Docker: &Docker{Image: image, HelperImage: image /* any local image stands in for the helper */, PullPolicy: PullPolicy{"if-not-present"}}}}}
	d.cfg = cfg
	d.entries["glrt-citest"] = &entry{cfg: cfg.Runners[0], state: "verified", verifiedID: 9}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d.syncCI(ctx)

	// Job 1: output streamed at contiguous offsets, the job token masked, success.
	waitFor(t, "job 1 ends", time.Minute, func() bool { return fake.result(1) != nil })
	tr := fake.trace(1)
	for _, want := range []string{"Running with gitlab-runner 18.5.0 (forgebox stand-in", "Using Docker executor with image " + image,
		"\x1b[32;1m$ echo one\x1b[0;m\none\n", "two\n", "err\n", "[MASKED]\n", "Job succeeded"} {
		if !strings.Contains(tr, want) {
			t.Errorf("job 1 trace lacks %q:\n%s", want, tr)
		}
	}
	if strings.Contains(tr, "glcbt-testjobtoken0001") {
		t.Error("the job token shows in the trace")
	}
	fake.mu.Lock()
	ranges := fake.ranges[1]
	fake.mu.Unlock()
	if len(ranges) < 2 {
		t.Errorf("job 1 output came in %d patch(es), want it streamed: %v", len(ranges), ranges)
	}
	if r := fake.result(1); r["state"] != "success" || r["exit_code"] != float64(0) {
		t.Errorf("job 1 result %v", r)
	}
	waitFor(t, "job 1's container is removed", 10*time.Second, func() bool { return len(jobContainers(1)) == 0 })

	// Job 2: the first failing line ends it.
	waitFor(t, "job 2 ends", time.Minute, func() bool { return fake.result(2) != nil })
	if r := fake.result(2); r["state"] != "failed" || r["exit_code"] != float64(3) || r["failure_reason"] != "script_failure" {
		t.Errorf("job 2 result %v", r)
	}
	if tr := fake.trace(2); strings.Contains(tr, "\nnever") || !strings.Contains(tr, "ERROR: Job failed: exit code 3") {
		t.Errorf("job 2 trace:\n%s", tr)
	}

	// Job 4: every line has a header; the progress line is continued; stderr is stream 01E.
	waitFor(t, "job 4 ends", time.Minute, func() bool { return fake.result(4) != nil })
	tr4 := fake.trace(4)
	const ts = `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z `
	for _, l := range strings.SplitAfter(strings.TrimSuffix(tr4, "\n"), "\n") {
		if !regexp.MustCompile(`^` + ts + `0[01][OE][ +]`).MatchString(l) {
			t.Errorf("job 4: line without a header: %q", l)
		}
	}
	for _, re := range []string{`(?m)^` + ts + `00O \x1b\[0KRunning with gitlab-runner 18\.5\.0`, `(?m)^` + ts + `01O fetching 1/2\r$`,
		`(?m)^` + ts + `01O\+fetching 2/2\r$`, `(?m)^` + ts + `01O\+fetched 2 of 2$`, `(?m)^` + ts + `01E warning: slow$`,
		`(?m)^` + ts + `00O[ +]\x1b\[0K\x1b\[32;1mJob succeeded`} {
		if !regexp.MustCompile(re).MatchString(tr4) {
			t.Errorf("job 4 trace lacks %s:\n%q", re, tr4)
		}
	}
	if tr := fake.trace(1); regexp.MustCompile(ts).MatchString(tr) {
		t.Errorf("job 1 (no flag, 18.5.0) has headers:\n%q", tr)
	}

	// Job 3: canceled while it runs; its container goes at once and no result is sent.
	waitFor(t, "job 3 prints", time.Minute, func() bool { return strings.Contains(fake.trace(3), "tick 2\n") })
	if n := len(jobContainers(3)); n != 1 {
		t.Fatalf("job 3 containers: %d", n)
	}
	fake.mu.Lock()
	fake.canceled[3] = true
	fake.mu.Unlock()
	canceledAt := time.Now()
	waitFor(t, "job 3's container is removed after the cancel", 10*time.Second, func() bool { return len(jobContainers(3)) == 0 })
	t.Logf("job 3's container was gone %s after the cancel", time.Since(canceledAt).Round(100*time.Millisecond))
	if r := fake.result(3); r != nil {
		t.Errorf("a canceled job sent a result: %v", r)
	}
	// Job 5: GitLab refuses its token on the clone; the job fails before its script runs.
	waitFor(t, "job 5 ends", time.Minute, func() bool { return fake.result(5) != nil })
	if r := fake.result(5); r["state"] != "failed" {
		t.Errorf("job 5 result %v", r)
	}
	if tr := fake.trace(5); !strings.Contains(tr, "fetch the sources") || !strings.Contains(tr, "HTTP 401") || strings.Contains(tr, "\nnever") {
		t.Errorf("job 5 trace:\n%s", tr)
	}
	fake.mu.Lock()
	if !fake.fetched[1] || !fake.fetched[2] || !fake.fetched[4] || fake.fetched[5] {
		t.Errorf("sources fetched with the job token: %v, want jobs 1, 2 and 4, not 5", fake.fetched)
	}
	if fake.maxRun != 1 {
		t.Errorf("%d jobs ran at once with limit 1", fake.maxRun)
	}
	fake.mu.Unlock()
}
