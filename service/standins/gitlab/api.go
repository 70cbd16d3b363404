package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// Error bodies as GitLab's API writes them.
func apiMessage(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"message": msg})
}

func apiParamError(w http.ResponseWriter, err error) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
}

func (s *server) internalError(w http.ResponseWriter, what string, err error) {
	s.logf("error: %s: %v", what, err)
	apiMessage(w, http.StatusInternalServerError, "500 Internal Server Error")
}

const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomToken returns prefix and n random alphanumerics.
func randomToken(prefix string, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = tokenAlphabet[int(b[i])%len(tokenAlphabet)]
	}
	return prefix + string(b)
}

func digest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// principal is the user behind a personal access token.
type principal struct {
	UserID   int64
	Username string
	Admin    bool
	Scopes   []string
}

func requestToken(r *http.Request) string {
	if t := r.Header.Get("PRIVATE-TOKEN"); t != "" {
		return t
	}
	if a := r.Header.Get("Authorization"); a != "" {
		if t, ok := strings.CutPrefix(a, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
	}
	return r.URL.Query().Get("private_token")
}

// authenticate answers 401 unless the request carries a valid, unexpired, unrevoked token.
func (s *server) authenticate(w http.ResponseWriter, r *http.Request) (*principal, bool) {
	tok := requestToken(r)
	if tok == "" {
		apiMessage(w, http.StatusUnauthorized, "401 Unauthorized")
		return nil, false
	}
	var (
		p       principal
		tokID   int64
		expires time.Time
		revoked bool
	)
	err := s.db.with(r.Context(), func(c *pgx.Conn) error {
		err := c.QueryRow(r.Context(), `
			SELECT t.id, t.scopes, t.expires_at, t.revoked, u.id, u.username, u.is_admin
			FROM standin_personal_access_tokens t JOIN standin_users u ON u.id = t.user_id
			WHERE t.token_digest = $1`, digest(tok)).
			Scan(&tokID, &p.Scopes, &expires, &revoked, &p.UserID, &p.Username, &p.Admin)
		if err != nil {
			return err
		}
		_, err = c.Exec(r.Context(), `UPDATE standin_personal_access_tokens SET last_used_at = now() WHERE id = $1`, tokID)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		apiMessage(w, http.StatusUnauthorized, "401 Unauthorized")
		return nil, false
	}
	if err != nil {
		s.internalError(w, "look up token", err)
		return nil, false
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	if revoked || !expires.After(today) {
		// GitLab says why in the WWW-Authenticate header; the body is the plain 401.
		w.Header().Set("WWW-Authenticate", `Bearer realm="", error="invalid_token", error_description="Token has expired or was revoked."`)
		apiMessage(w, http.StatusUnauthorized, "401 Unauthorized")
		return nil, false
	}
	return &p, true
}

// requireScope answers 403 insufficient_scope unless the token has one of scopes.
func requireScope(w http.ResponseWriter, p *principal, scopes ...string) bool {
	for _, s := range scopes {
		if contains(p.Scopes, s) {
			return true
		}
	}
	writeJSON(w, http.StatusForbidden, map[string]any{
		"error":             "insufficient_scope",
		"error_description": "The request requires higher privileges than provided by the access token.",
		"scope":             strings.Join(scopes, " "),
	})
	return false
}

// requireAdmin answers 403 unless the user is an admin and, while the instance's Admin Mode is
// on, the token has the admin_mode scope: GitLab's API treats an admin's token without it as a
// regular user's (gitlabhq lib/api/api_guard.rb: a token with admin_mode bypasses the session's
// admin mode; lib/api/helpers.rb authenticated_as_admin! wants can_admin_all_resources?).
func (s *server) requireAdmin(w http.ResponseWriter, p *principal) bool {
	if !p.Admin || s.cfg.AdminMode && !contains(p.Scopes, "admin_mode") {
		apiMessage(w, http.StatusForbidden, "403 Forbidden")
		return false
	}
	return true
}

// authAs authenticates, then checks scopes and, when admin is set, that the user is an admin.
func (s *server) authAs(w http.ResponseWriter, r *http.Request, admin bool, scopes ...string) (*principal, bool) {
	p, ok := s.authenticate(w, r)
	if !ok || !requireScope(w, p, scopes...) {
		return nil, false
	}
	if admin && !s.requireAdmin(w, p) {
		return nil, false
	}
	return p, true
}

func (s *server) handleVersion(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authAs(w, r, false, "api", "read_api", "read_user"); !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"version": s.cfg.Version, "revision": "standin"})
}

func (s *server) handleUser(w http.ResponseWriter, r *http.Request) {
	p, ok := s.authAs(w, r, false, "api", "read_api", "read_user")
	if !ok {
		return
	}
	var (
		name, email string
		created     time.Time
	)
	err := s.db.with(r.Context(), func(c *pgx.Conn) error {
		return c.QueryRow(r.Context(), `SELECT name, email, created_at FROM standin_users WHERE id = $1`, p.UserID).
			Scan(&name, &email, &created)
	})
	if err != nil {
		s.internalError(w, "load user", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": p.UserID, "username": p.Username, "name": name, "state": "active", "locked": false,
		"avatar_url": nil, "web_url": s.cfg.ExternalURL() + "/" + p.Username,
		"created_at": created.UTC().Format(time.RFC3339Nano), "email": email, "is_admin": p.Admin, "bot": false,
	})
}

// runner is a runner as the stand-in keeps it.
type runner struct {
	ID              int64
	Token           string
	Description     string
	TagList         []string
	RunUntagged     bool
	Locked          bool
	Paused          bool
	RunnerType      string
	AccessLevel     string
	MaximumTimeout  *int64
	MaintenanceNote string
	CreatedAt       time.Time
	ContactedAt     *time.Time
	TokenExpiresAt  *time.Time
}

// timeOrNil is a time as GitLab's API writes it (ISO 8601, UTC, milliseconds), or null.
func timeOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

const runnerColumns = `id, token, description, tag_list, run_untagged, locked, paused, runner_type,
	access_level, maximum_timeout, maintenance_note, created_at, contacted_at`

func scanRunner(row pgx.Row) (runner, error) {
	var r runner
	err := row.Scan(&r.ID, &r.Token, &r.Description, &r.TagList, &r.RunUntagged, &r.Locked, &r.Paused,
		&r.RunnerType, &r.AccessLevel, &r.MaximumTimeout, &r.MaintenanceNote, &r.CreatedAt, &r.ContactedAt)
	return r, err
}

// status follows GitLab: online when contacted in the last 2 hours, stale after 7 days.
func (r runner) status(now time.Time) string {
	switch {
	case r.ContactedAt == nil && now.Sub(r.CreatedAt) > 7*24*time.Hour:
		return "stale"
	case r.ContactedAt == nil:
		return "never_contacted"
	case now.Sub(*r.ContactedAt) <= 2*time.Hour:
		return "online"
	case now.Sub(*r.ContactedAt) > 7*24*time.Hour:
		return "stale"
	default:
		return "offline"
	}
}

func (r runner) listJSON(now time.Time) map[string]any {
	st := r.status(now)
	return map[string]any{
		"id": r.ID, "description": r.Description, "active": !r.Paused, "paused": r.Paused,
		"is_shared": r.RunnerType == "instance_type", "runner_type": r.RunnerType, "name": nil,
		"online": st == "online", "status": st, "ip_address": "",
		"created_at": r.CreatedAt.UTC().Format(time.RFC3339Nano),
	}
}

func (r runner) detailsJSON(now time.Time) map[string]any {
	m := r.listJSON(now)
	m["tag_list"] = r.TagList
	m["run_untagged"] = r.RunUntagged
	m["locked"] = r.Locked
	m["access_level"] = r.AccessLevel
	m["maximum_timeout"] = r.MaximumTimeout
	m["maintenance_note"] = nilIfEmpty(r.MaintenanceNote)
	m["contacted_at"] = nil
	if r.ContactedAt != nil {
		m["contacted_at"] = r.ContactedAt.UTC().Format(time.RFC3339Nano)
	}
	m["architecture"], m["platform"], m["revision"], m["version"] = nil, nil, nil, nil
	m["projects"], m["groups"] = []any{}, []any{}
	return m
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

var accessLevels = []string{"not_protected", "ref_protected"}

// applyRunnerParams sets the optional runner attributes present in p; used by create and update.
func applyRunnerParams(r *runner, p params) (map[string][]string, error) {
	var err error
	if p.has("description") {
		if r.Description, err = p.str("description"); err != nil {
			return nil, err
		}
	}
	if p.has("maintenance_note") {
		if r.MaintenanceNote, err = p.str("maintenance_note"); err != nil {
			return nil, err
		}
		if len(r.MaintenanceNote) > 1024 {
			return nil, &badParam{"maintenance_note is too long (maximum is 1024 characters)"}
		}
	}
	if p.has("tag_list") {
		if r.TagList, err = p.strList("tag_list"); err != nil {
			return nil, err
		}
	}
	if r.RunUntagged, err = p.boolean("run_untagged", r.RunUntagged); err != nil {
		return nil, err
	}
	if r.Locked, err = p.boolean("locked", r.Locked); err != nil {
		return nil, err
	}
	if p.has("active") { // deprecated inverse of paused
		active, err := p.boolean("active", !r.Paused)
		if err != nil {
			return nil, err
		}
		r.Paused = !active
	}
	if r.Paused, err = p.boolean("paused", r.Paused); err != nil {
		return nil, err
	}
	if p.has("access_level") {
		if r.AccessLevel, err = p.oneOf("access_level", accessLevels...); err != nil {
			return nil, err
		}
	}
	if p.has("maximum_timeout") {
		if r.MaximumTimeout, err = p.integer("maximum_timeout"); err != nil {
			return nil, err
		}
	}
	// Model validations (Ci::Runner), answered as 400 {"message": {attr: [...]}}.
	invalid := map[string][]string{}
	if r.MaximumTimeout != nil && *r.MaximumTimeout < 600 {
		invalid["maximum_timeout"] = []string{"needs to be at least 10 minutes"}
	}
	if !r.RunUntagged && len(r.TagList) == 0 {
		invalid["tags_list"] = []string{"can not be empty when runner is not allowed to pick untagged jobs"}
	}
	if len(invalid) > 0 {
		return invalid, nil
	}
	return nil, nil
}

// handleCreateRunner is POST /api/v4/user/runners.
func (s *server) handleCreateRunner(w http.ResponseWriter, r *http.Request) {
	pr, ok := s.authAs(w, r, false, "api", "create_runner")
	if !ok {
		return
	}
	p, err := readParams(r)
	if err != nil {
		apiParamError(w, err)
		return
	}
	if !p.has("runner_type") {
		apiParamError(w, &badParam{"runner_type is missing"})
		return
	}
	rt, err := p.oneOf("runner_type", "instance_type", "group_type", "project_type")
	if err != nil || rt == "" {
		apiParamError(w, &badParam{"runner_type does not have a valid value"})
		return
	}
	switch rt {
	case "instance_type":
		if !s.requireAdmin(w, pr) {
			return
		}
	case "group_type", "project_type":
		k := map[string]string{"group_type": "group_id", "project_type": "project_id"}[rt]
		if !p.has(k) {
			apiParamError(w, &badParam{k + " is missing"})
			return
		}
	}
	// A group runner belongs to one existing group (gitlabhq lib/api/users.rb POST /user/runners:
	// group_id required for group_type; 404 for a group the user cannot see). The stand-in does
	// not check the group Owner role the docs ask for: root, the only user, is an admin.
	var groupID *int64
	if rt == "group_type" {
		raw, _ := p.str("group_id")
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id <= 0 {
			apiParamError(w, &badParam{"group_id is invalid"})
			return
		}
		var found int64
		err = s.db.with(r.Context(), func(c *pgx.Conn) error {
			return c.QueryRow(r.Context(), `SELECT id FROM standin_groups WHERE id = $1`, id).Scan(&found)
		})
		if err != nil {
			apiMessage(w, http.StatusNotFound, "404 Group Not Found")
			return
		}
		groupID = &found
	}
	// A project runner belongs to one existing project (gitlabhq lib/api/users.rb POST
	// /user/runners: project_id required for project_type; 404 for a project the user cannot see).
	var projectID *int64
	if rt == "project_type" {
		raw, _ := p.str("project_id")
		var id int64
		if _, err := fmt.Sscan(raw, &id); err != nil || id <= 0 {
			apiParamError(w, &badParam{"project_id is invalid"})
			return
		}
		var found int64
		err := s.db.with(r.Context(), func(c *pgx.Conn) error {
			return c.QueryRow(r.Context(), `SELECT id FROM standin_projects WHERE id = $1`, id).Scan(&found)
		})
		if err != nil {
			apiMessage(w, http.StatusNotFound, "404 Project Not Found")
			return
		}
		projectID = &found
	}
	run := runner{RunnerType: rt, RunUntagged: true, AccessLevel: "not_protected", TagList: []string{},
		Token: randomToken("glrt-", 20)}
	if d := s.cfg.RunnerTokenExpiresIn; d > 0 {
		exp := time.Now().Add(d).UTC().Truncate(time.Second)
		run.TokenExpiresAt = &exp
	}
	invalid, err := applyRunnerParams(&run, p)
	if err != nil {
		apiParamError(w, err)
		return
	}
	if invalid != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": invalid})
		return
	}
	err = s.db.with(r.Context(), func(c *pgx.Conn) error {
		return c.QueryRow(r.Context(), `
			INSERT INTO standin_runners (token, description, tag_list, run_untagged, locked, paused,
				runner_type, access_level, maximum_timeout, maintenance_note, token_expires_at, project_id, group_id)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) RETURNING id`,
			run.Token, run.Description, run.TagList, run.RunUntagged, run.Locked, run.Paused,
			run.RunnerType, run.AccessLevel, run.MaximumTimeout, run.MaintenanceNote, run.TokenExpiresAt, projectID, groupID).Scan(&run.ID)
	})
	if err != nil {
		s.internalError(w, "create runner", err)
		return
	}
	s.logf("runner %d created (%s, %q, tags %v, run_untagged %v)", run.ID, run.RunnerType, run.Description, run.TagList, run.RunUntagged)
	// Entities::Ci::RunnerRegistrationDetails: id, token, token_expires_at (null unless runner
	// token expiration is configured).
	writeJSON(w, http.StatusCreated, map[string]any{"id": run.ID, "token": run.Token, "token_expires_at": timeOrNil(run.TokenExpiresAt)})
}

// handleRevokeSelf is DELETE /api/v4/personal_access_tokens/self: the token revokes itself, whatever
// its scopes (gitlabhq lib/api/personal_access_tokens/self_information.rb allows every scope;
// lib/api/helpers/personal_access_tokens_helpers.rb revoke_token answers 204, or 400 when the
// RevokeService fails). A revoked token is then refused with 401 like an expired one.
func (s *server) handleRevokeSelf(w http.ResponseWriter, r *http.Request) {
	p, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	var id int64
	err := s.db.with(r.Context(), func(c *pgx.Conn) error {
		return c.QueryRow(r.Context(), `UPDATE standin_personal_access_tokens SET revoked = true
			WHERE token_digest = $1 AND NOT revoked RETURNING id`, digest(requestToken(r))).Scan(&id)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "400 Bad request"})
		return
	}
	if err != nil {
		s.internalError(w, "revoke token", err)
		return
	}
	s.logf("personal access token %d of %s revoked by itself", id, p.Username)
	w.WriteHeader(http.StatusNoContent)
}

