package gitlab

// Builds: recent pipelines across projects, their jobs, a job's log by byte offset, retry,
// cancel and play, and the runners' status, all through GitLab's REST API with client-go.
//
// GitLab's REST API has no list of pipelines across projects, so forgebox asks for the most
// recently active projects (GET /projects ordered by last_activity_at) and each one's newest
// pipelines, and merges them by id (pipeline ids are global). A finished pipeline does not
// change until its updated_at does, so its details are kept in a BuildsCache.
//
// GitLab's job log endpoint (GET /projects/:id/jobs/:job_id/trace) returns the whole log and
// has no Range support; a client follows a running job by fetching it again and reading past
// the offset it already has. Trace does that and hands back only the new bytes.
//
// GitLab's job API does not say whether a pending job is stuck; StuckReason works it out the
// way GitLab's job page does: no online, unpaused runner whose tags cover the job's.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// Job is one job of a pipeline.
type Job struct {
	ID             int64      `json:"id"`
	PipelineID     int64      `json:"pipeline_id"`
	ProjectID      int64      `json:"project_id"`
	Name           string     `json:"name"`
	Stage          string     `json:"stage"`
	Status         string     `json:"status"`
	Tags           []string   `json:"tags"`
	AllowFailure   bool       `json:"allow_failure"`
	RunnerID       int64      `json:"runner_id,omitempty"`
	Runner         string     `json:"runner,omitempty"` // the runner's description
	CreatedAt      *time.Time `json:"created_at,omitempty"`
	StartedAt      *time.Time `json:"started_at,omitempty"`
	FinishedAt     *time.Time `json:"finished_at,omitempty"`
	Duration       float64    `json:"duration"`        // seconds it ran (so far)
	QueuedDuration float64    `json:"queued_duration"` // seconds it waited for a runner
	User           string     `json:"user,omitempty"`
	FailureReason  string     `json:"failure_reason,omitempty"`
	Ref            string     `json:"ref"`
	CommitTitle    string     `json:"commit_title,omitempty"`
	WebURL         string     `json:"web_url,omitempty"`
	Tries          int        `json:"tries"`           // 1, or more when it was retried
	Stuck          *Stuck     `json:"stuck,omitempty"` // set by MarkStuck for a job no runner will take
}

// Active says whether the job can still change by itself.
func (j Job) Active() bool { return Active(j.Status) }

// Active says whether a job or pipeline status is not final.
func Active(status string) bool {
	switch status {
	case "success", "failed", "canceled", "skipped", "manual":
		return false
	}
	return true
}

// Stage is a pipeline's stage with the latest try of each of its jobs.
type Stage struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Jobs   []Job  `json:"jobs"`
}

