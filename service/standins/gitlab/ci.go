package main

// CI in the stand-in: projects, pipelines, jobs and job logs (traces), kept in PostgreSQL like
// the rest of its state, served with the API shapes client-go reads (this file) and the job
// protocol GitLab Runner speaks (ci_runner.go). It is not GitLab's CI: there is no
// .gitlab-ci.yml, no git, no rules, needs, artifacts, caches, services, environments or
// schedules. A pipeline is made from a small JSON spec through the stand-in-only endpoint
// POST /api/v4/standin/pipelines, so tests can start builds without a push.

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// ciSchema is created on first use, under the same advisory lock as the rest of the schema.
const ciSchema = `
CREATE TABLE IF NOT EXISTS standin_projects (
	id               bigserial PRIMARY KEY,
	path             text NOT NULL UNIQUE,
	created_at       timestamptz NOT NULL DEFAULT now(),
	last_activity_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS standin_pipelines (
	id           bigserial PRIMARY KEY,
	iid          bigint NOT NULL,
	project_id   bigint NOT NULL REFERENCES standin_projects(id),
	status       text NOT NULL,
	source       text NOT NULL,
	ref          text NOT NULL,
	sha          text NOT NULL,
	commit_title text NOT NULL,
	user_id      bigint NOT NULL,
	created_at   timestamptz NOT NULL DEFAULT now(),
	updated_at   timestamptz NOT NULL DEFAULT now(),
	started_at   timestamptz,
	finished_at  timestamptz
);
CREATE TABLE IF NOT EXISTS standin_jobs (
	id             bigserial PRIMARY KEY,
	pipeline_id    bigint NOT NULL REFERENCES standin_pipelines(id),
	project_id     bigint NOT NULL REFERENCES standin_projects(id),
	name           text NOT NULL,
	stage          text NOT NULL,
	stage_idx      int NOT NULL,
	status         text NOT NULL,
	job_when       text NOT NULL,
	allow_failure  boolean NOT NULL,
	tag_list       text[] NOT NULL DEFAULT '{}',
	image          text NOT NULL DEFAULT '',
	script         text[] NOT NULL,
	timeout_s      int NOT NULL,
	retried        boolean NOT NULL DEFAULT false,
	runner_id      bigint,
	token_digest   text,
	user_id        bigint NOT NULL,
	created_at     timestamptz NOT NULL DEFAULT now(),
	queued_at      timestamptz,
	started_at     timestamptz,
	finished_at    timestamptz,
	failure_reason text NOT NULL DEFAULT '',
	exit_code      int,
	trace          bytea NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS standin_jobs_pending ON standin_jobs (id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS standin_jobs_pipeline ON standin_jobs (pipeline_id);
CREATE TABLE IF NOT EXISTS standin_groups (
	id         bigserial PRIMARY KEY,
	full_path  text NOT NULL UNIQUE,
	parent_id  bigint REFERENCES standin_groups(id),
	created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE standin_projects ADD COLUMN IF NOT EXISTS namespace_id bigint REFERENCES standin_groups(id);`

var ciSchemaState struct {
	mu   sync.Mutex
	done bool
}

