package main

// The runner's side of CI, with the shapes GitLab Runner uses (RUN network/gitlab.go,
// common/network.go; GitLab lib/api/ci/runner.rb and helpers/runner.rb):
//
//   - POST /api/v4/jobs/request {token, info, ...}: 201 with a job payload, 204 when there is
//     none, 403 for an unknown runner token. A job goes to a runner whose tags include all of the
//     job's tags; an untagged job only to a runner with run_untagged. A job no runner matches stays
//     pending (GitLab calls it stuck).
//   - PUT /api/v4/jobs/:id {token, state, exit_code, failure_reason, output}: 200 with header
//     Job-Status.
//   - PATCH /api/v4/jobs/:id/trace (JOB-TOKEN, Content-Range "start-end"): appends at start,
//     202 with Range "0-<size>" and Job-Status; 416 with Range "0-<size>" when start is not the
//     current size.
//   - A job that is no longer running (canceled from the API, or finished) answers the next PUT or
//     PATCH with 403 and Job-Status: canceled (or its status), which the runner reads as "abort
//     the job" (RUN network/remote_job_state_response.go IsFailed). GitLab's newer graceful
//     cancel ("canceling", then after_script) is not emulated.

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// handleJobRequest is POST /api/v4/jobs/request.
func (s *server) handleJobRequest(w http.ResponseWriter, r *http.Request) {
	p, err := readParams(r)
	if err != nil {
		apiParamError(w, err)
		return
	}
	tok, _ := p.str("token")
	if tok == "" {
		apiParamError(w, &badParam{"token is missing"})
		return
	}
	var run runner
	err = s.db.with(r.Context(), func(c *pgx.Conn) error {
		var err error
		run, err = scanRunner(c.QueryRow(r.Context(), `UPDATE standin_runners SET contacted_at = now() WHERE token = $1 RETURNING `+runnerColumns, tok))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		apiMessage(w, http.StatusForbidden, "403 Forbidden")
		return
	}
	if err != nil {
		s.internalError(w, "find runner", err)
		return
	}
	w.Header().Set("X-GitLab-Last-Update", strconv.FormatInt(time.Now().Unix(), 10))
	if run.Paused {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	jobToken := randomToken("glcbt-", 20)
	var jobID, pipelineID int64
	err = s.db.with(r.Context(), func(c *pgx.Conn) error {
		tx, err := c.Begin(r.Context())
		if err != nil {
			return err
		}
		defer tx.Rollback(r.Context())
		// A project runner is given only its own project's jobs; an instance runner any
		// project's (GitLab docs ci/runners/runners_scope.md: project runners are available to
		// the projects they are assigned to; gitlabhq app/services/ci/queue/builds_table_strategy.rb
		// builds_for_project_runner filters by the runner's projects).
		// A group runner is given the jobs of the projects in its group and its subgroups
		// (groupRunnerProjects, groups.go).
		var projectID, groupID *int64
		if err := tx.QueryRow(r.Context(), `SELECT project_id, group_id FROM standin_runners WHERE id = $1`, run.ID).Scan(&projectID, &groupID); err != nil {
			return err
		}
		err = tx.QueryRow(r.Context(), `SELECT id, pipeline_id FROM standin_jobs
			WHERE status = 'pending' AND tag_list <@ $1::text[] AND (cardinality(tag_list) > 0 OR $2)
				AND ($3::bigint IS NULL OR project_id = $3)
				AND ($4::bigint IS NULL OR `+groupRunnerProjects("$4")+`)
			ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED`, append([]string{}, run.TagList...), run.RunUntagged, projectID, groupID).Scan(&jobID, &pipelineID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(r.Context(), `UPDATE standin_jobs SET status = 'running', runner_id = $2, token_digest = $3, started_at = now()
			WHERE id = $1`, jobID, run.ID, digest(jobToken)); err != nil {
			return err
		}
		if err := processPipeline(r.Context(), tx, pipelineID); err != nil {
			return err
		}
		return tx.Commit(r.Context())
	})
	if errors.Is(err, pgx.ErrNoRows) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err != nil {
		s.internalError(w, "pick a job", err)
		return
	}
	j, err := s.loadJob(r.Context(), 0, jobID)
	if err != nil {
		s.internalError(w, "load job", err)
		return
	}
	s.logf("job %d (%s) given to runner %d", j.ID, j.Name, run.ID)
	writeJSON(w, http.StatusCreated, s.jobPayload(j, run, jobToken))
}

// jobPayload is the runner's JobResponse (RUN common/network.go).
func (s *server) jobPayload(j ciJob, run runner, token string) map[string]any {
	ext := s.cfg.ExternalURL()
	host := strings.TrimPrefix(strings.TrimPrefix(ext, "http://"), "https://")
	repo := "http://gitlab-ci-token:" + token + "@" + host + "/" + j.ProjectPath + ".git"
	_, name, _ := strings.Cut(j.ProjectPath, "/")
	v := func(k, val string, public, masked bool) map[string]any {
		return map[string]any{"key": k, "value": val, "public": public, "masked": masked}
	}
	id := strconv.FormatInt(j.ID, 10)
	vars := []map[string]any{
		v("CI", "true", true, false), v("GITLAB_CI", "true", true, false),
		v("CI_SERVER_URL", ext, true, false), v("CI_API_V4_URL", ext+"/api/v4", true, false),
		v("CI_JOB_ID", id, true, false), v("CI_JOB_NAME", j.Name, true, false), v("CI_JOB_STAGE", j.Stage, true, false),
		v("CI_JOB_URL", s.projectWebURL(j.ProjectPath)+"/-/jobs/"+id, true, false),
		v("CI_JOB_TOKEN", token, false, true), v("CI_REPOSITORY_URL", repo, false, true),
		v("CI_PIPELINE_ID", strconv.FormatInt(j.PipelineID, 10), true, false),
		v("CI_PIPELINE_IID", strconv.FormatInt(j.PipelineIID, 10), true, false),
		v("CI_PROJECT_ID", strconv.FormatInt(j.ProjectID, 10), true, false),
		v("CI_PROJECT_PATH", j.ProjectPath, true, false), v("CI_PROJECT_NAME", name, true, false),
		v("CI_COMMIT_SHA", j.SHA, true, false), v("CI_COMMIT_REF_NAME", j.Ref, true, false),
		v("CI_COMMIT_TITLE", j.CommitTitle, true, false),
		v("CI_RUNNER_ID", strconv.FormatInt(run.ID, 10), true, false),
		v("CI_RUNNER_DESCRIPTION", run.Description, true, false),
		v("CI_RUNNER_TAGS", "["+strings.Join(quoteAll(run.TagList), ", ")+"]", true, false),
		v("GITLAB_USER_LOGIN", "root", true, false),
	}
	var image any
	if j.Image != "" {
		image = map[string]any{"name": j.Image, "entrypoint": nil, "ports": []any{}}
	} else {
		image = map[string]any{"name": "", "entrypoint": nil, "ports": []any{}}
	}
	return map[string]any{
		"id": j.ID, "token": token, "allow_git_fetch": true,
		"job_info": map[string]any{"id": j.ID, "name": j.Name, "stage": j.Stage, "project_id": j.ProjectID,
			"project_name": name, "time_in_queue_seconds": 0, "project_jobs_running_on_instance_runners_count": "0"},
		"git_info": map[string]any{"repo_url": repo, "repo_object_format": "sha1", "ref": j.Ref, "sha": j.SHA,
			"before_sha": strings.Repeat("0", 40), "ref_type": "branch", "refspecs": []string{"+refs/heads/" + j.Ref + ":refs/remotes/origin/" + j.Ref}, "depth": 20},
		"runner_info": map[string]any{"timeout": j.TimeoutS, "runner_session_url": nil},
		"variables":   vars,
		"steps": []map[string]any{{"name": "script", "script": j.Script, "timeout": j.TimeoutS, "when": "on_success",
			"allow_failure": false}},
		"image": image, "services": []any{}, "artifacts": nil, "cache": []any{}, "credentials": []any{},
		"dependencies": []any{}, "features": map[string]any{"trace_sections": true, "failure_reasons": []string{"script_failure", "job_execution_timeout", "runner_system_failure"}},
		"hooks": []any{},
	}
}

func quoteAll(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = strconv.Quote(s)
	}
	return out
}

// jobAuth finds the job of a runner call and checks its job token and that it still runs;
// otherwise it answers 403, with Job-Status when the job exists (GitLab's authenticate_job!).
func (s *server) jobAuth(w http.ResponseWriter, r *http.Request, token string) (ciJob, bool) {
	id, _ := pathInt(r, "job")
	j, err := s.loadJob(r.Context(), 0, id)
	if errors.Is(err, pgx.ErrNoRows) {
		apiMessage(w, http.StatusForbidden, "403 Forbidden")
		return j, false
	}
	if err != nil {
		s.internalError(w, "load job", err)
		return j, false
	}
	if token == "" || j.TokenDigest == nil || digest(token) != *j.TokenDigest {
		apiMessage(w, http.StatusForbidden, "403 Forbidden")
		return j, false
	}
	if j.Status != stRunning {
		w.Header().Set("Job-Status", j.Status)
		apiMessage(w, http.StatusForbidden, "403 Forbidden - Job is not processing on runner")
		return j, false
	}
	return j, true
}

// handleUpdateJob is PUT /api/v4/jobs/:id.
func (s *server) handleUpdateJob(w http.ResponseWriter, r *http.Request) {
	p, err := readParams(r)
	if err != nil {
		apiParamError(w, err)
		return
	}
	tok, _ := p.str("token")
	j, ok := s.jobAuth(w, r, tok)
	if !ok {
		return
	}
	state, err := p.oneOf("state", stRunning, stSuccess, stFailed)
	if err != nil {
		apiParamError(w, err)
		return
	}
	if state == "" || state == stRunning {
		w.Header().Set("Job-Status", stRunning)
		writeJSON(w, http.StatusOK, map[string]any{})
		return
	}
	reason, _ := p.str("failure_reason")
	if state == stFailed && reason == "" {
		reason = "unknown_failure"
	}
	if state == stSuccess {
		reason = ""
	}
	exit, err := p.integer("exit_code")
	if err != nil {
		apiParamError(w, err)
		return
	}
	err = s.inTx(r.Context(), j.PipelineID, func(tx pgx.Tx) error {
		tag, err := tx.Exec(r.Context(), `UPDATE standin_jobs SET status = $2, failure_reason = $3, exit_code = $4, finished_at = now()
			WHERE id = $1 AND status = 'running'`, j.ID, state, reason, exit)
		if err == nil && tag.RowsAffected() == 0 {
			return &errRefused{http.StatusForbidden, "403 Forbidden - Job is not processing on runner"}
		}
		return err
	})
	var refused *errRefused
	if errors.As(err, &refused) {
		if cur, lerr := s.loadJob(r.Context(), 0, j.ID); lerr == nil {
			w.Header().Set("Job-Status", cur.Status)
		}
		apiMessage(w, refused.status, refused.msg)
		return
	}
	if err != nil {
		s.internalError(w, "update job", err)
		return
	}
	s.logf("job %d %s (exit code %v, %s)", j.ID, state, derefInt(exit), orDefault(reason, "-"))
	w.Header().Set("Job-Status", state)
	writeJSON(w, http.StatusOK, map[string]any{})
}

func derefInt(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

var contentRange = regexp.MustCompile(`^(\d+)-(\d+)$`)

// handlePatchTrace is PATCH /api/v4/jobs/:id/trace.
func (s *server) handlePatchTrace(w http.ResponseWriter, r *http.Request) {
	tok := r.Header.Get("JOB-TOKEN")
	if tok == "" {
		tok = r.URL.Query().Get("token")
	}
	j, ok := s.jobAuth(w, r, tok)
	if !ok {
		return
	}
	m := contentRange.FindStringSubmatch(r.Header.Get("Content-Range"))
	if m == nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "400 Bad request - Content-Range is missing or malformed"})
		return
	}
	start, _ := strconv.ParseInt(m[1], 10, 64)
	end, _ := strconv.ParseInt(m[2], 10, 64)
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20+1))
	if err != nil {
		apiParamError(w, &badParam{"could not read the body"})
		return
	}
	if len(body) > 4<<20 {
		apiMessage(w, http.StatusRequestEntityTooLarge, "413 Request Entity Too Large")
		return
	}
	if start != j.TraceLen {
		w.Header().Set("Range", fmt.Sprintf("0-%d", j.TraceLen))
		w.Header().Set("Job-Status", j.Status)
		apiMessage(w, http.StatusRequestedRangeNotSatisfiable, "416 Range Not Satisfiable")
		return
	}
	if end-start+1 != int64(len(body)) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "400 Bad request - Content-Range does not match the body's length"})
		return
	}
	var size int64
	err = s.db.with(r.Context(), func(c *pgx.Conn) error {
		return c.QueryRow(r.Context(), `UPDATE standin_jobs SET trace = trace || $3
			WHERE id = $1 AND length(trace) = $2 AND status = 'running' RETURNING length(trace)`, j.ID, start, body).Scan(&size)
	})
	if errors.Is(err, pgx.ErrNoRows) { // a concurrent append or a cancel won the race
		cur, lerr := s.loadJob(r.Context(), 0, j.ID)
		if lerr != nil {
			s.internalError(w, "load job", lerr)
			return
		}
		w.Header().Set("Job-Status", cur.Status)
		if cur.Status != stRunning {
			apiMessage(w, http.StatusForbidden, "403 Forbidden - Job is not processing on runner")
			return
		}
		w.Header().Set("Range", fmt.Sprintf("0-%d", cur.TraceLen))
		apiMessage(w, http.StatusRequestedRangeNotSatisfiable, "416 Range Not Satisfiable")
		return
	}
	if err != nil {
		s.internalError(w, "append trace", err)
		return
	}
	w.Header().Set("Job-Status", stRunning)
	w.Header().Set("Range", fmt.Sprintf("0-%d", size))
	w.WriteHeader(http.StatusAccepted)
}
