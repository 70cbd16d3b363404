package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/docker/docker/client"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

var logger = log.New(os.Stdout, "standin-runner: ", 0)

func logf(format string, args ...any) { logger.Printf(format, args...) }

// reloadInterval is how often config.toml is re-read, as the real runner does.
const reloadInterval = 3 * time.Second

// reverifyInterval is how often a runner's token is checked again.
const reverifyInterval = 30 * time.Second

// entry is one [[runners]] entry being handled.
type entry struct {
	cfg        Runner
	verifiedID int64     // the id GitLab answered, 0 until verified
	state      string    // "", "verified", "rejected", "error"
	checkedAt  time.Time // last verify attempt
	jobRunning bool
	cancel     context.CancelFunc // stops its job when the entry is removed
}

func (e *entry) label() string {
	id := e.cfg.ID
	if e.verifiedID != 0 {
		id = e.verifiedID
	}
	if e.cfg.Name != "" {
		return fmt.Sprintf("%d (%s)", id, e.cfg.Name)
	}
	return fmt.Sprint(id)
}

// jobRecord is a finished job in the state file.
type jobRecord struct {
	RunnerID int64     `json:"runner_id"`
	Result   string    `json:"result"`
	At       time.Time `json:"at"`
}

type stateFile struct {
	Jobs map[string]jobRecord `json:"jobs"`
}

type daemon struct {
	configPath string
	statePath  string
	httpc      *http.Client
	docker     dockers

	mu          sync.Mutex
	cfg         *Config // last good config, nil until one loaded
	lastData    []byte  // the bytes last looked at
	missingLogd bool
	entries     map[string]*entry // by token
	jobs        map[string]jobRecord
	stack       *string // own io.forgebox.stack label, once read

	listenAddr string
	listener   *http.Server

	ci ciState // ci.go: CI jobs taken from GitLab
}

func newDaemon(configPath string) *daemon {
	d := &daemon{
		configPath: configPath,
		statePath:  filepath.Join(filepath.Dir(configPath), ".standin-state.json"),
		httpc:      &http.Client{Timeout: 10 * time.Second},
		entries:    map[string]*entry{},
		jobs:       map[string]jobRecord{},
	}
	if b, err := os.ReadFile(d.statePath); err == nil {
		var st stateFile
		if err := json.Unmarshal(b, &st); err != nil {
			logf("ignoring unreadable %s: %v", d.statePath, err)
		} else if st.Jobs != nil {
			d.jobs = st.Jobs
		}
	}
	return d
}

// run is the main loop: reload every 3 s and on SIGHUP, verify tokens, start jobs.
func (d *daemon) run(ctx context.Context, hup <-chan os.Signal) {
	tick := time.NewTicker(reloadInterval)
	defer tick.Stop()
	d.reload(ctx, false)
	for {
		d.step(ctx)
		select {
		case <-ctx.Done():
			d.mu.Lock()
			for _, e := range d.entries {
				if e.cancel != nil {
					e.cancel()
				}
			}
			d.mu.Unlock()
			if d.listener != nil {
				d.listener.Close()
			}
			return
		case <-hup:
			logf("SIGHUP: reloading %s", d.configPath)
			d.reload(ctx, true)
		case <-tick.C:
			d.reload(ctx, false)
		}
	}
}

// reload reads config.toml; a config that does not parse is logged and the previous good one
// stays in force.
func (d *daemon) reload(ctx context.Context, force bool) {
	data, err := os.ReadFile(d.configPath)
	if errors.Is(err, os.ErrNotExist) {
		if !d.missingLogd {
			logf("waiting for %s to appear", d.configPath)
			d.missingLogd = true
		}
		return
	}
	d.missingLogd = false
	if err != nil {
		logf("cannot read %s: %v", d.configPath, err)
		return
	}
	if !force && d.lastData != nil && bytes.Equal(data, d.lastData) {
		return
	}
	d.lastData = data
	cfg, err := ParseConfig(data)
	if err != nil {
		if d.cfg == nil {
			logf("config error in %s: %v; no valid configuration yet, retrying", d.configPath, err)
		} else {
			logf("config error in %s: %v; keeping the previous configuration", d.configPath, err)
		}
		return
	}
	logf("loaded %s: concurrent=%d, %d runner(s)", d.configPath, cfg.Concurrent, len(cfg.Runners))
	if issues := configWarnings(cfg); len(issues) > 0 { // warnings.go
		logf("WARNING: CONFIGURATION: Long polling issues detected. Issues found: %s", strings.Join(issues, "; "))
	}
	d.apply(ctx, cfg)
}