// ciSchemaReady creates the CI tables once per process.
func (s *server) ciSchemaReady(ctx context.Context) error {
	ciSchemaState.mu.Lock()
	defer ciSchemaState.mu.Unlock()
	if ciSchemaState.done {
		return nil
	}
	err := s.db.with(ctx, func(c *pgx.Conn) error {
		tx, err := c.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7245031)`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, ciSchema); err != nil {
			return fmt.Errorf("create CI tables: %w", err)
		}
		return tx.Commit(ctx)
	})
	if err == nil {
		ciSchemaState.done = true
	}
	return err
}

// ciRoutes adds the CI endpoints to the API mux (hooked in from routes in server.go).
func (s *server) ciRoutes(api *http.ServeMux) {
	h := func(fn http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if err := s.ciSchemaReady(r.Context()); err != nil {
				s.internalError(w, "CI schema", err)
				return
			}
			fn(w, r)
		}
	}
	api.HandleFunc("GET /api/v4/projects", h(s.handleListProjects))
	api.HandleFunc("GET /api/v4/projects/{id}", h(s.handleGetProject))
	api.HandleFunc("GET /api/v4/projects/{id}/pipelines", h(s.handleListPipelines))
	api.HandleFunc("GET /api/v4/projects/{id}/pipelines/{pid}", h(s.handleGetPipeline))
	api.HandleFunc("GET /api/v4/projects/{id}/pipelines/{pid}/jobs", h(s.handlePipelineJobs))
	api.HandleFunc("POST /api/v4/projects/{id}/pipelines/{pid}/retry", h(s.handlePipelineAction("retry")))
	api.HandleFunc("POST /api/v4/projects/{id}/pipelines/{pid}/cancel", h(s.handlePipelineAction("cancel")))
	api.HandleFunc("GET /api/v4/projects/{id}/jobs/{job}", h(s.handleGetJob))
	api.HandleFunc("GET /api/v4/projects/{id}/jobs/{job}/trace", h(s.handleJobTrace))
	api.HandleFunc("POST /api/v4/projects/{id}/jobs/{job}/retry", h(s.handleJobAction("retry")))
	api.HandleFunc("POST /api/v4/projects/{id}/jobs/{job}/cancel", h(s.handleJobAction("cancel")))
	api.HandleFunc("POST /api/v4/projects/{id}/jobs/{job}/play", h(s.handleJobAction("play")))
	api.HandleFunc("POST /api/v4/standin/pipelines", h(s.handleStandinPipeline))
	api.HandleFunc("GET /api/v4/groups/{id}", h(s.handleGetGroup))
	// The runner's side (ci_runner.go).
	api.HandleFunc("POST /api/v4/jobs/request", h(s.handleJobRequest))
	api.HandleFunc("PUT /api/v4/jobs/{job}", h(s.handleUpdateJob))
	api.HandleFunc("PATCH /api/v4/jobs/{job}/trace", h(s.handlePatchTrace))
}

// Job statuses, as GitLab names them.
const (
	stCreated  = "created"
	stPending  = "pending"
	stRunning  = "running"
	stSuccess  = "success"
	stFailed   = "failed"
	stCanceled = "canceled"
	stSkipped  = "skipped"
	stManual   = "manual"
)

func finished(status string) bool {
	switch status {
	case stSuccess, stFailed, stCanceled, stSkipped:
		return true
	}
	return false
}

// ciJob is one row of standin_jobs, with what the API shows of its pipeline and project.
type ciJob struct {
	ID, PipelineID, ProjectID int64
	Name, Stage               string
	StageIdx                  int
	Status, When              string
	AllowFailure              bool
	Tags                      []string
	Image                     string
	Script                    []string
	TimeoutS                  int
	Retried                   bool
	RunnerID                  *int64
	TokenDigest               *string
	CreatedAt                 time.Time
	QueuedAt                  *time.Time
	StartedAt                 *time.Time
	FinishedAt                *time.Time
	FailureReason             string
	ExitCode                  *int
	TraceLen                  int64

	// joined
	ProjectPath                string
	Ref, SHA, CommitTitle      string
	PipelineIID                int64
	PipelineStatus, Source     string
	PipelineCreated, PipelineU time.Time
}

const ciJobColumns = `j.id, j.pipeline_id, j.project_id, j.name, j.stage, j.stage_idx, j.status, j.job_when,
	j.allow_failure, j.tag_list, j.image, j.script, j.timeout_s, j.retried, j.runner_id, j.token_digest,
	j.created_at, j.queued_at, j.started_at, j.finished_at, j.failure_reason, j.exit_code, length(j.trace),
	pr.path, p.ref, p.sha, p.commit_title, p.iid, p.status, p.source, p.created_at, p.updated_at`

const ciJobFrom = ` FROM standin_jobs j JOIN standin_pipelines p ON p.id = j.pipeline_id JOIN standin_projects pr ON pr.id = j.project_id`

func scanJob(row pgx.Row) (ciJob, error) {
	var j ciJob
	err := row.Scan(&j.ID, &j.PipelineID, &j.ProjectID, &j.Name, &j.Stage, &j.StageIdx, &j.Status, &j.When,
		&j.AllowFailure, &j.Tags, &j.Image, &j.Script, &j.TimeoutS, &j.Retried, &j.RunnerID, &j.TokenDigest,
		&j.CreatedAt, &j.QueuedAt, &j.StartedAt, &j.FinishedAt, &j.FailureReason, &j.ExitCode, &j.TraceLen,
		&j.ProjectPath, &j.Ref, &j.SHA, &j.CommitTitle, &j.PipelineIID, &j.PipelineStatus, &j.Source,
		&j.PipelineCreated, &j.PipelineU)
	return j, err
}

// ciPipeline is one row of standin_pipelines with its project's path.
type ciPipeline struct {
	ID, IID, ProjectID    int64
	Status, Source        string
	Ref, SHA, CommitTitle string
	UserID                int64
	CreatedAt, UpdatedAt  time.Time
	StartedAt, FinishedAt *time.Time
	ProjectPath           string
}

const ciPipelineColumns = `p.id, p.iid, p.project_id, p.status, p.source, p.ref, p.sha, p.commit_title, p.user_id,
	p.created_at, p.updated_at, p.started_at, p.finished_at, pr.path`

func scanPipeline(row pgx.Row) (ciPipeline, error) {
	var p ciPipeline
	err := row.Scan(&p.ID, &p.IID, &p.ProjectID, &p.Status, &p.Source, &p.Ref, &p.SHA, &p.CommitTitle, &p.UserID,
		&p.CreatedAt, &p.UpdatedAt, &p.StartedAt, &p.FinishedAt, &p.ProjectPath)
	return p, err
}

func rfc(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func rfcPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return rfc(*t)
}

// rootUser is the user every stand-in pipeline runs as (the stand-in has only root).
func (s *server) rootUserJSON() map[string]any {
	return map[string]any{"id": 1, "username": "root", "name": "Administrator", "state": "active", "locked": false,
		"avatar_url": nil, "web_url": s.cfg.ExternalURL() + "/root"}
}

func (s *server) projectWebURL(path string) string { return s.cfg.ExternalURL() + "/" + path }

// duration is finished (or now) minus started, in seconds; nil before the start.
func duration(started, finished *time.Time) any {
	if started == nil {
		return nil
	}
	end := time.Now()
	if finished != nil {
		end = *finished
	}
	return end.Sub(*started).Seconds()
}

func (s *server) commitJSON(j ciJob) map[string]any {
	return map[string]any{"id": j.SHA, "short_id": j.SHA[:8], "created_at": rfc(j.PipelineCreated), "parent_ids": []string{},
		"title": j.CommitTitle, "message": j.CommitTitle + "\n", "author_name": "Administrator", "author_email": "admin@example.com",
		"authored_date": rfc(j.PipelineCreated), "committer_name": "Administrator", "committer_email": "admin@example.com",
		"committed_date": rfc(j.PipelineCreated), "trailers": map[string]any{}, "extended_trailers": map[string]any{},
		"web_url": s.projectWebURL(j.ProjectPath) + "/-/commit/" + j.SHA}
}

// jobJSON is Entities::Ci::Job.
func (s *server) jobJSON(j ciJob, runners map[int64]runner) map[string]any {
	var queued any
	if j.QueuedAt != nil {
		end := time.Now()
		if j.StartedAt != nil {
			end = *j.StartedAt
		} else if j.FinishedAt != nil {
			end = *j.FinishedAt
		}
		queued = end.Sub(*j.QueuedAt).Seconds()
	}
	var run any
	if j.RunnerID != nil {
		if r, ok := runners[*j.RunnerID]; ok {
			st := r.status(time.Now())
			run = map[string]any{"id": r.ID, "description": r.Description, "ip_address": "", "active": !r.Paused, "paused": r.Paused,
				"is_shared": r.RunnerType == "instance_type", "runner_type": r.RunnerType, "name": "gitlab-runner", "online": st == "online", "status": st}
		}
	}
	var fr any
	if j.FailureReason != "" {
		fr = j.FailureReason
	}
	tags := j.Tags
	if tags == nil {
		tags = []string{}
	}
	return map[string]any{
		"id": j.ID, "status": j.Status, "stage": j.Stage, "name": j.Name, "ref": j.Ref, "tag": false, "coverage": nil,
		"allow_failure": j.AllowFailure, "created_at": rfc(j.CreatedAt), "started_at": rfcPtr(j.StartedAt),
		"finished_at": rfcPtr(j.FinishedAt), "erased_at": nil, "duration": duration(j.StartedAt, j.FinishedAt),
		"queued_duration": queued, "user": s.rootUserJSON(), "commit": s.commitJSON(j),
		"pipeline": map[string]any{"id": j.PipelineID, "iid": j.PipelineIID, "project_id": j.ProjectID, "sha": j.SHA, "ref": j.Ref,
			"status": j.PipelineStatus, "source": j.Source, "created_at": rfc(j.PipelineCreated), "updated_at": rfc(j.PipelineU),
			"web_url": s.projectWebURL(j.ProjectPath) + "/-/pipelines/" + strconv.FormatInt(j.PipelineID, 10)},
		"failure_reason": fr, "web_url": s.projectWebURL(j.ProjectPath) + "/-/jobs/" + strconv.FormatInt(j.ID, 10),
		"project": map[string]any{"ci_job_token_scope_enabled": false}, "artifacts": []any{}, "runner": run,
		"runner_manager": nil, "artifacts_expire_at": nil, "archived": false, "tag_list": tags,
	}
}

var statusIcons = map[string][2]string{
	stCreated: {"status_created", "created"}, stPending: {"status_pending", "pending"}, stRunning: {"status_running", "running"},
	stSuccess: {"status_success", "passed"}, stFailed: {"status_failed", "failed"}, stCanceled: {"status_canceled", "canceled"},
	stSkipped: {"status_skipped", "skipped"}, stManual: {"status_manual", "manual action"},
}

func (s *server) pipelineBasicJSON(p ciPipeline) map[string]any {
	return map[string]any{"id": p.ID, "iid": p.IID, "project_id": p.ProjectID, "sha": p.SHA, "ref": p.Ref, "status": p.Status,
		"source": p.Source, "created_at": rfc(p.CreatedAt), "updated_at": rfc(p.UpdatedAt), "name": nil,
		"web_url": s.projectWebURL(p.ProjectPath) + "/-/pipelines/" + strconv.FormatInt(p.ID, 10)}
}

// pipelineJSON is Entities::Ci::PipelineWithMetadata (GET one pipeline).
func (s *server) pipelineJSON(p ciPipeline) map[string]any {
	m := s.pipelineBasicJSON(p)
	icon := statusIcons[p.Status]
	var dur any
	if d := duration(p.StartedAt, p.FinishedAt); d != nil {
		dur = int64(d.(float64))
	}
	var queued any
	if p.StartedAt != nil {
		queued = int64(p.StartedAt.Sub(p.CreatedAt).Seconds())
	}
	m["before_sha"] = strings.Repeat("0", 40)
	m["tag"] = false
	m["yaml_errors"] = nil
	m["user"] = s.rootUserJSON()
	m["started_at"] = rfcPtr(p.StartedAt)
	m["finished_at"] = rfcPtr(p.FinishedAt)
	m["committed_at"] = nil
	m["duration"] = dur
	m["queued_duration"] = queued
	m["coverage"] = nil
	m["detailed_status"] = map[string]any{"icon": icon[0], "text": p.Status, "label": icon[1], "group": p.Status, "tooltip": icon[1],
		"has_details": true, "details_path": "/" + p.ProjectPath + "/-/pipelines/" + strconv.FormatInt(p.ID, 10),
		"illustration": nil, "favicon": "/assets/ci_favicons/favicon_" + icon[0] + ".png"}
	return m
}

func (s *server) projectJSON(id int64, path string, created, activity time.Time) map[string]any {
	ns, name := path[:strings.LastIndex(path, "/")], path[strings.LastIndex(path, "/")+1:] // a subgroup's project: "team/sub", "app"
	nsName := ns
	kind := "group"
	if ns == "root" {
		nsName, kind = "Administrator", "user"
	}
	web := s.projectWebURL(path)
	host := s.cfg.ExternalURL()
	hostOnly := strings.TrimPrefix(strings.TrimPrefix(host, "http://"), "https://")
	return map[string]any{
		"id": id, "description": nil, "name": name, "name_with_namespace": nsName + " / " + name, "path": name,
		"path_with_namespace": path, "created_at": rfc(created), "default_branch": "main", "tag_list": []string{}, "topics": []string{},
		"ssh_url_to_repo": "git@" + hostOnly + ":" + path + ".git", "http_url_to_repo": web + ".git", "web_url": web,
		"readme_url": nil, "avatar_url": nil, "forks_count": 0, "star_count": 0, "last_activity_at": rfc(activity),
		"namespace": map[string]any{"id": 1, "name": nsName, "path": ns, "kind": kind, "full_path": ns, "parent_id": nil,
			"avatar_url": nil, "web_url": host + "/" + ns},
	}
}

// page is the pagination GitLab applies (20 per page by default, at most 100), with its headers.
func page(w http.ResponseWriter, p params, total int) (lo, hi int, err error) {
	pg, per := int64(1), int64(20)
	if v, err := p.integer("page"); err != nil {
		return 0, 0, err
	} else if v != nil && *v > 0 {
		pg = *v
	}
	if v, err := p.integer("per_page"); err != nil {
		return 0, 0, err
	} else if v != nil && *v > 0 {
		per = min(*v, 100)
	}
	t := int64(total)
	pages := max((t+per-1)/per, 1)
	h := w.Header()
	h.Set("X-Page", strconv.FormatInt(pg, 10))
	h.Set("X-Per-Page", strconv.FormatInt(per, 10))
	h.Set("X-Total", strconv.FormatInt(t, 10))
	h.Set("X-Total-Pages", strconv.FormatInt(pages, 10))
	h.Set("X-Next-Page", "")
	if pg < pages {
		h.Set("X-Next-Page", strconv.FormatInt(pg+1, 10))
	}
	h.Set("X-Prev-Page", "")
	if pg > 1 {
		h.Set("X-Prev-Page", strconv.FormatInt(pg-1, 10))
	}
	return int(min((pg-1)*per, t)), int(min(pg*per, t)), nil
}

// projectID resolves :id, a number or a URL-encoded path ("root%2Fdemo").
func (s *server) projectID(ctx context.Context, raw string) (int64, error) {
	if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
		var id int64
		err := s.db.with(ctx, func(c *pgx.Conn) error {
			return c.QueryRow(ctx, `SELECT id FROM standin_projects WHERE id = $1`, n).Scan(&id)
		})
		return id, err
	}
	var id int64
	err := s.db.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT id FROM standin_projects WHERE path = $1`, raw).Scan(&id)
	})
	return id, err
}

