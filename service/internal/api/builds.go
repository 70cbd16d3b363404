package api

// The builds page's API: recent pipelines across projects with their jobs, a job's log by
// byte offset for following it while it runs, retry, cancel and play, and the runners with their
// profiles. Handlers translate HTTP; GitLab is asked through the gitlab package with the admin
// token, at GitLab's address on the stack network (stack.GitLabAPI).
//
//	GET  api/v1/builds?limit=N                                  pipelines, newest first, and runners
//	GET  api/v1/builds/runners                                  runners: status, last contact, profile
//	GET  api/v1/builds/projects/:project/pipelines/:pipeline    one pipeline with its jobs
//	POST api/v1/builds/projects/:project/pipelines/:pipeline/:action   retry | cancel
//	GET  api/v1/builds/projects/:project/jobs/:job              one job (stuck, with a hint)
//	GET  api/v1/builds/projects/:project/jobs/:job/trace?offset=N      the log past byte N
//	POST api/v1/builds/projects/:project/jobs/:job/:action      retry | cancel | play

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/forgebox/forgebox/service/internal/gitlab"
	"github.com/forgebox/forgebox/service/internal/msg"
	"github.com/forgebox/forgebox/service/internal/stack"
)

// CodeGitLabUnavailable: GitLab's API cannot be used now (not started, booting, no token).
const CodeGitLabUnavailable = "gitlab_unavailable"

// buildsState is the controller's memory for the builds page: the GitLab client (its address
// can change when GitLab is recreated, so it is looked up again every little while), the
// pipeline cache and the runners list.
type buildsState struct {
	cache gitlab.BuildsCache

	mu        sync.Mutex
	client    *gitlab.Client
	clientAt  time.Time
	runners   []gitlab.RunnerStatus
	runnersAt time.Time
}

const (
	buildsClientTTL  = 10 * time.Second
	buildsRunnersTTL = 5 * time.Second
	maxTraceChunk    = 256 << 10
)

func (s *Server) buildRoutes(v1 *gin.RouterGroup) {
	v1.GET("/builds", s.getBuilds)
	v1.GET("/builds/runners", s.getBuildRunners)
	v1.GET("/builds/projects/:project/pipelines/:pipeline", s.getPipeline)
	v1.POST("/builds/projects/:project/pipelines/:pipeline/:action", s.postPipelineAction)
	v1.GET("/builds/projects/:project/jobs/:job", s.getJob)
	v1.GET("/builds/projects/:project/jobs/:job/trace", s.getJobTrace)
	v1.POST("/builds/projects/:project/jobs/:job/:action", s.postJobAction)
}

// gitlabClient returns the cached client or makes one from the stack as it is now.
func (s *Server) gitlabClient(ctx context.Context) (*gitlab.Client, error) {
	b := &s.builds
	b.mu.Lock()
	if b.client != nil && time.Since(b.clientAt) < buildsClientTTL {
		c := b.client
		b.mu.Unlock()
		return c, nil
	}
	b.mu.Unlock()
	eng, err := s.engine()
	if err != nil {
		return nil, errNoEngine
	}
	st, err := s.newStack(eng, s.config(), "builds")
	if err != nil {
		return nil, err
	}
	c, err := st.GitLabAPI(ctx)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.client, b.clientAt = c, time.Now()
	b.mu.Unlock()
	return c, nil
}

// forgetClient drops the cached client after GitLab failed to answer, so the next call looks
// GitLab up again (it may have a new address).
func (s *Server) forgetClient() {
	s.builds.mu.Lock()
	s.builds.client = nil
	s.builds.mu.Unlock()
}

func (s *Server) runnerStatuses(ctx context.Context, c *gitlab.Client) ([]gitlab.RunnerStatus, error) {
	b := &s.builds
	b.mu.Lock()
	if b.runners != nil && time.Since(b.runnersAt) < buildsRunnersTTL {
		r := b.runners
		b.mu.Unlock()
		return r, nil
	}
	b.mu.Unlock()
	list, err := c.Runners(ctx)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.runners, b.runnersAt = list, time.Now()
	b.mu.Unlock()
	return list, nil
}

