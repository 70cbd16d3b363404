// Package gitlab talks to a GitLab instance for forgebox: readiness probes, the admin token, and
// runners (create, verify, update, delete) through gitlab.com/gitlab-org/api/client-go. It knows
// nothing about containers; the stack hands it a base URL reachable from forgebox.
package gitlab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// Readiness asks GET /-/readiness?all=1. GitLab answers only clients in its monitoring
// allowlist; forgebox sets that to the stack network, where it probes from.
func Readiness(ctx context.Context, baseURL string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/-/readiness?all=1", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("readiness: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("readiness: 404: forgebox's address is not in GitLab's monitoring allowlist")
	}
	var r struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(body, &r); err != nil || resp.StatusCode != http.StatusOK || r.Status != "ok" {
		return fmt.Errorf("readiness: HTTP %d %s", resp.StatusCode, truncate(string(body), 200))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// Client is an authenticated GitLab API client.
type Client struct {
	api *gl.Client
}

// New returns a client for baseURL (e.g. http://172.18.0.4) with an admin token.
func New(baseURL, token string) (*Client, error) {
	api, err := gl.NewClient(token, gl.WithBaseURL(baseURL+"/api/v4"), gl.WithCustomRetryMax(2))
	if err != nil {
		return nil, fmt.Errorf("gitlab client: %w", err)
	}
	return &Client{api: api}, nil
}

// ErrUnauthorized: the token is not (or no longer) accepted.
var ErrUnauthorized = errors.New("GitLab refused the token")

// CheckToken reports whether the admin token still works.
func (c *Client) CheckToken(ctx context.Context) error {
	_, resp, err := c.api.Users.CurrentUser(gl.WithContext(ctx))
	if resp != nil && resp.StatusCode == http.StatusUnauthorized {
		return ErrUnauthorized
	}
	if err != nil {
		return fmt.Errorf("check admin token: %w", err)
	}
	return nil
}

// RevokeSelf revokes the client's own token (DELETE /personal_access_tokens/self, allowed for a
// token of any scope). ErrUnauthorized: GitLab no longer accepts the token anyway.
func (c *Client) RevokeSelf(ctx context.Context) error {
	resp, err := c.api.PersonalAccessTokens.RevokePersonalAccessTokenSelf(gl.WithContext(ctx))
	if resp != nil && resp.StatusCode == http.StatusUnauthorized {
		return ErrUnauthorized
	}
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	return nil
}

// Version is the running GitLab's version string (GET /version), e.g. "18.5.1" or
// "18.5.1-ee"; the caller parses it.
func (c *Client) Version(ctx context.Context) (string, error) {
	v, resp, err := c.api.Version.GetVersion(gl.WithContext(ctx))
	if err := apiErr("ask GitLab its version", resp, err); err != nil {
		return "", err
	}
	return v.Version, nil
}

// RunnerSpec is what forgebox sets on a runner in GitLab.
type RunnerSpec struct {
	Description string
	Tags        []string
	RunUntagged bool
	// ProjectID, when set, makes a project runner (runner_type project_type): GitLab gives it
	// only that project's jobs. Zero: an instance runner.
	ProjectID int64
	// GroupID, when set, makes a group runner (runner_type group_type): GitLab gives it the
	// jobs of the group's projects and its subgroups' projects.
	GroupID int64
}

// Runner is a runner GitLab created. TokenExpiresAt is zero when its token does not expire
// (GitLab answers null unless an administrator set a runner token expiry).
type Runner struct {
	ID             int64
	Token          string
	TokenExpiresAt time.Time
}

// CreateRunner makes an instance, group or project runner (RunnerSpec) with POST /user/runners
// and returns its glrt- token.
func (c *Client) CreateRunner(ctx context.Context, s RunnerSpec) (Runner, error) {
	tags := s.Tags
	if tags == nil {
		tags = []string{}
	}
	opt := &gl.CreateUserRunnerOptions{
		RunnerType:  gl.Ptr("instance_type"),
		Description: gl.Ptr(s.Description),
		TagList:     &tags,
		RunUntagged: gl.Ptr(s.RunUntagged),
	}
	switch {
	case s.ProjectID != 0:
		opt.RunnerType, opt.ProjectID = gl.Ptr("project_type"), gl.Ptr(s.ProjectID)
	case s.GroupID != 0:
		opt.RunnerType, opt.GroupID = gl.Ptr("group_type"), gl.Ptr(s.GroupID)
	}
	r, _, err := c.api.Users.CreateUserRunner(opt, gl.WithContext(ctx))
	if err != nil {
		return Runner{}, fmt.Errorf("create runner %q: %w", s.Description, err)
	}
	out := Runner{ID: r.ID, Token: r.Token}
	if r.TokenExpiresAt != nil {
		out.TokenExpiresAt = r.TokenExpiresAt.UTC()
	}
	return out, nil
}

// VerifyRunner asks whether GitLab still knows a runner token (POST /runners/verify).
func (c *Client) VerifyRunner(ctx context.Context, token string) (bool, error) {
	resp, err := c.api.Runners.VerifyRegisteredRunner(&gl.VerifyRegisteredRunnerOptions{Token: gl.Ptr(token)}, gl.WithContext(ctx))
	if resp != nil && resp.StatusCode == http.StatusForbidden {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("verify runner: %w", err)
	}
	return true, nil
}

// UpdateRunner sets description, tags and run-untagged of runner id.
func (c *Client) UpdateRunner(ctx context.Context, id int64, s RunnerSpec) error {
	tags := s.Tags
	if tags == nil {
		tags = []string{}
	}
	_, _, err := c.api.Runners.UpdateRunnerDetails(id, &gl.UpdateRunnerDetailsOptions{
		Description: gl.Ptr(s.Description),
		TagList:     &tags,
		RunUntagged: gl.Ptr(s.RunUntagged),
	}, gl.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("update runner %d: %w", id, err)
	}
	return nil
}

// DeleteRunner unregisters runner id; a runner GitLab no longer has is fine.
func (c *Client) DeleteRunner(ctx context.Context, id int64) error {
	resp, err := c.api.Runners.DeleteRegisteredRunnerByID(id, gl.WithContext(ctx))
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete runner %d: %w", id, err)
	}
	return nil
}