// resolve authenticates an admin call on a project and finds the project; it answers the
// errors itself.
func (s *server) resolveProject(w http.ResponseWriter, r *http.Request, write bool) (int64, bool) {
	scopes := []string{"api", "read_api"}
	if write {
		scopes = []string{"api"}
	}
	if _, ok := s.authAs(w, r, false, scopes...); !ok {
		return 0, false
	}
	id, err := s.projectID(r.Context(), r.PathValue("id"))
	if errors.Is(err, pgx.ErrNoRows) {
		apiMessage(w, http.StatusNotFound, "404 Project Not Found")
		return 0, false
	}
	if err != nil {
		s.internalError(w, "find project", err)
		return 0, false
	}
	return id, true
}

func pathInt(r *http.Request, name string) (int64, bool) {
	n, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	return n, err == nil && n > 0
}

// handleListProjects is GET /api/v4/projects: as root (an admin) every project.
func (s *server) handleListProjects(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authAs(w, r, false, "api", "read_api"); !ok {
		return
	}
	p, err := readParams(r)
	if err != nil {
		apiParamError(w, err)
		return
	}
	orderBy, err := p.oneOf("order_by", "id", "name", "path", "created_at", "updated_at", "last_activity_at")
	if err != nil {
		apiParamError(w, err)
		return
	}
	sort, err := p.oneOf("sort", "asc", "desc")
	if err != nil {
		apiParamError(w, err)
		return
	}
	col := map[string]string{"": "created_at", "id": "id", "name": "path", "path": "path", "created_at": "created_at",
		"updated_at": "last_activity_at", "last_activity_at": "last_activity_at"}[orderBy]
	dir := "DESC"
	if sort == "asc" {
		dir = "ASC"
	}
	type proj struct {
		id                 int64
		path               string
		created, lastActiv time.Time
	}
	var all []proj
	err = s.db.with(r.Context(), func(c *pgx.Conn) error {
		rows, err := c.Query(r.Context(), `SELECT id, path, created_at, last_activity_at FROM standin_projects ORDER BY `+col+` `+dir+`, id `+dir)
		if err != nil {
			return err
		}
		all, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (proj, error) {
			var x proj
			return x, row.Scan(&x.id, &x.path, &x.created, &x.lastActiv)
		})
		return err
	})
	if err != nil {
		s.internalError(w, "list projects", err)
		return
	}
	lo, hi, err := page(w, p, len(all))
	if err != nil {
		apiParamError(w, err)
		return
	}
	out := []map[string]any{}
	for _, x := range all[lo:hi] {
		out = append(out, s.projectJSON(x.id, x.path, x.created, x.lastActiv))
	}
	writeJSON(w, http.StatusOK, out)
}