// Pipeline is a pipeline with what the builds page shows of it.
type Pipeline struct {
	ID          int64      `json:"id"`
	IID         int64      `json:"iid"`
	ProjectID   int64      `json:"project_id"`
	Project     string     `json:"project"` // path with namespace
	Ref         string     `json:"ref"`
	SHA         string     `json:"sha"`
	CommitTitle string     `json:"commit_title"`
	Status      string     `json:"status"`
	Source      string     `json:"source"`
	User        string     `json:"user"`      // username of who started it
	UserName    string     `json:"user_name"` // their display name
	CreatedAt   *time.Time `json:"created_at,omitempty"`
	UpdatedAt   *time.Time `json:"updated_at,omitempty"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	Duration    int64      `json:"duration"` // seconds; for a running pipeline, so far
	WebURL      string     `json:"web_url"`
	Stages      []Stage    `json:"stages"`
}

// clone copies the stages and jobs, so a cached pipeline is never shared.
func (p Pipeline) clone() Pipeline {
	p.Stages = slices.Clone(p.Stages)
	for i := range p.Stages {
		p.Stages[i].Jobs = slices.Clone(p.Stages[i].Jobs)
	}
	return p
}

// Jobs lists the pipeline's jobs, stage by stage.
func (p Pipeline) Jobs() []Job {
	var out []Job
	for _, s := range p.Stages {
		out = append(out, s.Jobs...)
	}
	return out
}

// APIError is GitLab refusing a call: its status and message (e.g. 403 "Job is not retryable").
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("GitLab answered %d: %s", e.Status, e.Message) }

// ErrNotFound: GitLab has no such project, pipeline or job.
var ErrNotFound = errors.New("GitLab has no such project, pipeline or job")

// apiErr turns client-go's errors into ErrNotFound, ErrUnauthorized or an *APIError.
func apiErr(what string, resp *gl.Response, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, gl.ErrNotFound) || (resp != nil && resp.StatusCode == http.StatusNotFound) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if resp != nil && resp.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("%s: %w", what, ErrUnauthorized)
	}
	var er *gl.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		msg := er.Message
		var body struct {
			Message any `json:"message"`
		}
		if json.Unmarshal(er.Body, &body) == nil {
			if s, ok := body.Message.(string); ok {
				msg = s
			}
		}
		return fmt.Errorf("%s: %w", what, &APIError{Status: er.Response.StatusCode, Message: msg})
	}
	return fmt.Errorf("%s: %w", what, err)
}

// BuildsCache keeps what does not need asking again: the project list for a while, and
// finished pipelines until GitLab says they changed. One per controller; safe for concurrent use.
type BuildsCache struct {
	mu         sync.Mutex
	projects   []*gl.Project
	projectsAt time.Time
	paths      map[int64]string
	done       map[int64]Pipeline
}

// projectsTTL is how long the list of active projects is reused.
const projectsTTL = 15 * time.Second

// maxProjects bounds how many of the most recently active projects are looked into.
const maxProjects = 50

func (c *Client) recentProjects(ctx context.Context, cache *BuildsCache) ([]*gl.Project, error) {
	cache.mu.Lock()
	if cache.projects != nil && time.Since(cache.projectsAt) < projectsTTL {
		p := cache.projects
		cache.mu.Unlock()
		return p, nil
	}
	cache.mu.Unlock()
	list, resp, err := c.api.Projects.ListProjects(&gl.ListProjectsOptions{
		ListOptions: gl.ListOptions{PerPage: maxProjects, Page: 1},
		OrderBy:     gl.Ptr("last_activity_at"), Sort: gl.Ptr("desc"), Simple: gl.Ptr(true),
	}, gl.WithContext(ctx))
	if err != nil {
		return nil, apiErr("list projects", resp, err)
	}
	cache.mu.Lock()
	cache.projects, cache.projectsAt = list, time.Now()
	if cache.paths == nil {
		cache.paths = map[int64]string{}
	}
	for _, p := range list {
		cache.paths[p.ID] = p.PathWithNamespace
	}
	cache.mu.Unlock()
	return list, nil
}

func (c *Client) projectPath(ctx context.Context, cache *BuildsCache, id int64) (string, error) {
	cache.mu.Lock()
	p, ok := cache.paths[id]
	cache.mu.Unlock()
	if ok {
		return p, nil
	}
	proj, resp, err := c.api.Projects.GetProject(id, &gl.GetProjectOptions{}, gl.WithContext(ctx))
	if err != nil {
		return "", apiErr(fmt.Sprintf("project %d", id), resp, err)
	}
	cache.mu.Lock()
	if cache.paths == nil {
		cache.paths = map[int64]string{}
	}
	cache.paths[id] = proj.PathWithNamespace
	cache.mu.Unlock()
	return proj.PathWithNamespace, nil
}

// parallel runs fn for 0..n-1, at most 4 at a time, and returns the first error.
func parallel(n int, fn func(i int) error) error {
	sem := make(chan struct{}, 4)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// RecentPipelines returns the newest pipelines (at most limit) of the most recently active
// projects, newest first, with their stages and jobs.
func (c *Client) RecentPipelines(ctx context.Context, cache *BuildsCache, limit int) ([]Pipeline, error) {
	limit = min(max(limit, 1), 100)
	projects, err := c.recentProjects(ctx, cache)
	if err != nil {
		return nil, err
	}
	lists := make([][]*gl.PipelineInfo, len(projects))
	err = parallel(len(projects), func(i int) error {
		list, resp, err := c.api.Pipelines.ListProjectPipelines(projects[i].ID, &gl.ListProjectPipelinesOptions{
			ListOptions: gl.ListOptions{PerPage: int64(limit), Page: 1},
		}, gl.WithContext(ctx))
		if errors.Is(err, gl.ErrNotFound) {
			return nil // deleted meanwhile
		}
		lists[i] = list
		return apiErr("list pipelines of "+projects[i].PathWithNamespace, resp, err)
	})
	if err != nil {
		return nil, err
	}
	var all []*gl.PipelineInfo
	for _, l := range lists {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID > all[j].ID })
	if len(all) > limit {
		all = all[:limit]
	}
	out := make([]Pipeline, len(all))
	err = parallel(len(all), func(i int) error {
		info := all[i]
		cache.mu.Lock()
		cached, ok := cache.done[info.ID]
		cache.mu.Unlock()
		if ok && sameTime(cached.UpdatedAt, info.UpdatedAt) && cached.Status == info.Status {
			out[i] = cached.clone()
			return nil
		}
		p, err := c.pipeline(ctx, cache, info.ProjectID, info.ID)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		out[i] = p
		return err
	})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(out, func(p Pipeline) bool { return p.ID == 0 }), nil
}

func sameTime(a, b *time.Time) bool {
	return a != nil && b != nil && a.Equal(*b)
}

// Pipeline returns one pipeline with its stages and jobs.
func (c *Client) Pipeline(ctx context.Context, cache *BuildsCache, project, id int64) (Pipeline, error) {
	return c.pipeline(ctx, cache, project, id)
}

func (c *Client) pipeline(ctx context.Context, cache *BuildsCache, project, id int64) (Pipeline, error) {
	gp, resp, err := c.api.Pipelines.GetPipeline(project, id, gl.WithContext(ctx))
	if err != nil {
		return Pipeline{}, apiErr(fmt.Sprintf("pipeline %d", id), resp, err)
	}
	path, err := c.projectPath(ctx, cache, project)
	if err != nil {
		return Pipeline{}, err
	}
	jobs, err := c.pipelineJobs(ctx, project, id)
	if err != nil {
		return Pipeline{}, err
	}
	p := Pipeline{ID: gp.ID, IID: gp.IID, ProjectID: gp.ProjectID, Project: path, Ref: gp.Ref, SHA: gp.SHA, Status: gp.Status,
		Source: string(gp.Source), CreatedAt: gp.CreatedAt, UpdatedAt: gp.UpdatedAt, StartedAt: gp.StartedAt, FinishedAt: gp.FinishedAt,
		Duration: gp.Duration, WebURL: gp.WebURL, Stages: stages(jobs)}
	if gp.User != nil {
		p.User, p.UserName = gp.User.Username, gp.User.Name
	}
	if p.Duration == 0 && p.StartedAt != nil && Active(p.Status) {
		p.Duration = int64(time.Since(*p.StartedAt).Seconds())
	}
	for _, j := range jobs {
		if j.CommitTitle != "" {
			p.CommitTitle = j.CommitTitle
			break
		}
	}
	for i := range p.Stages {
		for k := range p.Stages[i].Jobs {
			p.Stages[i].Jobs[k].ProjectID = project
		}
	}
	if !Active(p.Status) {
		cache.mu.Lock()
		if cache.done == nil {
			cache.done = map[int64]Pipeline{}
		}
		if len(cache.done) > 500 {
			clear(cache.done)
		}
		cache.done[p.ID] = p.clone()
		cache.mu.Unlock()
	}
	return p, nil
}

// pipelineJobs lists every try of every job, following GitLab's pages.
func (c *Client) pipelineJobs(ctx context.Context, project, id int64) ([]Job, error) {
	var out []Job
	opt := &gl.ListJobsOptions{ListOptions: gl.ListOptions{PerPage: 100, Page: 1}, IncludeRetried: gl.Ptr(true)}
	for {
		page, resp, err := c.api.Jobs.ListPipelineJobs(project, id, opt, gl.WithContext(ctx))
		if err != nil {
			return nil, apiErr(fmt.Sprintf("jobs of pipeline %d", id), resp, err)
		}
		for _, j := range page {
			out = append(out, toJob(j))
		}
		if resp == nil || resp.NextPage == 0 {
			return out, nil
		}
		opt.Page = resp.NextPage
	}
}

func toJob(j *gl.Job) Job {
	out := Job{ID: j.ID, PipelineID: j.Pipeline.ID, ProjectID: j.Pipeline.ProjectID, Name: j.Name, Stage: j.Stage, Status: j.Status,
		Tags: j.TagList, AllowFailure: j.AllowFailure, RunnerID: j.Runner.ID, Runner: j.Runner.Description,
		CreatedAt: j.CreatedAt, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt, Duration: j.Duration,
		QueuedDuration: j.QueuedDuration, FailureReason: j.FailureReason, Ref: j.Ref, WebURL: j.WebURL, Tries: 1}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	if j.User != nil {
		out.User = j.User.Username
	}
	if j.Commit != nil {
		out.CommitTitle = j.Commit.Title
	}
	return out
}

// stages groups every try of every job (GitLab lists them in creation order) into stages in
// the order they first appear, keeping the latest try of each job and counting its tries.
func stages(all []Job) []Stage {
	sort.SliceStable(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	var out []Stage
	index := map[string]int{}
	latest := map[[2]string]int{} // (stage, name) -> position in its stage
	for _, j := range all {
		si, ok := index[j.Stage]
		if !ok {
			si = len(out)
			index[j.Stage] = si
			out = append(out, Stage{Name: j.Stage})
		}
		key := [2]string{j.Stage, j.Name}
		if k, ok := latest[key]; ok {
			j.Tries = out[si].Jobs[k].Tries + 1
			out[si].Jobs[k] = j
			continue
		}
		j.Tries = 1
		latest[key] = len(out[si].Jobs)
		out[si].Jobs = append(out[si].Jobs, j)
	}
	for i := range out {
		var st []string
		for _, j := range out[i].Jobs {
			s := j.Status
			if s == "failed" && j.AllowFailure {
				s = "success"
			}
			st = append(st, s)
		}
		out[i].Status = compositeStatus(st)
	}
	return out
}

// compositeStatus sums statuses up as GitLab does for a stage or pipeline.
func compositeStatus(statuses []string) string {
	n := map[string]int{}
	for _, s := range statuses {
		n[s]++
	}
	total := len(statuses)
	done := n["success"] + n["failed"] + n["canceled"]
	active := n["pending"] + n["created"] + n["waiting_for_resource"] + n["preparing"] + n["scheduled"]
	switch {
	case total == 0 || n["skipped"] == total:
		return "skipped"
	case n["manual"]+n["skipped"] == total:
		return "manual"
	case n["running"] > 0 || n["canceling"] > 0:
		return "running"
	case active > 0 && done > 0:
		return "running"
	case n["pending"] > 0:
		return "pending"
	case active > 0:
		return "created"
	case n["failed"] > 0:
		return "failed"
	case n["canceled"] > 0:
		return "canceled"
	}
	return "success"
}

// Job returns one job.
func (c *Client) Job(ctx context.Context, project, id int64) (Job, error) {
	j, resp, err := c.api.Jobs.GetJob(project, id, gl.WithContext(ctx))
	if err != nil {
		return Job{}, apiErr(fmt.Sprintf("job %d", id), resp, err)
	}
	out := toJob(j)
	out.ProjectID = project
	return out, nil
}

// TraceChunk is the part of a job's log past an offset.
type TraceChunk struct {
	Offset int64  // where Data starts in the log
	Data   []byte // the bytes from Offset on (at most the limit asked for)
	Size   int64  // the log's whole size now
	Reset  bool   // the log is shorter than the offset asked for (erased): Data starts at 0
}

// Trace fetches a job's log and returns what lies past offset, at most limit bytes, ending on a
// whole UTF-8 character unless the log ends there.
func (c *Client) Trace(ctx context.Context, project, id, offset int64, limit int) (TraceChunk, error) {
	r, resp, err := c.api.Jobs.GetTraceFile(project, id, gl.WithContext(ctx))
	if err != nil {
		return TraceChunk{}, apiErr(fmt.Sprintf("log of job %d", id), resp, err)
	}
	all, err := io.ReadAll(r)
	if err != nil {
		return TraceChunk{}, err
	}
	ch := TraceChunk{Offset: offset, Size: int64(len(all))}
	if offset < 0 || offset > ch.Size {
		ch.Offset, ch.Reset = 0, true
	}
	data := all[ch.Offset:]
	if limit > 0 && len(data) > limit {
		data = CutAtRune(data[:limit])
	} else if int(ch.Offset)+len(data) == len(all) {
		data = CutAtRune(data)
	}
	ch.Data = data
	return ch, nil
}

// CutAtRune drops an incomplete UTF-8 character at the end of b (a log read while it grows
// may end inside one); the next read starts with it whole.
func CutAtRune(b []byte) []byte {
	for i := 1; i <= utf8.UTFMax-1 && i <= len(b); i++ {
		if utf8.RuneStart(b[len(b)-i]) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			break
		}
	}
	return b
}

// RetryJob starts a new try of a finished job and returns it.
func (c *Client) RetryJob(ctx context.Context, project, id int64) (Job, error) {
	j, resp, err := c.api.Jobs.RetryJob(project, id, gl.WithContext(ctx))
	if err != nil {
		return Job{}, apiErr(fmt.Sprintf("retry job %d", id), resp, err)
	}
	return toJob(j), nil
}

// CancelJob cancels a pending or running job.
func (c *Client) CancelJob(ctx context.Context, project, id int64) (Job, error) {
	j, resp, err := c.api.Jobs.CancelJob(project, id, gl.WithContext(ctx))
	if err != nil {
		return Job{}, apiErr(fmt.Sprintf("cancel job %d", id), resp, err)
	}
	return toJob(j), nil
}

// PlayJob starts a manual job.
func (c *Client) PlayJob(ctx context.Context, project, id int64) (Job, error) {
	j, resp, err := c.api.Jobs.PlayJob(project, id, &gl.PlayJobOptions{}, gl.WithContext(ctx))
	if err != nil {
		return Job{}, apiErr(fmt.Sprintf("play job %d", id), resp, err)
	}
	return toJob(j), nil
}

// RetryPipeline retries a pipeline's failed and canceled jobs; it returns the new status.
func (c *Client) RetryPipeline(ctx context.Context, project, id int64) (string, error) {
	p, resp, err := c.api.Pipelines.RetryPipelineBuild(project, id, gl.WithContext(ctx))
	if err != nil {
		return "", apiErr(fmt.Sprintf("retry pipeline %d", id), resp, err)
	}
	return p.Status, nil
}

// CancelPipeline cancels a pipeline's active jobs; it returns the new status.
func (c *Client) CancelPipeline(ctx context.Context, project, id int64) (string, error) {
	p, resp, err := c.api.Pipelines.CancelPipelineBuild(project, id, gl.WithContext(ctx))
	if err != nil {
		return "", apiErr(fmt.Sprintf("cancel pipeline %d", id), resp, err)
	}
	return p.Status, nil
}

// RunnerStatus is a runner as GitLab sees it.
type RunnerStatus struct {
	ID          int64      `json:"id"`
	Description string     `json:"description"`
	Status      string     `json:"status"` // online, offline, stale, never_contacted
	Online      bool       `json:"online"`
	Paused      bool       `json:"paused"`
	ContactedAt *time.Time `json:"contacted_at,omitempty"`
	Tags        []string   `json:"tags"`
	RunUntagged bool       `json:"run_untagged"`
}

// Runners lists every runner with its tags and last contact.
func (c *Client) Runners(ctx context.Context) ([]RunnerStatus, error) {
	var list []*gl.Runner
	opt := &gl.ListRunnersOptions{ListOptions: gl.ListOptions{PerPage: 100, Page: 1}}
	for {
		page, resp, err := c.api.Runners.ListAllRunners(opt, gl.WithContext(ctx))
		if err != nil {
			return nil, apiErr("list runners", resp, err)
		}
		list = append(list, page...)
		if resp == nil || resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	out := make([]RunnerStatus, len(list))
	err := parallel(len(list), func(i int) error {
		d, resp, err := c.api.Runners.GetRunnerDetails(list[i].ID, gl.WithContext(ctx))
		if errors.Is(err, gl.ErrNotFound) {
			return nil
		}
		if err != nil {
			return apiErr("runner "+strconv.FormatInt(list[i].ID, 10), resp, err)
		}
		tags := d.TagList
		if tags == nil {
			tags = []string{}
		}
		out[i] = RunnerStatus{ID: d.ID, Description: d.Description, Status: d.Status, Online: d.Online || d.Status == "online",
			Paused: d.Paused, ContactedAt: d.ContactedAt, Tags: tags, RunUntagged: d.RunUntagged}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out = slices.DeleteFunc(out, func(r RunnerStatus) bool { return r.ID == 0 })
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Why a pending job is stuck.
const (
	StuckNoRunnerWithTags = "no_runner_with_tags" // no runner has all of the job's tags
	StuckNoUntaggedRunner = "no_untagged_runner"  // the job has no tags and no runner runs untagged jobs
	StuckRunnersOffline   = "runners_offline"     // runners could take it, but none is online
)

// Stuck says why a job waits for a runner that will not come.
type Stuck struct {
	Reason  string   `json:"reason"`
	Tags    []string `json:"tags"`              // the job's tags
	Offline []string `json:"offline,omitempty"` // matching runners that are offline
	Hint    string   `json:"hint"`              // what to do, in words
}

// CanRun says whether runner r may take a job with these tags (GitLab's matching: the runner
// has all of the job's tags; an untagged job needs run_untagged).
func CanRun(r RunnerStatus, tags []string) bool {
	if r.Paused {
		return false
	}
	for _, t := range tags {
		if !slices.Contains(r.Tags, t) {
			return false
		}
	}
	return len(tags) > 0 || r.RunUntagged
}

// StuckReason is nil unless j is pending and no online runner can take it.
func StuckReason(j Job, runners []RunnerStatus) *Stuck {
	if j.Status != "pending" {
		return nil
	}
	var offline []string
	for _, r := range runners {
		if !CanRun(r, j.Tags) {
			continue
		}
		if r.Online {
			return nil
		}
		offline = append(offline, r.Description)
	}
	s := &Stuck{Tags: append([]string{}, j.Tags...), Offline: offline}
	switch {
	case len(offline) > 0:
		s.Reason = StuckRunnersOffline
	case len(j.Tags) == 0:
		s.Reason = StuckNoUntaggedRunner
	default:
		s.Reason = StuckNoRunnerWithTags
	}
	s.Hint = s.hint()
	return s
}

// MarkStuck sets Stuck on every job of the pipelines that no online runner will take.
func MarkStuck(pipelines []Pipeline, runners []RunnerStatus) {
	for i := range pipelines {
		for k := range pipelines[i].Stages {
			for n := range pipelines[i].Stages[k].Jobs {
				j := &pipelines[i].Stages[k].Jobs[n]
				j.Stuck = StuckReason(*j, runners)
			}
		}
	}
}

// hint says in words what to do about a stuck job.
func (s *Stuck) hint() string {
	switch s.Reason {
	case StuckRunnersOffline:
		return "runners with these tags exist but none is online (" + strings.Join(s.Offline, ", ") + "): check the runner container"
	case StuckNoUntaggedRunner:
		return "the job has no tags and no runner takes untagged jobs: enable run_untagged on a runner profile"
	}
	return "no runner has the tags " + strings.Join(s.Tags, ", ") + ": add a runner profile with these tags"
}