// RunnerInfo is a runner as GitLab lists it.
type RunnerInfo struct {
	ID          int64
	Description string
	Status      string // online, offline, stale, never_contacted
}

// ListRunners returns every instance runner, following GitLab's pagination.
func (c *Client) ListRunners(ctx context.Context) ([]RunnerInfo, error) {
	var out []RunnerInfo
	opt := &gl.ListRunnersOptions{Type: gl.Ptr("instance_type"), ListOptions: gl.ListOptions{PerPage: 100, Page: 1}}
	for {
		page, resp, err := c.api.Runners.ListAllRunners(opt, gl.WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("list runners: %w", err)
		}
		for _, r := range page {
			st := r.Status
			if st == "" && r.Online {
				st = "online"
			}
			out = append(out, RunnerInfo{ID: r.ID, Description: r.Description, Status: st})
		}
		if resp == nil || resp.NextPage == 0 {
			return out, nil
		}
		opt.Page = resp.NextPage
	}
}

// ProjectID resolves a project's path ("group/project") to its id (GET /projects/:path).
func (c *Client) ProjectID(ctx context.Context, path string) (int64, error) {
	p, resp, err := c.api.Projects.GetProject(path, nil, gl.WithContext(ctx))
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return 0, fmt.Errorf("GitLab has no project %s (or root cannot see it): check the profile's project", path)
	}
	if err != nil {
		return 0, fmt.Errorf("look up project %s: %w", path, err)
	}
	return p.ID, nil
}

// GroupID resolves a group's full path ("team" or "team/sub") to its id (GET /groups/:path).
func (c *Client) GroupID(ctx context.Context, path string) (int64, error) {
	g, resp, err := c.api.Groups.GetGroup(path, &gl.GetGroupOptions{WithProjects: gl.Ptr(false)}, gl.WithContext(ctx))
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return 0, fmt.Errorf("GitLab has no group %s (or root cannot see it): check the profile's group", path)
	}
	if err != nil {
		return 0, fmt.Errorf("look up group %s: %w", path, err)
	}
	return g.ID, nil
}