// handleGetProject is GET /api/v4/projects/:id.
func (s *server) handleGetProject(w http.ResponseWriter, r *http.Request) {
	id, ok := s.resolveProject(w, r, false)
	if !ok {
		return
	}
	var (
		path              string
		created, activity time.Time
	)
	err := s.db.with(r.Context(), func(c *pgx.Conn) error {
		return c.QueryRow(r.Context(), `SELECT path, created_at, last_activity_at FROM standin_projects WHERE id = $1`, id).Scan(&path, &created, &activity)
	})
	if err != nil {
		s.internalError(w, "load project", err)
		return
	}
	writeJSON(w, http.StatusOK, s.projectJSON(id, path, created, activity))
}

// handleListPipelines is GET /api/v4/projects/:id/pipelines (PipelineBasic, newest first).
func (s *server) handleListPipelines(w http.ResponseWriter, r *http.Request) {
	pid, ok := s.resolveProject(w, r, false)
	if !ok {
		return
	}
	p, err := readParams(r)
	if err != nil {
		apiParamError(w, err)
		return
	}
	status, err := p.oneOf("status", stCreated, stPending, stRunning, stSuccess, stFailed, stCanceled, stSkipped, stManual,
		"waiting_for_resource", "preparing", "scheduled")
	if err != nil {
		apiParamError(w, err)
		return
	}
	scope, err := p.oneOf("scope", "running", "pending", "finished", "branches", "tags")
	if err != nil {
		apiParamError(w, err)
		return
	}
	ref, _ := p.str("ref")
	sort, err := p.oneOf("sort", "asc", "desc")
	if err != nil {
		apiParamError(w, err)
		return
	}
	var list []ciPipeline
	err = s.db.with(r.Context(), func(c *pgx.Conn) error {
		dir := "DESC"
		if sort == "asc" {
			dir = "ASC"
		}
		rows, err := c.Query(r.Context(), `SELECT `+ciPipelineColumns+` FROM standin_pipelines p JOIN standin_projects pr ON pr.id = p.project_id
			WHERE p.project_id = $1 ORDER BY p.id `+dir, pid)
		if err != nil {
			return err
		}
		list, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ciPipeline, error) { return scanPipeline(row) })
		return err
	})
	if err != nil {
		s.internalError(w, "list pipelines", err)
		return
	}
	var match []ciPipeline
	for _, x := range list {
		switch {
		case status != "" && x.Status != status,
			ref != "" && x.Ref != ref,
			scope == "running" && x.Status != stRunning,
			scope == "pending" && x.Status != stPending,
			scope == "finished" && !finished(x.Status),
			scope == "tags":
			continue
		}
		match = append(match, x)
	}
	lo, hi, err := page(w, p, len(match))
	if err != nil {
		apiParamError(w, err)
		return
	}
	out := []map[string]any{}
	for _, x := range match[lo:hi] {
		out = append(out, s.pipelineBasicJSON(x))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) loadPipeline(ctx context.Context, project, id int64) (ciPipeline, error) {
	var p ciPipeline
	err := s.db.with(ctx, func(c *pgx.Conn) error {
		var err error
		p, err = scanPipeline(c.QueryRow(ctx, `SELECT `+ciPipelineColumns+` FROM standin_pipelines p
			JOIN standin_projects pr ON pr.id = p.project_id WHERE p.id = $1 AND p.project_id = $2`, id, project))
		return err
	})
	return p, err
}

