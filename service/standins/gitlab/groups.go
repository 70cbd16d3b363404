package main

// Groups in the stand-in: the namespaces that hold projects, so a group runner has something
// to belong to. GitLab's groups nest (subgroups) and a project lives in exactly one namespace,
// a group or a user's own; the stand-in keeps the same tree in standin_groups and gives each
// project its namespace_id. A group is made when a stand-in pipeline first names a project in
// it (POST /api/v4/standin/pipelines creates missing projects the same way). The first path
// segment "root" is the admin user's own namespace, not a group (gitlabhq: a personal
// namespace is a Namespaces::UserNamespace, GET /groups/root answers 404).

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ensureNamespace creates the groups on a project's path (every prefix but the project's own
// name) and returns the id of the innermost one; nil for a project in the root user's namespace.
func ensureNamespace(ctx context.Context, tx pgx.Tx, projectPath string) (*int64, error) {
	segs := strings.Split(projectPath, "/")
	if segs[0] == "root" {
		return nil, nil
	}
	var parent *int64
	for i := 1; i < len(segs); i++ {
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO standin_groups (full_path, parent_id) VALUES ($1, $2)
			ON CONFLICT (full_path) DO UPDATE SET full_path = EXCLUDED.full_path RETURNING id`,
			strings.Join(segs[:i], "/"), parent).Scan(&id); err != nil {
			return nil, err
		}
		parent = &id
	}
	return parent, nil
}

// groupID resolves :id, a number or a full path ("team" or "team/sub").
func (s *server) groupID(ctx context.Context, raw string) (int64, error) {
	var id int64
	err := s.db.with(ctx, func(c *pgx.Conn) error {
		if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
			return c.QueryRow(ctx, `SELECT id FROM standin_groups WHERE id = $1`, n).Scan(&id)
		}
		return c.QueryRow(ctx, `SELECT id FROM standin_groups WHERE full_path = $1`, raw).Scan(&id)
	})
	return id, err
}

// handleGetGroup is GET /api/v4/groups/:id, :id a number or the URL-encoded full path
// (GitLab docs api/groups.md "Get a single group"; 404 "404 Group Not Found" otherwise).
func (s *server) handleGetGroup(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authAs(w, r, false, "api", "read_api"); !ok {
		return
	}
	id, err := s.groupID(r.Context(), r.PathValue("id"))
	if errors.Is(err, pgx.ErrNoRows) {
		apiMessage(w, http.StatusNotFound, "404 Group Not Found")
		return
	}
	if err != nil {
		s.internalError(w, "find group", err)
		return
	}
	var (
		fullPath string
		parent   *int64
		created  time.Time
	)
	err = s.db.with(r.Context(), func(c *pgx.Conn) error {
		return c.QueryRow(r.Context(), `SELECT full_path, parent_id, created_at FROM standin_groups WHERE id = $1`, id).
			Scan(&fullPath, &parent, &created)
	})
	if err != nil {
		s.internalError(w, "load group", err)
		return
	}
	path := fullPath[strings.LastIndex(fullPath, "/")+1:]
	writeJSON(w, http.StatusOK, map[string]any{
		"id": id, "name": path, "path": path, "full_name": strings.ReplaceAll(fullPath, "/", " / "), "full_path": fullPath,
		"parent_id": parent, "description": "", "visibility": "private", "web_url": s.cfg.ExternalURL() + "/groups/" + fullPath,
		"avatar_url": nil, "created_at": rfc(created), "projects": []any{}, "shared_projects": []any{},
	})
}

// groupRunnerProjects is the SQL condition "the job's project is in group $N or one of its
// subgroups", for a group runner's jobs: GitLab gives a group runner the pending jobs of the
// projects whose namespace is the runner's group or a descendant of it (GitLab docs
// ci/runners/runners_scope.md "Group runners are available to all projects and subgroups in a
// group"; gitlabhq app/services/ci/queue/build_queue_service.rb builds_for_group_runner:
// Project.where(namespace_id: the groups' base_and_descendants)).
func groupRunnerProjects(param string) string {
	return `project_id IN (SELECT p.id FROM standin_projects p WHERE p.namespace_id IN (
		WITH RECURSIVE tree AS (SELECT id FROM standin_groups WHERE id = ` + param + `
			UNION ALL SELECT g.id FROM standin_groups g JOIN tree ON g.parent_id = tree.id)
		SELECT id FROM tree))`
}