func (d *daemon) apply(ctx context.Context, cfg *Config) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cfg = cfg
	keep := map[string]bool{}
	for _, r := range cfg.Runners {
		keep[r.Token] = true
		if e, ok := d.entries[r.Token]; ok {
			if r.URL != e.cfg.URL || r.ID != e.cfg.ID {
				e.state, e.verifiedID, e.checkedAt = "", 0, time.Time{} // verify again
			}
			e.cfg = r
			continue
		}
		d.entries[r.Token] = &entry{cfg: r}
	}
	for tok, e := range d.entries {
		if !keep[tok] {
			logf("runner %s removed from config.toml: no longer handled", e.label())
			if e.cancel != nil {
				e.cancel()
			}
			delete(d.entries, tok)
		}
	}
	d.setListen(cfg.ListenAddress)
}

// setListen (re)starts the health server on listen_address.
func (d *daemon) setListen(addr string) {
	if addr == d.listenAddr {
		return
	}
	if d.listener != nil {
		d.listener.Close()
		d.listener = nil
	}
	d.listenAddr = addr
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		logf("listen_address %s: %v", addr, err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health/ready", func(w http.ResponseWriter, r *http.Request) {
		if d.verifiedCount() == 0 {
			http.Error(w, "no runner verified", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready"))
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP gitlab_runner_standin_verified_runners Runners whose token GitLab verified (stand-in).\n")
		fmt.Fprintf(w, "# TYPE gitlab_runner_standin_verified_runners gauge\n")
		fmt.Fprintf(w, "gitlab_runner_standin_verified_runners %d\n", d.verifiedCount())
	})
	d.listener = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go d.listener.Serve(ln)
	logf("serving /health/ready and /metrics on %s", addr)
}

func (d *daemon) verifiedCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, e := range d.entries {
		if e.state == "verified" {
			n++
		}
	}
	return n
}

// step verifies the entries that are due and starts the jobs that have not run.
func (d *daemon) step(ctx context.Context) {
	defer d.syncCI(ctx) // ci.go: poll for CI jobs with each verified runner
	d.mu.Lock()
	var due []*entry
	for _, e := range d.entries {
		if e.state == "" || time.Since(e.checkedAt) >= reverifyInterval || (e.state != "verified" && time.Since(e.checkedAt) >= reloadInterval*3) {
			due = append(due, e)
		}
	}
	d.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].cfg.ID < due[j].cfg.ID })
	for _, e := range due {
		d.verify(ctx, e)
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	for tok, e := range d.entries {
		if e.state != "verified" || e.jobRunning {
			continue
		}
		spec := jobSpec{RunnerID: e.verifiedID, Token: tok, Name: e.cfg.Name, BaseURL: e.cfg.CloneURL,
			Docker: *e.cfg.Docker, Env: e.cfg.Environment, DockerHost: e.cfg.Docker.Host}
		if spec.BaseURL == "" {
			spec.BaseURL = e.cfg.URL
		}
		key := spec.key()
		if _, done := d.jobs[key]; done {
			continue
		}
		jctx, cancel := context.WithCancel(ctx)
		e.jobRunning, e.cancel = true, cancel
		go d.job(jctx, e, spec, key)
	}
}

