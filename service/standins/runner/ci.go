package main

// CI jobs, the way GitLab Runner's docker executor takes and runs them, reduced to what forgebox
// shows: each verified [[runners]] entry polls POST <url>/api/v4/jobs/request with its token
// (every check_interval, 3 s by default), within its `limit` and the global `concurrent`; a job
// it gets runs as one container of the job's image (else [runners.docker] image) on
// network_mode, its script lines run by sh -c as the runner's shell would (each echoed as
// "$ line", stopping at the first that fails). The container's output goes back to GitLab with
// PATCH <url>/api/v4/jobs/:id/trace at increasing offsets about once a second, and the end with
// PUT <url>/api/v4/jobs/:id (success, or failed with the exit code). When GitLab answers that the
// job is no longer running (403, or Job-Status canceled/failed: the job was canceled), the
// container is removed at once. No helper image, git clone, cache, artifacts, services or
// after_script: this is a stand-in, not GitLab Runner.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// Label on CI job containers: the GitLab job id.
const labelJob = "io.forgebox.standin.job"

// ciTraceInterval is how often new output is sent; ciHeartbeat how long a silent job waits
// before it tells GitLab it still runs (which is also when it learns of a cancel).
const (
	ciTraceInterval = time.Second
	ciHeartbeat     = 3 * time.Second
)

// ciState is the CI side of the daemon: one poller per verified runner, and the running jobs.
type ciState struct {
	mu      sync.Mutex
	pollers map[string]*ciPoller // by runner token
	running int                  // jobs running across all runners
}

type ciPoller struct {
	cfg     Runner
	id      int64
	cancel  context.CancelFunc
	running int
}

// syncCI starts a poller for each verified runner and stops those of runners that are gone or
// changed. Called after each daemon step, without d.mu held.
func (d *daemon) syncCI(ctx context.Context) {
	d.mu.Lock()
	want := map[string]*entry{}
	concurrent := 1
	if d.cfg != nil {
		concurrent = d.cfg.Concurrent
	}
	for tok, e := range d.entries {
		if e.state == "verified" && e.cfg.Docker != nil {
			want[tok] = e
		}
	}
	d.mu.Unlock()

	c := &d.ci
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pollers == nil {
		c.pollers = map[string]*ciPoller{}
	}
	for tok, p := range c.pollers {
		e, ok := want[tok]
		if ok && e.cfg.URL == p.cfg.URL && e.verifiedID == p.id && sameDocker(e.cfg, p.cfg) {
			p.cfg.Limit = e.cfg.Limit
			continue
		}
		p.cancel() // removed or changed: its jobs end with it
		delete(c.pollers, tok)
	}
	for tok, e := range want {
		if _, ok := c.pollers[tok]; ok {
			continue
		}
		pctx, cancel := context.WithCancel(ctx)
		p := &ciPoller{cfg: e.cfg, id: e.verifiedID, cancel: cancel}
		c.pollers[tok] = p
		go d.poll(pctx, p, concurrent)
	}
}

func sameDocker(a, b Runner) bool {
	ja, _ := json.Marshal(a.Docker)
	jb, _ := json.Marshal(b.Docker)
	return bytes.Equal(ja, jb) && strings.Join(a.Environment, "\n") == strings.Join(b.Environment, "\n")
}

// take reserves a job slot for p, within its limit and the global concurrent.
func (d *daemon) take(p *ciPoller, concurrent int) bool {
	d.mu.Lock()
	if d.cfg != nil {
		concurrent = d.cfg.Concurrent
	}
	d.mu.Unlock()
	c := &d.ci
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running >= concurrent || (p.cfg.Limit > 0 && p.running >= p.cfg.Limit) {
		return false
	}
	c.running++
	p.running++
	return true
}

func (d *daemon) release(p *ciPoller) {
	d.ci.mu.Lock()
	d.ci.running--
	p.running--
	d.ci.mu.Unlock()
}