func (s *server) handleGetPipeline(w http.ResponseWriter, r *http.Request) {
	project, ok := s.resolveProject(w, r, false)
	if !ok {
		return
	}
	id, _ := pathInt(r, "pid")
	p, err := s.loadPipeline(r.Context(), project, id)
	if errors.Is(err, pgx.ErrNoRows) {
		apiMessage(w, http.StatusNotFound, "404 Not found")
		return
	}
	if err != nil {
		s.internalError(w, "load pipeline", err)
		return
	}
	writeJSON(w, http.StatusOK, s.pipelineJSON(p))
}

func (s *server) runnersByID(ctx context.Context) (map[int64]runner, error) {
	out := map[int64]runner{}
	err := s.db.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT `+runnerColumns+` FROM standin_runners`)
		if err != nil {
			return err
		}
		list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (runner, error) { return scanRunner(row) })
		for _, r := range list {
			out[r.ID] = r
		}
		return err
	})
	return out, err
}

// handlePipelineJobs is GET /api/v4/projects/:id/pipelines/:pid/jobs: in creation order (so in
// stage order), the latest try of each job unless include_retried=true; scope[] filters by status.
func (s *server) handlePipelineJobs(w http.ResponseWriter, r *http.Request) {
	project, ok := s.resolveProject(w, r, false)
	if !ok {
		return
	}
	id, _ := pathInt(r, "pid")
	if _, err := s.loadPipeline(r.Context(), project, id); errors.Is(err, pgx.ErrNoRows) {
		apiMessage(w, http.StatusNotFound, "404 Not found")
		return
	} else if err != nil {
		s.internalError(w, "load pipeline", err)
		return
	}
	p, err := readParams(r)
	if err != nil {
		apiParamError(w, err)
		return
	}
	retried, err := p.boolean("include_retried", false)
	if err != nil {
		apiParamError(w, err)
		return
	}
	scope, err := p.strList("scope")
	if err != nil {
		apiParamError(w, err)
		return
	}
	if s, ok := p["scope"].(string); ok && s != "" && scope == nil {
		scope = []string{s}
	}
	for _, sc := range scope {
		if !slices.Contains([]string{stCreated, stPending, stRunning, stSuccess, stFailed, stCanceled, stSkipped, stManual, "waiting_for_resource", "preparing", "scheduled"}, sc) {
			writeJSON(w, http.StatusBadRequest, map[string]any{"message": "400 Bad request - Scope contains invalid value(s)"})
			return
		}
	}
	jobs, err := s.pipelineJobs(r.Context(), id, retried)
	if err != nil {
		s.internalError(w, "list jobs", err)
		return
	}
	runners, err := s.runnersByID(r.Context())
	if err != nil {
		s.internalError(w, "list runners", err)
		return
	}
	var match []ciJob
	for _, j := range jobs {
		if len(scope) == 0 || slices.Contains(scope, j.Status) {
			match = append(match, j)
		}
	}
	lo, hi, err := page(w, p, len(match))
	if err != nil {
		apiParamError(w, err)
		return
	}
	out := []map[string]any{}
	for _, j := range match[lo:hi] {
		out = append(out, s.jobJSON(j, runners))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) pipelineJobs(ctx context.Context, pipeline int64, withRetried bool) ([]ciJob, error) {
	var out []ciJob
	err := s.db.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT `+ciJobColumns+ciJobFrom+` WHERE j.pipeline_id = $1 AND ($2 OR NOT j.retried) ORDER BY j.id`, pipeline, withRetried)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ciJob, error) { return scanJob(row) })
		return err
	})
	return out, err
}

func (s *server) loadJob(ctx context.Context, project, id int64) (ciJob, error) {
	var j ciJob
	err := s.db.with(ctx, func(c *pgx.Conn) error {
		var err error
		j, err = scanJob(c.QueryRow(ctx, `SELECT `+ciJobColumns+ciJobFrom+` WHERE j.id = $1 AND ($2 = 0 OR j.project_id = $2)`, id, project))
		return err
	})
	return j, err
}

// findJob answers 404 itself.
func (s *server) findJob(w http.ResponseWriter, r *http.Request, project int64) (ciJob, bool) {
	id, _ := pathInt(r, "job")
	j, err := s.loadJob(r.Context(), project, id)
	if errors.Is(err, pgx.ErrNoRows) {
		apiMessage(w, http.StatusNotFound, "404 Job Not Found")
		return j, false
	}
	if err != nil {
		s.internalError(w, "load job", err)
		return j, false
	}
	return j, true
}

func (s *server) writeJob(w http.ResponseWriter, r *http.Request, status int, j ciJob) {
	runners, err := s.runnersByID(r.Context())
	if err != nil {
		s.internalError(w, "list runners", err)
		return
	}
	writeJSON(w, status, s.jobJSON(j, runners))
}

func (s *server) handleGetJob(w http.ResponseWriter, r *http.Request) {
	project, ok := s.resolveProject(w, r, false)
	if !ok {
		return
	}
	if j, ok := s.findJob(w, r, project); ok {
		s.writeJob(w, r, http.StatusOK, j)
	}
}