// runnerToken is the token of a runner-authenticated call: body/query "token" or RUNNER-TOKEN.
func runnerToken(r *http.Request, p params) string {
	if t, _ := p.str("token"); t != "" {
		return t
	}
	return r.Header.Get("RUNNER-TOKEN")
}

// handleVerify is POST /api/v4/runners/verify.
func (s *server) handleVerify(w http.ResponseWriter, r *http.Request) {
	p, err := readParams(r)
	if err != nil {
		apiParamError(w, err)
		return
	}
	tok := runnerToken(r, p)
	if tok == "" {
		apiParamError(w, &badParam{"token is missing"})
		return
	}
	if !s.secretsMatch(r.Context()) { // secrets.go: tokens are stored encrypted with db_key_base
		s.logf("runner verify from %s: token rejected (db_key_base does not match the data)", r.RemoteAddr)
		apiMessage(w, http.StatusForbidden, "403 Forbidden")
		return
	}
	var (
		id      int64
		expires *time.Time
	)
	err = s.db.with(r.Context(), func(c *pgx.Conn) error {
		return c.QueryRow(r.Context(), `UPDATE standin_runners SET contacted_at = now() WHERE token = $1 RETURNING id, token_expires_at`, tok).Scan(&id, &expires)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		s.logf("runner verify from %s: token rejected", r.RemoteAddr)
		apiMessage(w, http.StatusForbidden, "403 Forbidden")
		return
	}
	if err != nil {
		s.internalError(w, "verify runner", err)
		return
	}
	s.logf("runner %d verified from %s", id, r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "token": tok, "token_expires_at": timeOrNil(expires)})
}