// poll asks GitLab for jobs for one runner until ctx ends.
func (d *daemon) poll(ctx context.Context, p *ciPoller, concurrent int) {
	interval := 3 * time.Second
	d.mu.Lock()
	if d.cfg != nil && d.cfg.CheckInterval > 0 {
		interval = time.Duration(d.cfg.CheckInterval) * time.Second
	}
	d.mu.Unlock()
	refused := false
	for ctx.Err() == nil {
		if d.take(p, concurrent) {
			job, status, err := requestJob(ctx, d.httpc, p.cfg)
			switch {
			case job != nil:
				refused = false
				go func() {
					defer d.release(p)
					d.runCI(ctx, p, job)
				}()
				continue // ask again at once, as the runner does after a job
			case err != nil && ctx.Err() == nil:
				logf("runner %d: checking for jobs: %v", p.id, err)
			case status == http.StatusForbidden && !refused:
				logf("runner %d: checking for jobs: forbidden (GitLab no longer knows the token)", p.id)
				refused = true
			}
			d.release(p)
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}

// ciPayload is the part of GitLab's job payload (RUN common.JobResponse) the stand-in uses.
type ciPayload struct {
	ID      int64  `json:"id"`
	Token   string `json:"token"`
	JobInfo struct {
		Name        string `json:"name"`
		Stage       string `json:"stage"`
		ProjectID   int64  `json:"project_id"`
		ProjectName string `json:"project_name"`
	} `json:"job_info"`
	GitInfo struct {
		RepoURL string `json:"repo_url"`
		Ref     string `json:"ref"`
		Sha     string `json:"sha"`
	} `json:"git_info"`
	RunnerInfo struct {
		Timeout int `json:"timeout"`
	} `json:"runner_info"`
	Variables []struct {
		Key    string `json:"key"`
		Value  string `json:"value"`
		Public bool   `json:"public"`
		Masked bool   `json:"masked"`
		File   bool   `json:"file"`
	} `json:"variables"`
	Steps []struct {
		Name   string   `json:"name"`
		Script []string `json:"script"`
	} `json:"steps"`
	Image struct {
		Name string `json:"name"`
	} `json:"image"`
}

func (j *ciPayload) variable(key string) string {
	for _, v := range j.Variables {
		if v.Key == key {
			return v.Value
		}
	}
	return ""
}

// runnerInfo is the "info" the runner sends with its requests.
func runnerInfo() map[string]any {
	return map[string]any{"name": "gitlab-runner", "version": "forgebox-standin", "revision": "standin", "platform": "linux",
		"architecture": "amd64", "executor": "docker", "shell": "sh",
		"features": map[string]bool{"variables": true, "image": true, "services": false, "artifacts": false, "cache": false,
			"shared": false, "upload_multiple_artifacts": false, "upload_raw_artifacts": false, "session": false,
			"terminal": false, "refspecs": true, "masking": true, "proxy": false, "raw_variables": true,
			"artifacts_exclude": false, "multi_build_steps": true, "trace_reset": true, "trace_checksum": true,
			"trace_size": true, "vault_secrets": false, "cancelable": true, "return_exit_code": true}}
}

func apiURL(cfg Runner, path string) string {
	return strings.TrimRight(cfg.URL, "/") + "/api/v4/" + path
}

// requestJob is POST /api/v4/jobs/request: a job (201), none (204), or the status.
func requestJob(ctx context.Context, hc *http.Client, cfg Runner) (*ciPayload, int, error) {
	body, _ := json.Marshal(map[string]any{"token": cfg.Token, "info": runnerInfo(), "system_id": "s_forgeboxstandin"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, apiURL(cfg, "jobs/request"), bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gitlab-runner forgebox-runner-standin")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	switch resp.StatusCode {
	case http.StatusCreated:
		var j ciPayload
		if err := json.Unmarshal(b, &j); err != nil || j.ID == 0 || j.Token == "" {
			return nil, resp.StatusCode, fmt.Errorf("a job payload that does not parse: %v", err)
		}
		return &j, resp.StatusCode, nil
	case http.StatusNoContent, http.StatusForbidden:
		return nil, resp.StatusCode, nil
	}
	return nil, resp.StatusCode, fmt.Errorf("HTTP %d %s", resp.StatusCode, strings.TrimSpace(string(b)))
}

// ciTrace is a job's log as it grows: output is appended (masked values hidden), with the
// runner's line headers when FF_TIMESTAMPS is on (trace.go), and sent from the offset GitLab
// acknowledged. Write is the job script's stdout.
type ciTrace struct {
	mu      sync.Mutex
	data    []byte
	sent    int
	masked  []string
	limit   int
	limited bool
	stamp   bool                   // FF_TIMESTAMPS
	now     func() time.Time       // the headers' clock (time.Now when nil)
	streams map[streamKey]*stamper // with stamp, one per stream
}

type streamKey struct {
	stream uint8
	stderr bool
}

// streamWriter is one stream of the log (io.Writer for the container's output).
type streamWriter struct {
	t   *ciTrace
	key streamKey
}

func (w streamWriter) Write(p []byte) (int, error) { return w.t.write(w.key, p) }

// stream is the writer of stream n, stdout or stderr.
func (t *ciTrace) stream(n uint8, stderr bool) streamWriter {
	return streamWriter{t, streamKey{n, stderr}}
}

func (t *ciTrace) Write(p []byte) (int, error) { return t.write(streamKey{streamScript, false}, p) }

func (t *ciTrace) write(k streamKey, p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.limited {
		return len(p), nil
	}
	s := string(p)
	for _, m := range t.masked {
		if len(m) >= 8 {
			s = strings.ReplaceAll(s, m, "[MASKED]")
		}
	}
	if !t.stamp {
		t.appendLocked([]byte(s))
		return len(p), nil
	}
	st := t.streams[k]
	if st == nil {
		now := t.now
		if now == nil {
			now = time.Now
		}
		st = &stamper{stream: k.stream, stderr: k.stderr, now: now, out: t.appendLocked}
		if t.streams == nil {
			t.streams = map[streamKey]*stamper{}
		}
		t.streams[k] = st
	}
	st.Write([]byte(s))
	return len(p), nil
}

// appendLocked adds bytes to the log, up to the output limit (t.mu held).
func (t *ciTrace) appendLocked(b []byte) {
	if t.limited {
		return
	}
	if t.limit > 0 && len(t.data)+len(b) > t.limit {
		t.limited = true
		msg := []byte(fmt.Sprintf("\n\x1b[31;1mJob's log exceeded limit of %d bytes.\nJob execution will continue but no more output will be collected.\x1b[0;m\n", t.limit))
		if t.stamp {
			var out []byte
			now := t.now
			if now == nil {
				now = time.Now
			}
			st := &stamper{stream: streamRunner, now: now, out: func(l []byte) { out = append(out, l...) }}
			st.Write(msg)
			msg = out
		}
		t.data = append(t.data, msg...)
		return
	}
	t.data = append(t.data, b...)
}

// closeStreams ends the lines the job's streams still hold (the job's output is over).
func (t *ciTrace) closeStreams() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, st := range t.streams {
		if k.stream != streamRunner {
			st.Close()
		}
	}
}

// line writes one of the runner's own lines.
func (t *ciTrace) line(format string, args ...any) {
	t.write(streamKey{streamRunner, false}, []byte(fmt.Sprintf(format, args...)+"\n"))
}

// section writes GitLab's collapsible section markers around a header line.
func (t *ciTrace) section(start bool, name, header string) {
	now := time.Now().Unix()
	if start {
		t.write(streamKey{streamRunner, false}, []byte(fmt.Sprintf("section_start:%d:%s\r\x1b[0K\x1b[36;1m%s\x1b[0;m\n", now, name, header)))
	} else {
		t.write(streamKey{streamRunner, false}, []byte(fmt.Sprintf("section_end:%d:%s\r\x1b[0K", now, name)))
	}
}

// ciAbort says GitLab no longer wants the job (canceled, or failed on its side).
type ciAbort struct{ status string }

func (e *ciAbort) Error() string { return "GitLab says the job is " + orNone(e.status) }

func orNone(s string) string {
	if s == "" {
		return "no longer running"
	}
	return s
}

// patch sends what GitLab has not acknowledged yet (PATCH .../trace).
func (t *ciTrace) patch(ctx context.Context, hc *http.Client, cfg Runner, j *ciPayload) (bool, error) {
	t.mu.Lock()
	from := t.sent
	chunk := append([]byte(nil), t.data[from:]...)
	t.mu.Unlock()
	if len(chunk) == 0 {
		return false, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, apiURL(cfg, fmt.Sprintf("jobs/%d/trace?debug_trace=false", j.ID)), bytes.NewReader(chunk))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("JOB-TOKEN", j.Token)
	req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", from, from+len(chunk)-1))
	resp, err := hc.Do(req)
	if err != nil {
		return false, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	state := resp.Header.Get("Job-Status")
	switch {
	case state == "canceled" || state == "failed" || resp.StatusCode == http.StatusForbidden:
		return false, &ciAbort{state}
	case resp.StatusCode == http.StatusAccepted:
		t.mu.Lock()
		t.sent = from + len(chunk)
		t.mu.Unlock()
		return true, nil
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		// GitLab has a different length: go on from what it has.
		if _, end, ok := strings.Cut(resp.Header.Get("Range"), "-"); ok {
			if n, err := strconv.Atoi(end); err == nil && n <= len(t.data) {
				t.mu.Lock()
				t.sent = n
				t.mu.Unlock()
			}
		}
		return false, fmt.Errorf("trace range mismatch (GitLab has %s)", resp.Header.Get("Range"))
	}
	return false, fmt.Errorf("trace: HTTP %d", resp.StatusCode)
}

// update is PUT /api/v4/jobs/:id.
func update(ctx context.Context, hc *http.Client, cfg Runner, j *ciPayload, state string, exit *int, reason string, t *ciTrace) error {
	body := map[string]any{"token": j.Token, "state": state, "info": runnerInfo()}
	if exit != nil {
		body["exit_code"] = *exit
	}
	if reason != "" {
		body["failure_reason"] = reason
	}
	if t != nil {
		t.mu.Lock()
		body["output"] = map[string]any{"checksum": fmt.Sprintf("crc32:%08x", crc32.ChecksumIEEE(t.data)), "bytesize": len(t.data)}
		t.mu.Unlock()
	}
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, apiURL(cfg, fmt.Sprintf("jobs/%d", j.ID)), bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	st := resp.Header.Get("Job-Status")
	switch {
	case st == "canceled" || (st == "failed" && state == "running") || resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound:
		return &ciAbort{st}
	case resp.StatusCode == http.StatusOK:
		return nil
	}
	return fmt.Errorf("update job: HTTP %d", resp.StatusCode)
}

// ciScript is the job's script for sh -c: each line echoed like the runner's shell does
// ("$ line", in green), stopping at the first failing line.
func ciScript(lines []string) string {
	var b strings.Builder
	b.WriteString("set -e\n")
	for _, l := range lines {
		fmt.Fprintf(&b, "printf '\\033[32;1m$ %%s\\033[0;m\\n' %s\n%s\n", shellQuote(l), l)
	}
	return b.String()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// runCI runs one job to its end and reports it to GitLab.
func (d *daemon) runCI(ctx context.Context, p *ciPoller, j *ciPayload) {
	cfg := p.cfg
	limit := cfg.OutputLimit
	if limit == 0 {
		limit = 4096
	}
	version := claimedVersion()
	t := &ciTrace{limit: limit * 1024, stamp: timestamps(version, cfg.FeatureFlags, j.variable(ffTimestamps))}
	for _, v := range j.Variables {
		if v.Masked {
			t.masked = append(t.masked, v.Value)
		}
	}
	image := j.Image.Name
	if image == "" {
		image = cfg.Docker.Image
	}
	logf("runner %d: job %d (%s, project %s) received; image %s", p.id, j.ID, j.JobInfo.Name, j.variable("CI_PROJECT_PATH"), image)
	t.line("\x1b[0KRunning with gitlab-runner %s (forgebox stand-in, not GitLab Runner)\x1b[0;m", version)
	t.line("\x1b[0K  on %s (runner %d), system ID: s_forgeboxstandin\x1b[0;m", cfg.Name, p.id)
	t.section(true, "prepare_executor", "Preparing the \"docker\" executor")
	t.line("\x1b[0KUsing Docker executor with image %s ...\x1b[0;m", image)

	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timeout := time.Duration(j.RunnerInfo.Timeout) * time.Second
	if timeout <= 0 {
		timeout = time.Hour
	}
	res := make(chan ciResult, 1)
	go func() { res <- d.execCI(jctx, p, j, image, t, timeout) }()

	// Send output about once a second; a silent job says it is alive every few seconds. A
	// cancel seen on either way ends the job at once.
	var (
		out       ciResult
		aborted   error
		lastAlive = time.Now()
		tick      = time.NewTicker(ciTraceInterval)
	)
	defer tick.Stop()
loop:
	for {
		select {
		case out = <-res:
			break loop
		case <-ctx.Done():
			cancel()
			out = <-res
			logf("runner %d: job %d stopped: the runner entry went away", p.id, j.ID)
			return
		case <-tick.C:
			sent, err := t.patch(ctx, d.httpc, cfg, j)
			if sent {
				lastAlive = time.Now()
			}
			if err == nil && !sent && time.Since(lastAlive) >= ciHeartbeat {
				err = update(ctx, d.httpc, cfg, j, "running", nil, "", nil)
				lastAlive = time.Now()
			}
			var ab *ciAbort
			if errors.As(err, &ab) {
				aborted = err
				cancel() // removes the container
				out = <-res
				break loop
			} else if err != nil {
				logf("runner %d: job %d: %v", p.id, j.ID, err)
			}
		}
	}
	if aborted != nil {
		logf("runner %d: job %d aborted: %v; its container %s is removed", p.id, j.ID, aborted, orNone(out.container))
		return
	}
	t.closeStreams()
	t.section(false, "step_script", "")
	var state, reason string
	var exit *int
	switch {
	case out.err != nil:
		state, reason = "failed", "runner_system_failure"
		if out.timedOut {
			reason = "job_execution_timeout"
			t.line("\x1b[31;1mERROR: Job failed: execution took longer than %s seconds\x1b[0;m", strconv.Itoa(int(timeout.Seconds())))
		} else {
			t.line("\x1b[31;1mERROR: Job failed (system failure): %v\x1b[0;m", out.err)
		}
	case out.exit == 0:
		state = "success"
		exit = &out.exit
		t.line("\x1b[32;1mJob succeeded\x1b[0;m")
	default:
		state, reason = "failed", "script_failure"
		exit = &out.exit
		t.line("\x1b[31;1mERROR: Job failed: exit code %d\x1b[0;m", out.exit)
	}
	// The rest of the log, then the final state; retried a few times like the runner does.
	for attempt := 0; attempt < 10; attempt++ {
		_, err := t.patch(ctx, d.httpc, cfg, j)
		t.mu.Lock()
		done := t.sent == len(t.data)
		t.mu.Unlock()
		var ab *ciAbort
		if errors.As(err, &ab) {
			logf("runner %d: job %d ended %s, but GitLab had it %s", p.id, j.ID, state, orNone(ab.status))
			return
		}
		if done {
			break
		}
		sleepCtx(ctx, 500*time.Millisecond)
	}
	for attempt := 0; attempt < 10; attempt++ {
		err := update(ctx, d.httpc, cfg, j, state, exit, reason, t)
		if err == nil {
			break
		}
		var ab *ciAbort
		if errors.As(err, &ab) {
			logf("runner %d: job %d ended %s, but GitLab had it %s", p.id, j.ID, state, orNone(ab.status))
			return
		}
		logf("runner %d: job %d: %v; retrying", p.id, j.ID, err)
		sleepCtx(ctx, time.Second)
	}
	logf("runner %d: job %d %s (exit code %v)", p.id, j.ID, state, derefCode(exit))
}

func derefCode(p *int) any {
	if p == nil {
		return "-"
	}
	return *p
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// ciResult is how a job container ended.
type ciResult struct {
	exit      int
	err       error
	timedOut  bool
	container string
}

// execCI runs the job container: pull if allowed and missing, create on network_mode, start,
// stream its output into t, wait for its exit (or ctx, or the timeout), and remove it.
func (d *daemon) execCI(ctx context.Context, p *ciPoller, j *ciPayload, image string, t *ciTrace, timeout time.Duration) ciResult {
	c, err := d.docker.get(ctx, *p.cfg.Docker)
	if err != nil {
		return ciResult{err: err}
	}
	stack := d.stackLabel(ctx, c, p.cfg.Docker.Host)
	helper, err := checkHelperImage(ctx, c, *p.cfg.Docker) // helper.go
	if err != nil {
		return ciResult{err: err}
	}
	t.line("Using helper image:  %s", helper)
	if err := ensureImage(ctx, c, image, p.cfg.Docker.PullPolicy); err != nil {
		return ciResult{err: err}
	}
	t.section(false, "prepare_executor", "")
	// The sources first, with the job token, as the runner's helper would: a GitLab that
	// refuses the token fails the job here.
	t.section(true, "get_sources", "Getting source from Git repository")
	remote, err := remoteURL(p.cfg, j)
	if err == nil {
		err = fetchRefs(ctx, d.httpc, remote)
	}
	if err != nil {
		return ciResult{err: fmt.Errorf("fetch the sources: %w", err)}
	}
	t.line("Fetched the sources of %s", j.variable("CI_PROJECT_PATH"))
	t.section(false, "get_sources", "")
	hc, anon, err := hostConfig(*p.cfg.Docker)
	if err != nil {
		return ciResult{err: err}
	}
	var env []string
	for _, v := range j.Variables {
		if !v.File {
			env = append(env, v.Key+"="+v.Value)
		}
	}
	env = append(env, p.cfg.Environment...)
	var script []string
	for _, s := range j.Steps {
		if s.Name == "script" {
			script = append(script, s.Script...)
		}
	}
	label := *stack
	if label == "" {
		label = "none"
	}
	project := j.variable("CI_PROJECT_PATH")
	cfg := &container.Config{
		Image:      image,
		Entrypoint: []string{"/bin/sh", "-c"},
		Cmd:        []string{ciScript(script)},
		Env:        env,
		WorkingDir: "/builds/" + project,
		Volumes:    anon,
		Labels: map[string]string{
			labelStandin:                 "runner-job",
			labelStack:                   label,
			"io.forgebox.standin.runner": strconv.FormatInt(p.id, 10),
			labelJob:                     strconv.FormatInt(j.ID, 10),
		},
	}
	name := fmt.Sprintf("runner-%d-project-%d-job-%d-build-%s", p.id, j.JobInfo.ProjectID, j.ID, randomSuffix())
	t.section(true, "step_script", "Executing \"step_script\" stage of the job script")
	created, err := c.ContainerCreate(ctx, cfg, hc, nil, nil, name)
	if err != nil {
		return ciResult{err: fmt.Errorf("create job container: %w", err)}
	}
	defer func() {
		rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer rcancel()
		if err := c.ContainerRemove(rctx, created.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			logf("cannot remove job container %s: %v", name, err)
		}
	}()
	// Attached before the start, as the docker executor does: output arrives as the script
	// writes it (a container's log would come line by line, hiding the runner's line cutting).
	att, err := c.ContainerAttach(ctx, created.ID, container.AttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return ciResult{err: fmt.Errorf("attach to job container: %w", err), container: name}
	}
	defer att.Close()
	waitC, errC := c.ContainerWait(ctx, created.ID, container.WaitConditionNextExit)
	if err := c.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return ciResult{err: fmt.Errorf("start job container: %w", err), container: name}
	}
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		stdcopy.StdCopy(t.stream(streamScript, false), t.stream(streamScript, true), att.Reader)
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case w := <-waitC:
		<-logsDone // the stream ends with the container: all output is in
		if w.Error != nil {
			return ciResult{err: fmt.Errorf("wait for job container: %s", w.Error.Message), container: name}
		}
		return ciResult{exit: int(w.StatusCode), container: name}
	case err := <-errC:
		if ctx.Err() != nil {
			return ciResult{err: ctx.Err(), container: name}
		}
		return ciResult{err: fmt.Errorf("wait for job container: %w", err), container: name}
	case <-timer.C:
		return ciResult{err: fmt.Errorf("timed out"), timedOut: true, container: name}
	case <-ctx.Done():
		return ciResult{err: ctx.Err(), container: name}
	}
}

// remoteURL is where a job's sources come from (gitlab-runner common/build.go, GetRemoteURL):
// GitLab's repo_url, unless the runner entry sets clone_url; then clone_url's scheme and host
// with the project path, and the job token as HTTP basic credentials, user gitlab-ci-token.
func remoteURL(cfg Runner, j *ciPayload) (string, error) {
	if cfg.CloneURL == "" {
		return j.GitInfo.RepoURL, nil
	}
	u, err := url.Parse(cfg.CloneURL)
	if err != nil || u.Scheme == "" {
		return j.GitInfo.RepoURL, nil
	}
	u.User = url.UserPassword("gitlab-ci-token", j.Token)
	u.Path = path.Join(u.Path, j.variable("CI_PROJECT_PATH")+".git")
	return u.String(), nil
}

// fetchRefs is the first request of a smart-HTTP fetch of remote, with the credentials the
// URL carries sent as HTTP basic authentication (as git does once GitLab asks for them).
func fetchRefs(ctx context.Context, hc *http.Client, remote string) error {
	u, err := url.Parse(remote)
	if err != nil {
		return err
	}
	user := u.User
	u.User = nil
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String()+"/info/refs?service=git-upload-pack", nil)
	if err != nil {
		return err
	}
	if user != nil {
		pw, _ := user.Password()
		req.SetBasicAuth(user.Username(), pw)
	}
	req.Header.Set("User-Agent", "git/2.47.2 (forgebox-runner-standin)")
	req.Header.Set("Git-Protocol", "version=0")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s/info/refs: HTTP %d", u.Redacted(), resp.StatusCode)
	}
	if !strings.HasPrefix(string(body), advertisementStart) {
		return fmt.Errorf("GET %s/info/refs: not an upload-pack advertisement", u.Redacted())
	}
	return nil
}