// handleJobTrace is GET /api/v4/projects/:id/jobs/:job_id/trace: the whole log as it is now,
// text/plain, as GitLab's API serves it (no Range support: clients follow a running job by
// fetching again and reading past what they already have).
func (s *server) handleJobTrace(w http.ResponseWriter, r *http.Request) {
	project, ok := s.resolveProject(w, r, false)
	if !ok {
		return
	}
	j, ok := s.findJob(w, r, project)
	if !ok {
		return
	}
	var trace []byte
	err := s.db.with(r.Context(), func(c *pgx.Conn) error {
		return c.QueryRow(r.Context(), `SELECT trace FROM standin_jobs WHERE id = $1`, j.ID).Scan(&trace)
	})
	if err != nil {
		s.internalError(w, "read trace", err)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`infile; filename="%d.log"`, j.ID))
	w.WriteHeader(http.StatusOK)
	w.Write(trace)
}

// inTx runs fn in a transaction that holds the pipeline's row lock, then re-processes the
// pipeline (stages, status) before committing.
func (s *server) inTx(ctx context.Context, pipeline int64, fn func(tx pgx.Tx) error) error {
	return s.db.with(ctx, func(c *pgx.Conn) error {
		tx, err := c.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `SELECT 1 FROM standin_pipelines WHERE id = $1 FOR UPDATE`, pipeline); err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		if err := processPipeline(ctx, tx, pipeline); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
}

// errRefused is an action GitLab refuses, with its status and body.
type errRefused struct {
	status int
	msg    string
}

func (e *errRefused) Error() string { return e.msg }

// retryJob makes a new try of job id (GitLab's Ci::Build.retry): a copy in status created,
// the old one marked retried, and jobs skipped in later stages back to created.
func retryJob(ctx context.Context, tx pgx.Tx, id int64) (int64, error) {
	var newID int64
	err := tx.QueryRow(ctx, `INSERT INTO standin_jobs (pipeline_id, project_id, name, stage, stage_idx, status, job_when,
			allow_failure, tag_list, image, script, timeout_s, user_id)
		SELECT pipeline_id, project_id, name, stage, stage_idx, 'created', job_when, allow_failure, tag_list, image, script, timeout_s, user_id
		FROM standin_jobs WHERE id = $1 RETURNING id`, id).Scan(&newID)
	if err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `UPDATE standin_jobs SET retried = true WHERE id = $1`, id); err != nil {
		return 0, err
	}
	_, err = tx.Exec(ctx, `UPDATE standin_jobs SET status = 'created', finished_at = NULL
		WHERE pipeline_id = (SELECT pipeline_id FROM standin_jobs WHERE id = $1) AND NOT retried AND status = 'skipped'
		  AND stage_idx > (SELECT stage_idx FROM standin_jobs WHERE id = $1)`, id)
	return newID, err
}

func cancelJobs(ctx context.Context, tx pgx.Tx, where string, arg int64) error {
	_, err := tx.Exec(ctx, `UPDATE standin_jobs SET status = 'canceled', finished_at = now()
		WHERE `+where+` AND NOT retried AND status IN ('created', 'pending', 'running')`, arg)
	return err
}

// handleJobAction is POST .../jobs/:job_id/{retry,cancel,play}, answered as GitLab does:
// retry 201 with the new job or 403 "Job is not retryable"; cancel 201, or 422 for a job that is
// not active (Ci::BuildCancelService); play 200, or 400 "Unplayable Job".
func (s *server) handleJobAction(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		project, ok := s.resolveProject(w, r, true)
		if !ok {
			return
		}
		j, ok := s.findJob(w, r, project)
		if !ok {
			return
		}
		resultID, status := j.ID, http.StatusCreated
		err := s.inTx(r.Context(), j.PipelineID, func(tx pgx.Tx) error {
			var cur string
			var retried bool
			if err := tx.QueryRow(r.Context(), `SELECT status, retried FROM standin_jobs WHERE id = $1`, j.ID).Scan(&cur, &retried); err != nil {
				return err
			}
			switch action {
			case "retry":
				if retried || (cur != stSuccess && cur != stFailed && cur != stCanceled) {
					return &errRefused{http.StatusForbidden, "403 Forbidden - Job is not retryable"}
				}
				id, err := retryJob(r.Context(), tx, j.ID)
				resultID = id
				return err
			case "cancel":
				if cur != stCreated && cur != stPending && cur != stRunning {
					return &errRefused{http.StatusUnprocessableEntity, "Unprocessable entity"}
				}
				return cancelJobs(r.Context(), tx, "id = $1", j.ID)
			default: // play
				if cur != stManual {
					return &errRefused{http.StatusBadRequest, "400 Bad request - Unplayable Job"}
				}
				status = http.StatusOK
				_, err := tx.Exec(r.Context(), `UPDATE standin_jobs SET status = 'pending', queued_at = now() WHERE id = $1`, j.ID)
				return err
			}
		})
		var refused *errRefused
		if errors.As(err, &refused) {
			apiMessage(w, refused.status, refused.msg)
			return
		}
		if err != nil {
			s.internalError(w, action+" job", err)
			return
		}
		s.logf("job %d: %s (stand-in)", j.ID, action)
		if nj, err := s.loadJob(r.Context(), project, resultID); err == nil {
			s.writeJob(w, r, status, nj)
		} else {
			s.internalError(w, "load job", err)
		}
	}
}