// verify is POST <url>/api/v4/runners/verify with the entry's token.
func (d *daemon) verify(ctx context.Context, e *entry) {
	d.mu.Lock()
	cfg := e.cfg
	prev := e.state
	d.mu.Unlock()

	body, _ := json.Marshal(map[string]string{"token": cfg.Token})
	url := strings.TrimRight(cfg.URL, "/") + "/api/v4/runners/verify"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	state, id, detail := "error", int64(0), ""
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("RUNNER-TOKEN", cfg.Token)
		req.Header.Set("User-Agent", "gitlab-runner forgebox-runner-standin")
		var resp *http.Response
		resp, err = d.httpc.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				var v struct {
					ID int64 `json:"id"`
				}
				if json.Unmarshal(b, &v) == nil && v.ID > 0 {
					state, id = "verified", v.ID
				} else {
					state, id = "verified", cfg.ID // old GitLab answered plain text
				}
			case http.StatusForbidden:
				state, detail = "rejected", "GitLab answered 403: the token is not valid or the runner was deleted"
			default:
				detail = fmt.Sprintf("HTTP %d", resp.StatusCode)
			}
		}
	}
	if err != nil {
		detail = err.Error()
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.entries[cfg.Token] != e {
		return // removed meanwhile
	}
	e.checkedAt = time.Now()
	e.state = state
	if state == "verified" {
		e.verifiedID = id
	}
	if state == prev && state != "error" {
		return
	}
	switch state {
	case "verified":
		logf("runner %s verified at %s", e.label(), cfg.URL)
		if cfg.ID != 0 && id != cfg.ID {
			logf("runner %s: config.toml says id = %d but GitLab says %d", e.label(), cfg.ID, id)
		}
	case "rejected":
		logf("runner %s rejected at %s: %s", e.label(), cfg.URL, detail)
	default:
		logf("runner %s: cannot verify at %s: %s", e.label(), cfg.URL, detail)
	}
}

// job runs the entry's job container once and reports on one line.
func (d *daemon) job(ctx context.Context, e *entry, spec jobSpec, key string) {
	res := d.runJob(ctx, spec)
	d.mu.Lock()
	defer d.mu.Unlock()
	e.jobRunning = false
	if ctx.Err() != nil && d.entries[spec.Token] != e {
		logf("runner %d job via %s on network %s: cancelled (runner removed from config.toml)", spec.RunnerID, spec.BaseURL, spec.network())
		return
	}
	logf("runner %d job via %s on network %s: %s", spec.RunnerID, spec.BaseURL, spec.network(), res)
	if out := strings.TrimSpace(res.Output); out != "" {
		for _, l := range strings.Split(out, "\n") {
			logf("runner %d job output: %s", spec.RunnerID, l)
		}
	}
	d.jobs[key] = jobRecord{RunnerID: spec.RunnerID, Result: map[bool]string{true: "ok", false: "failed"}[res.OK], At: time.Now().UTC()}
	d.saveState()
}

func (d *daemon) runJob(ctx context.Context, spec jobSpec) jobResult {
	c, err := d.docker.get(ctx, spec.Docker)
	if err != nil {
		return jobResult{Err: err}
	}
	return runJob(ctx, c, spec, *d.stackLabel(ctx, c, spec.Docker.Host), logf)
}

// stackLabel is the runner container's io.forgebox.stack, read once. The runner's own
// container is on the local engine, whichever engine runs the job.
func (d *daemon) stackLabel(ctx context.Context, c *client.Client, host string) *string {
	d.mu.Lock()
	stack := d.stack
	d.mu.Unlock()
	if stack != nil {
		return stack
	}
	if host != "" {
		l, err := d.docker.get(ctx, Docker{})
		if err != nil {
			s := ""
			return &s
		}
		c = l
	}
	s := ownStackLabel(ctx, c)
	d.mu.Lock()
	d.stack = &s
	d.mu.Unlock()
	return &s
}

// saveState writes the job records atomically; called with d.mu held.
func (d *daemon) saveState() {
	b, _ := json.MarshalIndent(stateFile{Jobs: d.jobs}, "", "  ")
	tmp := d.statePath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		logf("cannot write %s: %v", d.statePath, err)
		return
	}
	if err := os.Rename(tmp, d.statePath); err != nil {
		logf("cannot write %s: %v", d.statePath, err)
	}
}