// buildsFail maps GitLab trouble to the API's error shape: GitLab unavailable (503), no such
// thing (404), GitLab refusing an action (409, with GitLab's words).
func (s *Server) buildsFail(c *gin.Context, err error) {
	var unavailable *stack.GitLabUnavailableError
	var refused *gitlab.APIError
	var netErr net.Error
	var opErr *net.OpError
	switch {
	case errors.As(err, &unavailable):
		abort(c, codedError(http.StatusServiceUnavailable, CodeGitLabUnavailable, msg.New("api.gitlabUnavailable", "reason", msg.Raw(unavailable.Error()))))
	case errors.Is(err, gitlab.ErrNotFound):
		abort(c, codedError(http.StatusNotFound, CodeNotFound, msg.New("api.gitlabNotFound")))
	case errors.Is(err, gitlab.ErrUnauthorized):
		s.forgetClient()
		abort(c, codedError(http.StatusServiceUnavailable, CodeGitLabUnavailable, msg.New("api.gitlabToken")))
	case errors.As(err, &refused) && refused.Status >= 400 && refused.Status < 500:
		abort(c, withCause(codedError(http.StatusConflict, CodeConflict, msg.New("api.gitlabRefused", "error", msg.Raw(refused.Message))), err))
	case errors.As(err, &refused), errors.As(err, &netErr), errors.As(err, &opErr):
		s.forgetClient()
		abort(c, withCause(codedError(http.StatusServiceUnavailable, CodeGitLabUnavailable, msg.New("api.gitlabSilent", "error", msg.Raw(err.Error()))), err))
	default:
		fail(c, err)
	}
}

// RunnerView is a runner with the profile it belongs to ("" when it is none of forgebox's).
type RunnerView struct {
	gitlab.RunnerStatus
	Profile string `json:"profile"`
}

// BuildsPage is GET api/v1/builds.
type BuildsPage struct {
	Pipelines  []gitlab.Pipeline `json:"pipelines"`
	Runners    []RunnerView      `json:"runners"`
	ObservedAt time.Time         `json:"observed_at"`
}

func (s *Server) runnerViews(list []gitlab.RunnerStatus) []RunnerView {
	profiles := stack.RunnerProfiles(s.config())
	out := make([]RunnerView, 0, len(list))
	for _, r := range list {
		out = append(out, RunnerView{RunnerStatus: r, Profile: profiles[r.Description]})
	}
	return out
}

func (s *Server) getBuilds(c *gin.Context) {
	limit, err := uintQuery(c, "limit", 20)
	if err != nil {
		fail(c, err)
		return
	}
	gc, err := s.gitlabClient(c)
	if err != nil {
		s.buildsFail(c, err)
		return
	}
	runners, err := s.runnerStatuses(c, gc)
	if err != nil {
		s.buildsFail(c, err)
		return
	}
	pipelines, err := gc.RecentPipelines(c, &s.builds.cache, int(min(max(limit, 1), 100)))
	if err != nil {
		s.buildsFail(c, err)
		return
	}
	gitlab.MarkStuck(pipelines, runners)
	if pipelines == nil {
		pipelines = []gitlab.Pipeline{}
	}
	c.JSON(http.StatusOK, BuildsPage{Pipelines: pipelines, Runners: s.runnerViews(runners), ObservedAt: time.Now().UTC()})
}

func (s *Server) getBuildRunners(c *gin.Context) {
	gc, err := s.gitlabClient(c)
	if err != nil {
		s.buildsFail(c, err)
		return
	}
	runners, err := s.runnerStatuses(c, gc)
	if err != nil {
		s.buildsFail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"runners": s.runnerViews(runners)})
}

// idParam reads a positive id from the path.
func idParam(c *gin.Context, name string) (int64, bool) {
	n, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || n <= 0 {
		abort(c, codedError(http.StatusBadRequest, CodeInvalidRequest, msg.New("api.notPositive", "name", name, "value", msg.Q(c.Param(name)))))
		return 0, false
	}
	return n, true
}

// buildsTarget reads the project and the pipeline or job id (idName) from the path and gets the
// GitLab client; on any failure it has answered the request and ok is false.
func (s *Server) buildsTarget(c *gin.Context, idName string) (gc *gitlab.Client, project, id int64, ok bool) {
	if project, ok = idParam(c, "project"); !ok {
		return nil, 0, 0, false
	}
	if id, ok = idParam(c, idName); !ok {
		return nil, 0, 0, false
	}
	gc, err := s.gitlabClient(c)
	if err != nil {
		s.buildsFail(c, err)
		return nil, 0, 0, false
	}
	return gc, project, id, true
}

func (s *Server) getPipeline(c *gin.Context) {
	gc, project, id, ok := s.buildsTarget(c, "pipeline")
	if !ok {
		return
	}
	p, err := gc.Pipeline(c, &s.builds.cache, project, id)
	if err != nil {
		s.buildsFail(c, err)
		return
	}
	if runners, err := s.runnerStatuses(c, gc); err == nil {
		ps := []gitlab.Pipeline{p}
		gitlab.MarkStuck(ps, runners)
		p = ps[0]
	}
	c.JSON(http.StatusOK, gin.H{"pipeline": p})
}