// handlePipelineAction is POST .../pipelines/:pid/{retry,cancel}: retry makes new tries of its
// failed and canceled jobs; cancel cancels its active ones. Both answer 201 with the pipeline.
func (s *server) handlePipelineAction(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		project, ok := s.resolveProject(w, r, true)
		if !ok {
			return
		}
		id, _ := pathInt(r, "pid")
		if _, err := s.loadPipeline(r.Context(), project, id); errors.Is(err, pgx.ErrNoRows) {
			apiMessage(w, http.StatusNotFound, "404 Not found")
			return
		} else if err != nil {
			s.internalError(w, "load pipeline", err)
			return
		}
		err := s.inTx(r.Context(), id, func(tx pgx.Tx) error {
			if action == "cancel" {
				return cancelJobs(r.Context(), tx, "pipeline_id = $1", id)
			}
			rows, err := tx.Query(r.Context(), `SELECT id FROM standin_jobs WHERE pipeline_id = $1 AND NOT retried AND status IN ('failed', 'canceled') ORDER BY id`, id)
			if err != nil {
				return err
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				return err
			}
			if len(ids) == 0 {
				return &errRefused{http.StatusForbidden, "403 Forbidden - Pipeline is not retryable"}
			}
			for _, jid := range ids {
				if _, err := retryJob(r.Context(), tx, jid); err != nil {
					return err
				}
			}
			return nil
		})
		var refused *errRefused
		if errors.As(err, &refused) {
			apiMessage(w, refused.status, refused.msg)
			return
		}
		if err != nil {
			s.internalError(w, action+" pipeline", err)
			return
		}
		s.logf("pipeline %d: %s (stand-in)", id, action)
		p, err := s.loadPipeline(r.Context(), project, id)
		if err != nil {
			s.internalError(w, "load pipeline", err)
			return
		}
		writeJSON(w, http.StatusCreated, s.pipelineJSON(p))
	}
}

// processPipeline moves a pipeline on, stage by stage, as GitLab's PipelineProcessing does for
// a plain stage-ordered pipeline: a stage's jobs become pending (or manual) once every earlier
// stage is done, and are skipped when an earlier one failed; then the pipeline's status follows
// its jobs.
func processPipeline(ctx context.Context, tx pgx.Tx, pipeline int64) error {
	type row struct {
		id           int64
		stage        int
		status, when string
		allowFailure bool
		started      *time.Time
	}
	rows, err := tx.Query(ctx, `SELECT id, stage_idx, status, job_when, allow_failure, started_at FROM standin_jobs
		WHERE pipeline_id = $1 AND NOT retried ORDER BY stage_idx, id`, pipeline)
	if err != nil {
		return err
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.id, &x.stage, &x.status, &x.when, &x.allowFailure, &x.started)
	})
	if err != nil {
		return err
	}
	blocked, failedBefore := false, false
	for i := 0; i < len(jobs); {
		end := i
		for end < len(jobs) && jobs[end].stage == jobs[i].stage {
			end++
		}
		stage := jobs[i:end]
		if !blocked {
			for k := range stage {
				j := &stage[k]
				if j.status != stCreated {
					continue
				}
				switch {
				case failedBefore:
					j.status = stSkipped
					_, err = tx.Exec(ctx, `UPDATE standin_jobs SET status = 'skipped', finished_at = now() WHERE id = $1`, j.id)
				case j.when == "manual":
					j.status = stManual
					_, err = tx.Exec(ctx, `UPDATE standin_jobs SET status = 'manual' WHERE id = $1`, j.id)
				default:
					j.status = stPending
					_, err = tx.Exec(ctx, `UPDATE standin_jobs SET status = 'pending', queued_at = now() WHERE id = $1`, j.id)
				}
				if err != nil {
					return err
				}
			}
			for _, j := range stage {
				switch {
				case j.status == stManual || j.status == stSkipped:
				case !finished(j.status):
					blocked = true
				case (j.status == stFailed || j.status == stCanceled) && !j.allowFailure:
					failedBefore = true
				}
			}
		}
		i = end
	}
	statuses := make([]string, 0, len(jobs))
	var started *time.Time
	for _, j := range jobs {
		st := j.status
		if st == stFailed && j.allowFailure {
			st = stSuccess // a failure that is allowed leaves the pipeline passing
		}
		statuses = append(statuses, st)
		if j.started != nil && (started == nil || j.started.Before(*started)) {
			started = j.started
		}
	}
	status := compositeStatus(statuses)
	_, err = tx.Exec(ctx, `UPDATE standin_pipelines SET
		updated_at = CASE WHEN status = $2 THEN updated_at ELSE now() END,
		status = $2,
		started_at = COALESCE(started_at, $3),
		finished_at = CASE WHEN $4 THEN COALESCE(finished_at, now()) ELSE NULL END
		WHERE id = $1`, pipeline, status, started, finished(status))
	return err
}

// compositeStatus is a pipeline's status from its jobs' (Gitlab::Ci::Status::Composite, for the
// statuses the stand-in has).
func compositeStatus(statuses []string) string {
	n := map[string]int{}
	for _, s := range statuses {
		n[s]++
	}
	total := len(statuses)
	done := n[stSuccess] + n[stFailed] + n[stCanceled]
	switch {
	case total == 0 || n[stSkipped] == total:
		return stSkipped
	case n[stManual]+n[stSkipped] == total:
		return stManual
	case n[stRunning] > 0:
		return stRunning
	case n[stPending] > 0 && done > 0:
		return stRunning
	case n[stPending] > 0:
		return stPending
	case n[stCreated] > 0 && done > 0:
		return stRunning
	case n[stCreated] > 0:
		return stCreated
	case n[stFailed] > 0:
		return stFailed
	case n[stCanceled] > 0:
		return stCanceled
	}
	return stSuccess
}

// The stand-in-only pipeline spec (POST /api/v4/standin/pipelines).
type specJob struct {
	Name         string   `json:"name"`
	Stage        string   `json:"stage"`
	Tags         []string `json:"tags"`
	Script       []string `json:"script"`
	When         string   `json:"when"`
	Image        string   `json:"image"`
	AllowFailure *bool    `json:"allow_failure"`
	Timeout      int      `json:"timeout"`
}

var projectPathPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)+$`)

// handleStandinPipeline is POST /api/v4/standin/pipelines (admin, api scope). Stand-in only:
// real GitLab makes pipelines from .gitlab-ci.yml on a push. Body:
//
//	{"project":"root/demo","ref":"main","commit_title":"...","jobs":[{"name":"build","stage":"build",
//	 "tags":["docker"],"script":["echo hi"],"when":"on_success","image":"","allow_failure":false}]}
//
// The project is created when missing. Stages run in the order they first appear. Answers 201
// with the pipeline (as GET one pipeline), plus "project" and "jobs".
func (s *server) handleStandinPipeline(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authAs(w, r, true, "api"); !ok {
		return
	}
	p, err := readParams(r)
	if err != nil {
		apiParamError(w, err)
		return
	}
	project, _ := p.str("project")
	if !projectPathPattern.MatchString(project) {
		apiParamError(w, &badParam{"project must be namespace/name or group/subgroup/.../name"})
		return
	}
	ref, _ := p.str("ref")
	ref = orDefault(ref, "main")
	title, _ := p.str("commit_title")
	title = orDefault(title, "Stand-in pipeline")
	raw, _ := p["jobs"].([]any)
	if len(raw) == 0 {
		apiParamError(w, &badParam{"jobs is missing"})
		return
	}
	var jobs []specJob
	stages := []string{}
	seen := map[string]bool{}
	for i, x := range raw {
		m, ok := x.(map[string]any)
		if !ok {
			apiParamError(w, &badParam{fmt.Sprintf("jobs[%d] is invalid", i)})
			return
		}
		jp := params(m)
		var j specJob
		j.Name, _ = jp.str("name")
		j.Stage, _ = jp.str("stage")
		j.Stage = orDefault(j.Stage, "test")
		j.When, _ = jp.str("when")
		j.When = orDefault(j.When, "on_success")
		j.Image, _ = jp.str("image")
		if j.Tags, err = jp.strList("tags"); err != nil {
			apiParamError(w, &badParam{fmt.Sprintf("jobs[%d].tags is invalid", i)})
			return
		}
		sc, _ := jp["script"].([]any) // lines verbatim, as in .gitlab-ci.yml
		for _, l := range sc {
			if ls, ok := l.(string); ok && strings.TrimSpace(ls) != "" {
				j.Script = append(j.Script, ls)
			}
		}
		if len(j.Script) == 0 || len(j.Script) != len(sc) {
			apiParamError(w, &badParam{fmt.Sprintf("jobs[%d].script must be a list of command lines", i)})
			return
		}
		af := j.When == "manual" // GitLab: manual jobs may fail unless told otherwise
		if af, err = jp.boolean("allow_failure", af); err != nil {
			apiParamError(w, &badParam{fmt.Sprintf("jobs[%d].allow_failure is invalid", i)})
			return
		}
		j.AllowFailure = &af
		if t, err := jp.integer("timeout"); err != nil || (t != nil && *t < 10) {
			apiParamError(w, &badParam{fmt.Sprintf("jobs[%d].timeout is invalid", i)})
			return
		} else if t != nil {
			j.Timeout = int(*t)
		} else {
			j.Timeout = 3600
		}
		switch {
		case j.Name == "":
			apiParamError(w, &badParam{fmt.Sprintf("jobs[%d].name is missing", i)})
			return
		case seen[j.Name]:
			apiParamError(w, &badParam{fmt.Sprintf("jobs[%d].name %q is used twice", i, j.Name)})
			return
		case j.When != "on_success" && j.When != "manual":
			apiParamError(w, &badParam{fmt.Sprintf("jobs[%d].when must be on_success or manual", i)})
			return
		}
		seen[j.Name] = true
		if !slices.Contains(stages, j.Stage) {
			stages = append(stages, j.Stage)
		}
		jobs = append(jobs, j)
	}
	var pipelineID, projectID int64
	err = s.db.with(r.Context(), func(c *pgx.Conn) error {
		tx, err := c.Begin(r.Context())
		if err != nil {
			return err
		}
		defer tx.Rollback(r.Context())
		ns, err := ensureNamespace(r.Context(), tx, project)
		if err != nil {
			return err
		}
		if err := tx.QueryRow(r.Context(), `INSERT INTO standin_projects (path, namespace_id) VALUES ($1, $2)
			ON CONFLICT (path) DO UPDATE SET last_activity_at = now(), namespace_id = EXCLUDED.namespace_id RETURNING id`, project, ns).Scan(&projectID); err != nil {
			return err
		}
		sum := sha1.Sum([]byte(fmt.Sprintf("%s/%s/%s/%d", project, ref, title, time.Now().UnixNano())))
		if err := tx.QueryRow(r.Context(), `INSERT INTO standin_pipelines (iid, project_id, status, source, ref, sha, commit_title, user_id)
			VALUES ((SELECT COALESCE(max(iid), 0) + 1 FROM standin_pipelines WHERE project_id = $1), $1, 'created', 'push', $2, $3, $4, 1)
			RETURNING id`, projectID, ref, hex.EncodeToString(sum[:]), title).Scan(&pipelineID); err != nil {
			return err
		}
		for _, j := range jobs {
			if _, err := tx.Exec(r.Context(), `INSERT INTO standin_jobs (pipeline_id, project_id, name, stage, stage_idx, status,
					job_when, allow_failure, tag_list, image, script, timeout_s, user_id)
				VALUES ($1, $2, $3, $4, $5, 'created', $6, $7, $8, $9, $10, $11, 1)`,
				pipelineID, projectID, j.Name, j.Stage, slices.Index(stages, j.Stage), j.When, *j.AllowFailure,
				append([]string{}, j.Tags...), j.Image, j.Script, j.Timeout); err != nil {
				return err
			}
		}
		if err := processPipeline(r.Context(), tx, pipelineID); err != nil {
			return err
		}
		return tx.Commit(r.Context())
	})
	if err != nil {
		s.internalError(w, "create pipeline", err)
		return
	}
	s.logf("stand-in pipeline %d created in %s (%d jobs)", pipelineID, project, len(jobs))
	pl, err := s.loadPipeline(r.Context(), projectID, pipelineID)
	if err != nil {
		s.internalError(w, "load pipeline", err)
		return
	}
	list, err := s.pipelineJobs(r.Context(), pipelineID, false)
	if err != nil {
		s.internalError(w, "list jobs", err)
		return
	}
	out := s.pipelineJSON(pl)
	out["project"] = s.projectJSON(projectID, project, pl.CreatedAt, pl.CreatedAt)
	js := []map[string]any{}
	for _, j := range list {
		js = append(js, s.jobJSON(j, nil))
	}
	out["jobs"] = js
	writeJSON(w, http.StatusCreated, out)
}