// handleDeleteByToken is DELETE /api/v4/runners (runner-authenticated unregister).
func (s *server) handleDeleteByToken(w http.ResponseWriter, r *http.Request) {
	p, err := readParams(r)
	if err != nil {
		apiParamError(w, err)
		return
	}
	tok := runnerToken(r, p)
	if tok == "" {
		apiParamError(w, &badParam{"token is missing"})
		return
	}
	var id int64
	err = s.db.with(r.Context(), func(c *pgx.Conn) error {
		return c.QueryRow(r.Context(), `DELETE FROM standin_runners WHERE token = $1 RETURNING id`, tok).Scan(&id)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		apiMessage(w, http.StatusForbidden, "403 Forbidden")
		return
	}
	if err != nil {
		s.internalError(w, "delete runner", err)
		return
	}
	s.logf("runner %d unregistered by its token", id)
	w.WriteHeader(http.StatusNoContent)
}

func runnerID(r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return id, err == nil && id > 0
}

func (s *server) loadRunner(ctx context.Context, id int64) (runner, error) {
	var run runner
	err := s.db.with(ctx, func(c *pgx.Conn) error {
		var err error
		run, err = scanRunner(c.QueryRow(ctx, `SELECT `+runnerColumns+` FROM standin_runners WHERE id = $1`, id))
		return err
	})
	return run, err
}

// handleGetRunner is GET /api/v4/runners/:id (admin).
func (s *server) handleGetRunner(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authAs(w, r, true, "api", "read_api"); !ok {
		return
	}
	id, ok := runnerID(r)
	if !ok {
		apiMessage(w, http.StatusNotFound, "404 Runner Not Found")
		return
	}
	run, err := s.loadRunner(r.Context(), id)
	if errors.Is(err, pgx.ErrNoRows) {
		apiMessage(w, http.StatusNotFound, "404 Runner Not Found")
		return
	}
	if err != nil {
		s.internalError(w, "load runner", err)
		return
	}
	writeJSON(w, http.StatusOK, run.detailsJSON(time.Now()))
}

// handleUpdateRunner is PUT /api/v4/runners/:id (admin).
func (s *server) handleUpdateRunner(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authAs(w, r, true, "api"); !ok {
		return
	}
	id, ok := runnerID(r)
	if !ok {
		apiMessage(w, http.StatusNotFound, "404 Runner Not Found")
		return
	}
	p, err := readParams(r)
	if err != nil {
		apiParamError(w, err)
		return
	}
	run, err := s.loadRunner(r.Context(), id)
	if errors.Is(err, pgx.ErrNoRows) {
		apiMessage(w, http.StatusNotFound, "404 Runner Not Found")
		return
	}
	if err != nil {
		s.internalError(w, "load runner", err)
		return
	}
	invalid, err := applyRunnerParams(&run, p)
	if err != nil {
		apiParamError(w, err)
		return
	}
	if invalid != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": invalid})
		return
	}
	err = s.db.with(r.Context(), func(c *pgx.Conn) error {
		_, err := c.Exec(r.Context(), `
			UPDATE standin_runners SET description=$2, tag_list=$3, run_untagged=$4, locked=$5, paused=$6,
				access_level=$7, maximum_timeout=$8, maintenance_note=$9 WHERE id = $1`,
			run.ID, run.Description, run.TagList, run.RunUntagged, run.Locked, run.Paused,
			run.AccessLevel, run.MaximumTimeout, run.MaintenanceNote)
		return err
	})
	if err != nil {
		s.internalError(w, "update runner", err)
		return
	}
	s.logf("runner %d updated (%q, tags %v, run_untagged %v, paused %v)", run.ID, run.Description, run.TagList, run.RunUntagged, run.Paused)
	writeJSON(w, http.StatusOK, run.detailsJSON(time.Now()))
}

