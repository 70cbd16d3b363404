package stack

import (
	"context"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/gitlab"
)

// runnerGrace is how long a started runner may take to first reach GitLab before its check
// says unhealthy rather than starting (the runner checks for jobs every few seconds).
const runnerGrace = 2 * time.Minute

// componentCheck is the health of a running container Docker has no healthcheck for, from the
// check forgebox itself relies on: GitLab's readiness for GitLab, and for the runner whether
// GitLab sees each runner forgebox registered online. "" when it cannot be asked (GitLab down,
// no admin token yet): unknown, not unhealthy.
func (s *Stack) componentCheck(ctx context.Context, c Component, det engine.Detail, gitlabDet *engine.Detail) string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	switch c.Name {
	case "gitlab":
		base, err := gitlabBaseURL(s.cfg, det)
		if err != nil {
			return ""
		}
		return checkVerdict(gitlab.Readiness(ctx, base) == nil, det, c.Deadline)
	case "runner":
		if gitlabDet == nil || !gitlabDet.Running() {
			return ""
		}
		base, err := gitlabBaseURL(s.cfg, *gitlabDet)
		if err != nil {
			return ""
		}
		token, ok := s.secrets.Get(config.SecretGitLabAdminToken)
		records, rerr := loadRunnerRecords(s.secrets)
		if !ok || token == "" || rerr != nil || len(records) == 0 {
			return ""
		}
		api, err := gitlab.New(base, token)
		if err != nil {
			return ""
		}
		listed, err := api.ListRunners(ctx)
		if err != nil {
			return ""
		}
		return checkVerdict(runnersOnline(records, listed), det, runnerGrace)
	}
	return ""
}

// runnersOnline: GitLab lists every registered runner, online.
func runnersOnline(records map[string]RunnerRecord, listed []gitlab.RunnerInfo) bool {
	status := map[int64]string{}
	for _, r := range listed {
		status[r.ID] = r.Status
	}
	for _, r := range records {
		if status[r.ID] != "online" {
			return false
		}
	}
	return true
}

// checkVerdict turns a check's answer into a health word: a failing check is "starting" while
// the container is younger than grace, and "unhealthy" after.
func checkVerdict(ok bool, det engine.Detail, grace time.Duration) string {
	switch {
	case ok:
		return "healthy"
	case !det.StartedAt.IsZero() && time.Since(det.StartedAt) < grace:
		return "starting"
	}
	return "unhealthy"
}