// jobWithStuck fetches a job and says whether it is stuck.
func (s *Server) jobWithStuck(c *gin.Context, gc *gitlab.Client, project, id int64) (gitlab.Job, error) {
	j, err := gc.Job(c, project, id)
	if err != nil {
		return j, err
	}
	if j.Status == "pending" {
		if runners, err := s.runnerStatuses(c, gc); err == nil {
			j.Stuck = gitlab.StuckReason(j, runners)
		}
	}
	return j, nil
}

func (s *Server) getJob(c *gin.Context) {
	gc, project, id, ok := s.buildsTarget(c, "job")
	if !ok {
		return
	}
	j, err := s.jobWithStuck(c, gc, project, id)
	if err != nil {
		s.buildsFail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"job": j})
}

// TracePage is GET api/v1/builds/projects/:project/jobs/:job/trace.
type TracePage struct {
	Job      gitlab.Job `json:"job"`
	Offset   int64      `json:"offset"`   // where data starts in the log
	Next     int64      `json:"next"`     // ask again with ?offset=next for what comes after
	Size     int64      `json:"size"`     // the log's size now
	Data     string     `json:"data"`     // the log from offset to next (secrets masked)
	Reset    bool       `json:"reset"`    // the log became shorter than the offset: start over
	More     bool       `json:"more"`     // more is there already: ask again at once
	Complete bool       `json:"complete"` // the job ended and all of its log was sent: stop following
}

func (s *Server) getJobTrace(c *gin.Context) {
	offset, err := uintQuery(c, "offset", 0)
	if err != nil {
		fail(c, err)
		return
	}
	gc, project, id, ok := s.buildsTarget(c, "job")
	if !ok {
		return
	}
	// The job first: when it has ended, the log read after it is whole.
	j, err := s.jobWithStuck(c, gc, project, id)
	if err != nil {
		s.buildsFail(c, err)
		return
	}
	ch, err := gc.Trace(c, project, id, int64(offset), maxTraceChunk)
	if err != nil {
		s.buildsFail(c, err)
		return
	}
	next := ch.Offset + int64(len(ch.Data))
	c.JSON(http.StatusOK, TracePage{
		Job: j, Offset: ch.Offset, Next: next, Size: ch.Size, Data: s.scrub.Scrub(string(ch.Data)), Reset: ch.Reset,
		More: next < ch.Size, Complete: !j.Active() && next >= ch.Size,
	})
}

func (s *Server) postJobAction(c *gin.Context) {
	gc, project, id, ok := s.buildsTarget(c, "job")
	if !ok {
		return
	}
	action := c.Param("action")
	var err error
	var j gitlab.Job
	switch action {
	case "retry":
		j, err = gc.RetryJob(c, project, id)
	case "cancel":
		j, err = gc.CancelJob(c, project, id)
	case "play":
		j, err = gc.PlayJob(c, project, id)
	default:
		abort(c, codedError(http.StatusNotFound, CodeNotFound, msg.New("api.noJobAction", "action", msg.Q(action))))
		return
	}
	if err != nil {
		s.buildsFail(c, err)
		return
	}
	j.ProjectID = project
	s.log.Info("builds: job "+action, "project", project, "job", id, "result_job", j.ID, "status", j.Status, "user", c.GetString(ctxUser))
	c.JSON(http.StatusOK, gin.H{"job": j})
}

func (s *Server) postPipelineAction(c *gin.Context) {
	gc, project, id, ok := s.buildsTarget(c, "pipeline")
	if !ok {
		return
	}
	action := c.Param("action")
	var err error
	var status string
	switch action {
	case "retry":
		status, err = gc.RetryPipeline(c, project, id)
	case "cancel":
		status, err = gc.CancelPipeline(c, project, id)
	default:
		abort(c, codedError(http.StatusNotFound, CodeNotFound, msg.New("api.noPipelineAction", "action", msg.Q(action))))
		return
	}
	if err != nil {
		s.buildsFail(c, err)
		return
	}
	s.log.Info("builds: pipeline "+action, "project", project, "pipeline", id, "status", status, "user", c.GetString(ctxUser))
	c.JSON(http.StatusOK, gin.H{"pipeline": gin.H{"id": id, "project_id": project, "status": status}})
}