// handleDeleteRunner is DELETE /api/v4/runners/:id (admin).
func (s *server) handleDeleteRunner(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authAs(w, r, true, "api"); !ok {
		return
	}
	id, ok := runnerID(r)
	if !ok {
		apiMessage(w, http.StatusNotFound, "404 Runner Not Found")
		return
	}
	var n int64
	err := s.db.with(r.Context(), func(c *pgx.Conn) error {
		tag, err := c.Exec(r.Context(), `DELETE FROM standin_runners WHERE id = $1`, id)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		s.internalError(w, "delete runner", err)
		return
	}
	if n == 0 {
		apiMessage(w, http.StatusNotFound, "404 Runner Not Found")
		return
	}
	s.logf("runner %d deleted", id)
	w.WriteHeader(http.StatusNoContent)
}

// handleListRunners is GET /api/v4/runners/all (admin), paginated like GitLab (20 per page by
// default, at most 100).
func (s *server) handleListRunners(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authAs(w, r, true, "api", "read_api"); !ok {
		return
	}
	p, err := readParams(r)
	if err != nil {
		apiParamError(w, err)
		return
	}
	typ, err := p.oneOf("type", "instance_type", "group_type", "project_type")
	if err != nil {
		apiParamError(w, err)
		return
	}
	status, err := p.oneOf("status", "online", "offline", "stale", "never_contacted", "active", "paused")
	if err != nil {
		apiParamError(w, err)
		return
	}
	tags, err := p.strList("tag_list")
	if err != nil {
		apiParamError(w, err)
		return
	}
	var paused *bool
	if p.has("paused") {
		b, err := p.boolean("paused", false)
		if err != nil {
			apiParamError(w, err)
			return
		}
		paused = &b
	}
	page, perPage := int64(1), int64(20)
	if v, err := p.integer("page"); err != nil {
		apiParamError(w, err)
		return
	} else if v != nil && *v > 0 {
		page = *v
	}
	if v, err := p.integer("per_page"); err != nil {
		apiParamError(w, err)
		return
	} else if v != nil && *v > 0 {
		perPage = min(*v, 100)
	}

	var all []runner
	err = s.db.with(r.Context(), func(c *pgx.Conn) error {
		rows, err := c.Query(r.Context(), `SELECT `+runnerColumns+` FROM standin_runners ORDER BY id DESC`)
		if err != nil {
			return err
		}
		all, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (runner, error) { return scanRunner(row) })
		return err
	})
	if err != nil {
		s.internalError(w, "list runners", err)
		return
	}
	now := time.Now()
	var match []map[string]any
	for _, run := range all {
		st := run.status(now)
		switch {
		case typ != "" && run.RunnerType != typ,
			paused != nil && run.Paused != *paused,
			status == "active" && run.Paused, status == "paused" && !run.Paused,
			status != "" && status != "active" && status != "paused" && st != status:
			continue
		}
		if !hasAll(run.TagList, tags) {
			continue
		}
		match = append(match, run.listJSON(now))
	}
	total := int64(len(match))
	pages := max((total+perPage-1)/perPage, 1)
	lo, hi := min((page-1)*perPage, total), min(page*perPage, total)
	h := w.Header()
	h.Set("X-Page", strconv.FormatInt(page, 10))
	h.Set("X-Per-Page", strconv.FormatInt(perPage, 10))
	h.Set("X-Total", strconv.FormatInt(total, 10))
	h.Set("X-Total-Pages", strconv.FormatInt(pages, 10))
	h.Set("X-Next-Page", "")
	if page < pages {
		h.Set("X-Next-Page", strconv.FormatInt(page+1, 10))
	}
	h.Set("X-Prev-Page", "")
	if page > 1 {
		h.Set("X-Prev-Page", strconv.FormatInt(page-1, 10))
	}
	out := match[lo:hi]
	if out == nil {
		out = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, out)
}

