package api_test

// The builds page on a real stack of the test images: the GitLab and GitLab Runner contract
// stand-ins run real job containers on the engine. Results on stand-ins, not on GitLab.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/forgebox/forgebox/service/internal/api"
	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/gitlab"
)

// standin talks to the GitLab stand-in directly, for what only tests do: make pipelines.
type standin struct {
	t     *testing.T
	base  string
	token string
}

func (h *harness) gitlabStandin(t *testing.T) standin {
	t.Helper()
	det, err := h.eng.Inspect(context.Background(), h.cfg.Stack.Name+"-gitlab")
	if err != nil {
		t.Fatal(err)
	}
	sec, err := config.OpenSecrets(h.cfg.Stack.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	tok, ok := sec.Get(config.SecretGitLabAdminToken)
	if !ok {
		t.Fatal("no admin token for GitLab in the secret store")
	}
	return standin{t: t, base: "http://" + det.IPs[h.cfg.NetworkName()], token: tok}
}

type specJob struct {
	Name   string   `json:"name"`
	Stage  string   `json:"stage"`
	Tags   []string `json:"tags"`
	Script []string `json:"script"`
	When   string   `json:"when,omitempty"`
}

type createdPipeline struct {
	ID      int64 `json:"id"`
	Project struct {
		ID int64 `json:"id"`
	} `json:"project"`
	Jobs []struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	} `json:"jobs"`
}

