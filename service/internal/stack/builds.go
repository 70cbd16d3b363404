package stack

// What the builds page and `forgebox builds` need from the stack: a GitLab API client for the
// running GitLab with forgebox's admin token, and which profile each runner belongs to.

import (
	"context"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/gitlab"
)

// GitLabUnavailableError says why forgebox cannot use GitLab's API now.
type GitLabUnavailableError struct{ Reason string }

func (e *GitLabUnavailableError) Error() string { return e.Reason }

// GitLabAPI returns a client for the running GitLab, reached at its address on the stack network
// (as the stack itself reaches it), with forgebox's admin token from the secret store.
func (s *Stack) GitLabAPI(ctx context.Context) (*gitlab.Client, error) {
	d, err := s.desiredNow(ctx, readOnlySecrets{s.secrets})
	if err != nil {
		return nil, err
	}
	comp, err := s.component(d, "gitlab")
	if err != nil {
		return nil, err
	}
	det, ok, err := s.findContainer(ctx, d, comp)
	if err != nil {
		return nil, err
	}
	switch {
	case !ok:
		return nil, &GitLabUnavailableError{Reason: "GitLab has no container yet: start the stack (forgebox up)"}
	case !det.Running():
		return nil, &GitLabUnavailableError{Reason: "GitLab is " + det.State + ": start the stack (forgebox up)"}
	}
	base, err := gitlabBaseURL(s.cfg, det)
	if err != nil {
		return nil, &GitLabUnavailableError{Reason: err.Error()}
	}
	token, ok := s.secrets.Get(config.SecretGitLabAdminToken)
	if !ok || token == "" {
		return nil, &GitLabUnavailableError{Reason: "forgebox has no admin token for GitLab yet: run forgebox up once GitLab is ready"}
	}
	return gitlab.New(base, token)
}

// RunnerProfiles maps each profile's runner description in GitLab (<stack>-<profile>) to the
// profile's name.
func RunnerProfiles(cfg config.Config) map[string]string {
	out := map[string]string{}
	for _, p := range cfg.Runner.Profiles {
		out[runnerDescription(cfg, p)] = p.Name
	}
	return out
}