func hasAll(have, want []string) bool {
	for _, t := range want {
		if !contains(have, t) {
			return false
		}
	}
	return true
}

// gitProbePath is /<namespace>[/<subgroup>...]/<project>.git/info/refs.
var gitProbePath = regexp.MustCompile(`^/([A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+)\.git/info/refs$`)

// FetchHeader is the header the runner stand-in's job sends with its runner id.
const FetchHeader = "X-Forgebox-Standin-Runner"

// handleGitInfoRefs answers the first request of a smart-HTTP clone or fetch with an empty
// repository's advertisement, and logs who asked (time, address, user agent, runner).
func (s *server) handleGitInfoRefs(w http.ResponseWriter, r *http.Request) {
	m := gitProbePath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		http.NotFound(w, r)
		return
	}
	if r.URL.Query().Get("service") != "git-upload-pack" {
		http.Error(w, "the stand-in serves only smart HTTP git-upload-pack", http.StatusForbidden)
		return
	}
	if ok, err := s.gitAuthorized(r, m[1]); err != nil {
		s.internalError(w, "check the job token", err)
		return
	} else if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="GitLab"`)
		http.Error(w, "HTTP Basic: Access denied", http.StatusUnauthorized)
		return
	}
	var runnerID *int64
	rid := r.Header.Get(FetchHeader)
	if rid == "" {
		rid = r.URL.Query().Get("standin_runner")
	}
	if rid != "" {
		if n, err := strconv.ParseInt(rid, 10, 64); err == nil {
			runnerID = &n
		}
	}
	remote := r.RemoteAddr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		remote = ap.Addr().Unmap().String()
	}
	err := s.db.with(r.Context(), func(c *pgx.Conn) error {
		_, err := c.Exec(r.Context(), `INSERT INTO standin_fetches (remote_addr, user_agent, runner_id, host, path)
			VALUES ($1, $2, $3, $4, $5)`, remote, r.UserAgent(), runnerID, r.Host, r.URL.Path)
		return err
	})
	if err != nil {
		s.internalError(w, "record fetch", err)
		return
	}
	s.logf("git fetch of %s from %s (runner %s, %q)", m[1], remote, orDefault(rid, "-"), r.UserAgent())
	w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	w.Write(uploadPackAdvertisement())
}

// pktLine frames s as a git pkt-line.
func pktLine(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

// uploadPackAdvertisement is what git-http-backend sends for an empty repository.
func uploadPackAdvertisement() []byte {
	var b strings.Builder
	b.WriteString(pktLine("# service=git-upload-pack\n"))
	b.WriteString("0000")
	b.WriteString(pktLine(strings.Repeat("0", 40) + " capabilities^{}\x00multi_ack thin-pack side-band side-band-64k ofs-delta shallow no-progress include-tag multi_ack_detailed no-done object-format=sha1 agent=forgebox-gitlab-standin\n"))
	b.WriteString("0000")
	return []byte(b.String())
}

// handleFetches is GET /api/v4/standin/fetches (admin): the fetch log. Stand-in only: real
// GitLab has no such endpoint.
func (s *server) handleFetches(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authAs(w, r, true, "api", "read_api"); !ok {
		return
	}
	type fetch struct {
		ID         int64     `json:"id"`
		At         time.Time `json:"at"`
		RemoteAddr string    `json:"remote_addr"`
		UserAgent  string    `json:"user_agent"`
		RunnerID   *int64    `json:"runner_id"`
		Host       string    `json:"host"`
		Path       string    `json:"path"`
	}
	out := []fetch{}
	err := s.db.with(r.Context(), func(c *pgx.Conn) error {
		rows, err := c.Query(r.Context(), `SELECT id, at, remote_addr, user_agent, runner_id, host, path FROM standin_fetches ORDER BY id`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var f fetch
			if err := rows.Scan(&f.ID, &f.At, &f.RemoteAddr, &f.UserAgent, &f.RunnerID, &f.Host, &f.Path); err != nil {
				return err
			}
			out = append(out, f)
		}
		return rows.Err()
	})
	if err != nil {
		s.internalError(w, "list fetches", err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// gitAuthorized decides a clone of one of the stand-in's projects (they are private) as GitLab
// does for a CI job (gitlabhq lib/gitlab/auth.rb, build_access_token_check): HTTP basic user
// gitlab-ci-token with the token of a job that is running, here of the project cloned. A path
// that is no project of the stand-in (the runner stand-in's probe repository) stays open.
func (s *server) gitAuthorized(r *http.Request, projectPath string) (bool, error) {
	var project int64
	err := s.db.with(r.Context(), func(c *pgx.Conn) error {
		return c.QueryRow(r.Context(), `SELECT id FROM standin_projects WHERE path = $1`, projectPath).Scan(&project)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	user, token, ok := r.BasicAuth()
	if !ok || user != "gitlab-ci-token" || token == "" {
		return false, nil
	}
	var n int
	err = s.db.with(r.Context(), func(c *pgx.Conn) error {
		return c.QueryRow(r.Context(), `SELECT count(*) FROM standin_jobs WHERE project_id = $1 AND token_digest = $2 AND status = $3`,
			project, digest(token), stRunning).Scan(&n)
	})
	return n > 0, err
}