func (s standin) pipeline(project, title string, jobs ...specJob) createdPipeline {
	s.t.Helper()
	body, _ := json.Marshal(map[string]any{"project": project, "ref": "main", "commit_title": title, "jobs": jobs})
	req, _ := http.NewRequest("POST", s.base+"/api/v4/standin/pipelines", strings.NewReader(string(body)))
	req.Header.Set("PRIVATE-TOKEN", s.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 201 {
		s.t.Fatalf("stand-in pipeline: %d %s", res.StatusCode, b)
	}
	var p createdPipeline
	if err := json.Unmarshal(b, &p); err != nil {
		s.t.Fatal(err)
	}
	return p
}

func (p createdPipeline) job(name string) int64 {
	for _, j := range p.Jobs {
		if j.Name == name {
			return j.ID
		}
	}
	return 0
}

// jobContainers are the runner's job containers for a GitLab job, by the runner stand-in's label.
func (h *harness) jobContainers(job int64) int {
	h.t.Helper()
	list, err := h.eng.ListContainers(context.Background(), h.cfg.Stack.Name)
	if err != nil {
		h.t.Fatal(err)
	}
	n := 0
	for _, c := range list {
		if c.Labels["io.forgebox.standin.job"] == fmt.Sprint(job) {
			n++
		}
	}
	return n
}

func (h *harness) builds() api.BuildsPage {
	h.t.Helper()
	var page api.BuildsPage
	res, body := h.do(h.bearer("GET", "/api/v1/builds", nil), &page)
	expectStatus(h.t, res, body, http.StatusOK)
	return page
}

func findJob(page api.BuildsPage, id int64) (gitlab.Pipeline, gitlab.Job, bool) {
	for _, p := range page.Pipelines {
		for _, j := range p.Jobs() {
			if j.ID == id {
				return p, j, true
			}
		}
	}
	return gitlab.Pipeline{}, gitlab.Job{}, false
}

// TestBuilds brings a stack up with two runner profiles, makes pipelines through the GitLab
// stand-in, and checks the builds API (authentication, CSRF, errors, stuck jobs, log by offset,
// play) and then the builds page in Chromium: a job's output appears live, cancel stops it and
// removes its container, retry runs it again, a log with the runner's line headers (stderr,
// continued lines) shows clean lines with an optional time column.
func TestBuilds(t *testing.T) {
	// The runner stand-in plays runner 18.8, whose job logs carry line headers (FF_TIMESTAMPS).
	h := newHarness(t, harnessOptions{engine: true, runnerFor: "18.8.11"})
	start := time.Now()

	// Authentication and CSRF, before anything runs.
	res, body := h.do(h.req("GET", "/api/v1/builds", nil), nil)
	expectError(t, res, body, http.StatusUnauthorized, api.CodeUnauthorized)
	res, body = h.do(h.req("POST", "/api/v1/builds/projects/1/jobs/1/retry", nil), nil)
	expectError(t, res, body, http.StatusUnauthorized, api.CodeUnauthorized)
	noCSRF := h.front("POST", "/api/v1/builds/projects/1/jobs/1/cancel", nil)
	noCSRF.Header.Del(api.HeaderCSRF)
	res, body = h.do(noCSRF, nil)
	expectError(t, res, body, http.StatusForbidden, api.CodeForbidden)
	cross := h.front("POST", "/api/v1/builds/projects/1/pipelines/1/cancel", nil)
	cross.Header.Set("Sec-Fetch-Site", "cross-site")
	res, body = h.do(cross, nil)
	expectError(t, res, body, http.StatusForbidden, api.CodeForbidden)
	res, body = h.do(h.bearer("GET", "/api/v1/builds", nil), nil)
	e := expectError(t, res, body, http.StatusServiceUnavailable, api.CodeGitLabUnavailable)
	if !strings.Contains(e.Error.Message, "no container") {
		t.Errorf("before the stack is up: %q", e.Error.Message)
	}
	res, body = h.do(h.bearer("GET", "/api/v1/builds/projects/x/jobs/1", nil), nil)
	expectError(t, res, body, http.StatusBadRequest, api.CodeInvalidRequest)

	// A second profile: jobs tagged deploy go to its runner, docker ones to the default one.
	res, body = h.do(h.bearer("POST", "/api/v1/runner/profiles", map[string]any{
		"name": "deploy", "image": h.cfg.Runner.Profiles[0].Image, "tags": []string{"deploy"}, "run_untagged": false, "concurrency": 1}), nil)
	expectStatus(t, res, body, http.StatusCreated)
	op := h.startOp("/api/v1/up")
	if done := h.waitOperation(op.ID, 5*time.Minute); done.State != "succeeded" {
		t.Fatalf("up: %+v\nlog:\n%s", done, h.logs.String())
	}
	t.Logf("stack up in %s", time.Since(start).Round(time.Second))
	gl := h.gitlabStandin(t)

	long := specJob{Name: "compile", Stage: "build", Tags: []string{"docker"},
		Script: []string{"echo compiling", "for i in 1 2 3 4 5 6 7 8; do echo \"compile step $i\"; sleep 1; done", "echo compiled"}}
	p1 := gl.pipeline("demo/app", "Add the widget", long,
		specJob{Name: "ship", Stage: "deploy", Tags: []string{"deploy"}, Script: []string{"echo shipped by $CI_RUNNER_DESCRIPTION"}})
	p2 := gl.pipeline("demo/gpu", "Train the model", specJob{Name: "train", Stage: "test", Tags: []string{"gpu"}, Script: []string{"echo never"}})
	p3 := gl.pipeline("demo/site", "Release notes", specJob{Name: "release", Stage: "deploy", Tags: []string{"docker"}, Script: []string{"echo released"}, When: "manual"})

	// The list: newest first, stuck job with its hint, runners with their profiles.
	page := h.builds()
	if len(page.Pipelines) != 3 || page.Pipelines[0].ID != p3.ID || page.Pipelines[2].ID != p1.ID {
		t.Fatalf("pipelines %+v", page.Pipelines)
	}
	if p := page.Pipelines[2]; p.Project != "demo/app" || p.CommitTitle != "Add the widget" || p.User != "root" || p.Ref != "main" ||
		len(p.Stages) != 2 || p.Stages[0].Name != "build" || p.Stages[1].Name != "deploy" {
		t.Errorf("pipeline 1: %+v", p)
	}
	_, train, _ := findJob(page, p2.job("train"))
	if train.Stuck == nil || train.Stuck.Reason != gitlab.StuckNoRunnerWithTags || !strings.Contains(train.Stuck.Hint, "add a runner profile with these tags") ||
		!strings.Contains(train.Stuck.Hint, "gpu") {
		t.Errorf("train is not stuck with a hint: %+v", train.Stuck)
	}
	profiles := map[string]api.RunnerView{}
	for _, r := range page.Runners {
		profiles[r.Profile] = r
	}
	if len(page.Runners) != 2 || profiles["default"].Description != h.cfg.Stack.Name+"-default" || strings.Join(profiles["deploy"].Tags, ",") != "deploy" {
		t.Errorf("runners %+v", page.Runners)
	}
	var one struct {
		Job gitlab.Job `json:"job"`
	}
	res, body = h.do(h.bearer("GET", fmt.Sprintf("/api/v1/builds/projects/%d/jobs/%d", p2.Project.ID, p2.job("train")), nil), &one)
	expectStatus(t, res, body, http.StatusOK)
	if one.Job.Stuck == nil || one.Job.Stuck.Reason != gitlab.StuckNoRunnerWithTags {
		t.Errorf("GET job: %s", body)
	}
	res, body = h.do(h.bearer("GET", fmt.Sprintf("/api/v1/builds/projects/%d/jobs/999999", p2.Project.ID), nil), nil)
	expectError(t, res, body, http.StatusNotFound, api.CodeNotFound)
	res, body = h.do(h.bearer("POST", fmt.Sprintf("/api/v1/builds/projects/%d/jobs/%d/explode", p2.Project.ID, p2.job("train")), nil), nil)
	expectError(t, res, body, http.StatusNotFound, api.CodeNotFound)

	// GitLab's refusals come back as conflicts, in GitLab's words.
	res, body = h.do(h.front("POST", fmt.Sprintf("/api/v1/builds/projects/%d/jobs/%d/retry", p2.Project.ID, p2.job("train")), nil), nil)
	e = expectError(t, res, body, http.StatusConflict, api.CodeConflict)
	if !strings.Contains(e.Error.Message, "not retryable") {
		t.Errorf("retry a pending job: %q", e.Error.Message)
	}
	// Play a manual job (from the browser: front secret and the CSRF header).
	var played struct {
		Job gitlab.Job `json:"job"`
	}
	res, body = h.do(h.front("POST", fmt.Sprintf("/api/v1/builds/projects/%d/jobs/%d/play", p3.Project.ID, p3.job("release")), nil), &played)
	expectStatus(t, res, body, http.StatusOK)
	if played.Job.Status != "pending" {
		t.Errorf("played: %s", body)
	}

	// The log by offset while compile runs: it grows, and ends complete.
	compile := p1.job("compile")
	tracePath := fmt.Sprintf("/api/v1/builds/projects/%d/jobs/%d/trace?offset=", p1.Project.ID, compile)
	var (
		offset   int64
		all      strings.Builder
		sawRun   bool
		polls    int
		deadline = time.Now().Add(2 * time.Minute)
	)
	for time.Now().Before(deadline) {
		var tp api.TracePage
		res, body := h.do(h.bearer("GET", tracePath+fmt.Sprint(offset), nil), &tp)
		expectStatus(t, res, body, http.StatusOK)
		if tp.Offset != offset || tp.Next != offset+int64(len(tp.Data)) {
			t.Fatalf("offsets: asked %d, got offset %d next %d with %d bytes", offset, tp.Offset, tp.Next, len(tp.Data))
		}
		all.WriteString(tp.Data)
		offset = tp.Next
		polls++
		if tp.Job.Status == "running" && strings.Contains(all.String(), "compile step 2") && !strings.Contains(all.String(), "compile step 8") {
			sawRun = true
		}
		if tp.Complete {
			if tp.Job.Status != "success" {
				t.Errorf("compile ended %s", tp.Job.Status)
			}
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !sawRun || !strings.Contains(all.String(), "compile step 8\n") || !strings.Contains(all.String(), "Job succeeded") {
		t.Errorf("followed log (%d polls, seen while running: %v):\n%s", polls, sawRun, all.String())
	}
	var again api.TracePage
	h.do(h.bearer("GET", tracePath+fmt.Sprint(offset), nil), &again)
	if again.Data != "" || !again.Complete || again.Next != offset {
		t.Errorf("past the end: %+v", again)
	}
	// ship runs on the deploy profile's runner.
	deadline = time.Now().Add(time.Minute)
	for {
		_, ship, _ := findJob(h.builds(), p1.job("ship"))
		if ship.Status == "success" {
			if ship.Runner != h.cfg.Stack.Name+"-deploy" {
				t.Errorf("ship ran on %q", ship.Runner)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ship did not pass: %+v", ship)
		}
		time.Sleep(time.Second)
	}
	t.Logf("API part done after %s", time.Since(start).Round(time.Second))
	if t.Failed() {
		return
	}
	buildsInBrowser(t, h, gl)
}

// buildsInBrowser drives the builds page: live log, stuck hint, cancel, retry, Chinese.
func buildsInBrowser(t *testing.T, h *harness, gl standin) {
	ctx := newBrowser(t)
	sh := shooter{t: t, dir: artifactsDir(t)}
	asFront(t, ctx, h, "enu")
	// A job that runs for a while, echoing lines with sleeps.
	p := gl.pipeline("demo/app", "Slow integration tests", specJob{Name: "integration", Stage: "test", Tags: []string{"docker"},
		Script: []string{"echo starting", "i=0; while [ $i -lt 90 ]; do i=$((i+1)); echo \"tick $i\"; sleep 1; done"}})
	job := p.job("integration")
	if err := step(ctx, chromedp.Navigate(h.ts.URL+"/#builds"), chromedp.WaitVisible(chromedp.CSS(`#builds-page`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the new pipeline is listed", fmt.Sprintf(`(() => document.querySelector('tr.pipeline[data-pipeline="%d"]') ? 'ok' : 'not yet')()`, p.ID), 30*time.Second)
	clickJS(t, ctx, fmt.Sprintf(`tr.pipeline[data-pipeline="%d"] .pipeline-toggle`, p.ID), 15*time.Second)
	jobRow := fmt.Sprintf(`tr.job[data-job="%d"]`, job)
	waitJS(t, ctx, "the job row", fmt.Sprintf(`(() => document.querySelector('%s') ? 'ok' : 'no row')()`, jobRow), 15*time.Second)
	clickJS(t, ctx, jobRow+` .job-name`, 15*time.Second)
	// Lines appear while the job runs: tick 3 is there while tick 20 is not yet.
	waitJS(t, ctx, "live output while running", `(() => {
		const text = (document.querySelector('#job-log-lines') || {}).innerText || '';
		const st = document.querySelector('#job-log-status .ci-status');
		if (/tick 20\b/.test(text)) return 'fail: the log arrived only late: ' + text.slice(-200);
		return st && st.dataset.status === 'running' && /tick 3\b/.test(text) ? 'ok' : 'status ' + (st && st.dataset.status) + ', ' + text.length + ' chars' })()`, 90*time.Second)
	var before int
	chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#job-log-lines .line').length`))
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#job-log-lines .line').length`)); err == nil {
		before = n
	}
	waitJS(t, ctx, "more lines follow", fmt.Sprintf(`(() => document.querySelectorAll('#job-log-lines .line').length > %d + 2 ? 'ok' : 'no new lines')()`, before), 20*time.Second)
	if h.jobContainers(job) != 1 {
		t.Errorf("job %d has %d containers while it runs", job, h.jobContainers(job))
	}
	sh.shot(ctx, "builds-01-live-log.png")
	noPageErrors(t, ctx)

	// Cancel from the page: the job shows canceled and its container goes away.
	if err := step(ctx, evalVoid(`window.confirm = () => true`)); err != nil {
		t.Fatal(err)
	}
	clickJS(t, ctx, `#job-log-actions button[data-action="cancel"]`, 15*time.Second)
	canceled := time.Now()
	waitJS(t, ctx, "canceled in the log viewer", `(() => { const st = document.querySelector('#job-log-status .ci-status'); return st && st.dataset.status === 'canceled' ? 'ok' : (st && st.dataset.status) })()`, 30*time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for h.jobContainers(job) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("job %d's container is still there %s after the cancel", job, time.Since(canceled))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the canceled job's container was gone %s after the click", time.Since(canceled).Round(100*time.Millisecond))
	sh.shot(ctx, "builds-02-canceled.png")

	// Retry from the page: a new try runs, and the viewer follows it.
	clickJS(t, ctx, `#job-log-actions button[data-action="retry"]`, 15*time.Second)
	waitJS(t, ctx, "the retry runs and prints", fmt.Sprintf(`(() => {
		const title = document.querySelector('#job-log-title').textContent;
		const st = document.querySelector('#job-log-status .ci-status');
		const text = document.querySelector('#job-log-lines').innerText;
		return !title.includes('#%d)') && st && st.dataset.status === 'running' && /tick 2\b/.test(text) ? 'ok' : title + ' ' + (st && st.dataset.status) })()`, job), 90*time.Second)
	var retryTitle string
	retryTitle, _ = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#job-log-title`)))
	waitJS(t, ctx, "the pipeline shows the second try", fmt.Sprintf(`(() => { const r = document.querySelector('tr.pipeline[data-pipeline="%d"] .ci-status'); return r && r.dataset.status === 'running' ? 'ok' : (r && r.dataset.status) })()`, p.ID), 15*time.Second)
	sh.shot(ctx, "builds-03-retried.png")
	t.Logf("retried: %s", retryTitle)
	// Stop the retry too, so the stack goes down quickly.
	chromedp.Run(ctx, chromedp.Click(chromedp.CSS(`#job-log-actions button[data-action="cancel"]`)))

	// The stuck job: its hint says which tags to add, with a link to the runner profiles.
	stuckPipeline := h.builds().Pipelines
	var gpu int64
	for _, pl := range stuckPipeline {
		if pl.Project == "demo/gpu" {
			gpu = pl.ID
		}
	}
	clickJS(t, ctx, fmt.Sprintf(`tr.pipeline[data-pipeline="%d"] .pipeline-toggle`, gpu), 15*time.Second)
	waitJS(t, ctx, "the stuck hint", `(() => { const s = document.querySelector('.stuck-hint[data-reason="no_runner_with_tags"]');
		return s && s.innerText.includes('gpu') && s.innerText.includes('Add a runner profile') && s.querySelector('a[href="#runners"]') ? 'ok' : (s ? s.innerText : 'none') })()`, 15*time.Second)
	waitJS(t, ctx, "the runner panel", `(() => { const r = document.querySelectorAll('#runner-panel .runner'); const d = document.querySelector('#runner-panel .runner[data-profile="deploy"] .dot.online');
		return r.length === 2 && d ? 'ok' : 'runners ' + r.length })()`, 15*time.Second)
	sh.shot(ctx, "builds-04-stuck-and-runners.png")

	// 中文.
	if err := step(ctx, evalVoid(`const s = document.querySelector('#lang-select'); s.value = 'zh-CN'; s.dispatchEvent(new Event('change'))`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the builds page in Chinese", `(() => document.querySelector('#builds-page h2').textContent === '构建' && document.querySelector('#tabs a[data-view="builds"]').textContent === '构建' ? 'ok' : 'not yet')()`, 10*time.Second)
	// The page keeps the open pipeline across the language change.
	waitJS(t, ctx, "the stuck hint in Chinese", `(() => { const s = document.querySelector('.stuck-hint'); return s && s.innerText.includes('卡住') && s.innerText.includes('gpu') ? 'ok' : (s ? s.innerText : 'none') })()`, 15*time.Second)
	sh.shot(ctx, "builds-05-zh.png")
	noPageErrors(t, ctx)
	chromedp.Run(ctx, evalVoid(`const s = document.querySelector('#lang-select'); s.value = 'en'; s.dispatchEvent(new Event('change'))`))

	timestampedLog(t, ctx, h, gl, sh)
}

// headerRE is the runner's line header (FF_TIMESTAMPS), as text that must never show.
const headerRE = `\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{6}Z [0-9a-f]{2}[OE]`

// timestampedLog checks the log viewer on a log with the runner's line headers: the parser
// module on fixed logs cut into chunks anywhere, then a real job's log with a progress line the
// runner continues and a line on stderr, with and without the time column.
func timestampedLog(t *testing.T, ctx context.Context, h *harness, gl standin, sh shooter) {
	// The parser (ui/web/tracefmt.js) against logs with and without headers, fed in chunks of
	// every size from 1 byte: the same lines as fed whole, headers never in the text.
	if err := step(ctx, evalVoid(`window.__traceCheck = ''; import('./tracefmt.js').then((m) => {
		const logs = {
			stamped: '2026-12-03T07:28:58.100000Z 00O section_start:1796282938:step_script\r\x1b[0K\x1b[36;1mExecuting\x1b[0;m\n' +
				'2026-12-03T07:28:58.200000Z 01O fetching 1/2\r\n2026-12-03T07:28:58.300000Z 01E warning: slow\n' +
				'2026-12-03T07:28:59.100000Z 01O+fetched 2 of 2\n2026-12-03T07:29:00.200000Z 00O section_end:1796282940:step_script\r\n' +
				'2026-12-03T07:29:00.200001Z 00O+\x1b[0KJob succeeded\nplain\n2026-12-03T07:29:01.000000Z 00O no line feed',
			plain: 'section_start:1796282938:step_script\r\x1b[0K\x1b[36;1mExecuting\x1b[0;m\nfetching 1/2\rfetched 2 of 2\nwarning: slow\n' +
				'section_end:1796282940:step_script\r\x1b[0KJob succeeded\nplain\nno line feed',
		};
		const want = {
			stamped: [['2026-12-03T07:28:58.100000Z', 0, false, '\x1b[36;1mExecuting\x1b[0;m'], ['2026-12-03T07:28:58.200000Z', 1, false, 'fetched 2 of 2'],
				['2026-12-03T07:28:58.300000Z', 1, true, 'warning: slow'], ['2026-12-03T07:29:00.200000Z', 0, false, 'Job succeeded'],
				['', -1, false, 'plain'], ['2026-12-03T07:29:01.000000Z', 0, false, 'no line feed']],
			plain: [['', -1, false, '\x1b[36;1mExecuting\x1b[0;m'], ['', -1, false, 'fetched 2 of 2'], ['', -1, false, 'warning: slow'],
				['', -1, false, 'Job succeeded'], ['', -1, false, 'plain'], ['', -1, false, 'no line feed']],
		};
		for (const [name, log] of Object.entries(logs)) {
			for (let size = 1; size <= log.length; size++) {
				const p = new m.TraceParser(), got = [];
				for (let i = 0; i < log.length; i += size) {
					got.push(...p.feed(log.slice(i, i + size)));
					for (const l of p.pending()) if (/^\d{4}-\d\d-/.test(l.text)) { window.__traceCheck = 'fail: header in a pending line: ' + l.text; return; }
				}
				got.push(...p.flush());
				const g = JSON.stringify(got.map((l) => [l.time, l.stream, l.stderr, m.visible(l.text)]));
				if (g !== JSON.stringify(want[name])) { window.__traceCheck = 'fail: ' + name + ' in chunks of ' + size + ': ' + g; return; }
			}
		}
		window.__traceCheck = 'ok';
	}).catch((e) => { window.__traceCheck = 'fail: ' + e; })`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "tracefmt.js on fixed logs", `window.__traceCheck || 'not yet'`, 30*time.Second)

	// A real job of the runner stand-in playing 18.8.
	p := gl.pipeline("demo/app", "Timestamped log", specJob{Name: "fetch", Stage: "test", Tags: []string{"docker"},
		Script: []string{`printf 'fetching 1/2\r'; sleep 1; printf 'fetching 2/2\r'; sleep 1; echo 'fetched 2 of 2'`,
			"echo 'warning: disk almost full' >&2", "echo done"}})
	job := p.job("fetch")
	waitJS(t, ctx, "the timestamped pipeline is listed", fmt.Sprintf(`(() => document.querySelector('tr.pipeline[data-pipeline="%d"]') ? 'ok' : 'not yet')()`, p.ID), 30*time.Second)
	clickJS(t, ctx, fmt.Sprintf(`tr.pipeline[data-pipeline="%d"] .pipeline-toggle`, p.ID), 15*time.Second)
	clickJS(t, ctx, fmt.Sprintf(`tr.job[data-job="%d"] .job-name`, job), 15*time.Second)
	waitJS(t, ctx, "the timestamped log ends", `(() => { const st = document.querySelector('#job-log-status .ci-status');
		const text = (document.querySelector('#job-log-lines') || {}).innerText || '';
		return st && st.dataset.status === 'success' && text.includes('Job succeeded') && !document.querySelector('#job-log-lines .partial') ? 'ok' : (st && st.dataset.status) + ' ' + text.length })()`, 90*time.Second)

	// The raw log has the headers, a continued line and stderr, so the page had something to do.
	var raw api.TracePage
	res, body := h.do(h.bearer("GET", fmt.Sprintf("/api/v1/builds/projects/%d/jobs/%d/trace?offset=0", p.Project.ID, job), nil), &raw)
	expectStatus(t, res, body, http.StatusOK)
	for _, want := range []string{" 01O fetching 1/2\r\n", " 01O+fetching 2/2\r\n", " 01O+fetched 2 of 2\n", " 01E warning: disk almost full\n", " 00O+"} {
		if !strings.Contains(raw.Data, want) {
			t.Errorf("the runner stand-in's log lacks %q:\n%q", want, raw.Data)
		}
	}
	waitJS(t, ctx, "clean lines", `(() => {
		const lines = [...document.querySelectorAll('#job-log-lines .line')].map((l) => l.querySelector('.tx').textContent);
		if (lines.some((l) => new RegExp('`+headerRE+`').test(l) || /section_(start|end)/.test(l))) return 'fail: raw header or marker: ' + lines.join(' | ');
		const fetch = lines.filter((l) => l.includes('fetch'));
		if (fetch.length !== 2 || fetch[1] !== 'fetched 2 of 2') return 'fail: progress line: ' + fetch.join(' | ');
		const err = [...document.querySelectorAll('#job-log-lines .line.err .tx')].map((l) => l.textContent);
		if (err.length !== 1 || err[0] !== 'warning: disk almost full') return 'fail: stderr lines: ' + err.join(' | ');
		if (!lines.includes('done') || !lines.some((l) => l.startsWith('Executing "step_script"'))) return 'fail: ' + lines.join(' | ');
		const ts = document.querySelector('#job-log-lines .line .ts');
		return ts && getComputedStyle(ts).display === 'none' ? 'ok' : 'fail: the time column shows before it is asked for' })()`, 15*time.Second)
	sh.shot(ctx, "builds-06-timestamped-log.png")

	// The time column: the runner's time, in local time with milliseconds, on every line.
	clickJS(t, ctx, `#job-log-times`, 15*time.Second)
	waitJS(t, ctx, "the time column", `(() => {
		const ts = [...document.querySelectorAll('#job-log-lines .line .ts')];
		if (!ts.length || ts.some((s) => getComputedStyle(s).display === 'none')) return 'hidden';
		const bad = ts.filter((s) => !/^\d\d:\d\d:\d\d\.\d{3}$/.test(s.textContent) || !/Z$/.test(s.title));
		return bad.length ? 'fail: ' + bad.map((s) => s.textContent + '/' + s.title).join(' | ') : 'ok' })()`, 15*time.Second)
	sh.shot(ctx, "builds-07-timestamps-column.png")
	clickJS(t, ctx, `#job-log-times`, 15*time.Second)
	noPageErrors(t, ctx)
}
