package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// requiredExtensions must exist in GitLab's database; the GitLab role cannot create amcheck
// (untrusted), and GitLab's structure load fails without them (docs/gitlab-contract.md §3.2).
var requiredExtensions = []string{"pg_trgm", "btree_gist", "amcheck"}

// connTimeout bounds one connection attempt.
const connTimeout = 5 * time.Second

func pgConfig(c Config) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig("sslmode=disable")
	if err != nil {
		return nil, err
	}
	cfg.Host = c.DBHost
	cfg.Port = uint16(c.DBPort)
	cfg.User = c.DBUser
	cfg.Password = c.DBPassword
	cfg.Database = c.DBName
	cfg.ConnectTimeout = connTimeout
	cfg.RuntimeParams["application_name"] = "forgebox-gitlab-standin"
	return cfg, nil
}

// retryable tells network trouble and a starting server (worth waiting for, as the real
// entrypoint's pg_isready loop does) from a refused login (fatal at once, as its psql is).
func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "57P03" || strings.HasPrefix(pe.Code, "08") // cannot_connect_now, connection_exception
	}
	return true
}

// explainPG turns a login error into the words GitLab's operators would search for.
func explainPG(c Config, err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "28000", "28P01":
			return fmt.Sprintf("PostgreSQL refused the login of role %q (%s): check DB_USER/DB_PASS and the role", c.DBUser, pe.Message)
		case "3D000":
			return fmt.Sprintf("PostgreSQL: %s: the database must be created before GitLab's first boot", pe.Message)
		}
		return fmt.Sprintf("PostgreSQL: %s (SQLSTATE %s)", pe.Message, pe.Code)
	}
	return err.Error()
}

// connectWithRetry logs in as GitLab's role, waiting up to wait for the server to answer.
func connectWithRetry(ctx context.Context, c Config, wait time.Duration, logf func(string, ...any)) (*pgx.Conn, error) {
	cfg, err := pgConfig(c)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for attempt := 1; ; attempt++ {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			return conn, nil
		}
		if !retryable(err) || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("cannot log in to PostgreSQL at %s as %q, database %q: %s",
				net.JoinHostPort(c.DBHost, strconv.Itoa(c.DBPort)), c.DBUser, c.DBName, explainPG(c, err))
		}
		if attempt == 1 || attempt%5 == 0 {
			logf("waiting for PostgreSQL at %s: %v", net.JoinHostPort(c.DBHost, strconv.Itoa(c.DBPort)), err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// minPostgres is the oldest PostgreSQL major each GitLab major accepts (docs/gitlab-contract.md §3.1).
func minPostgres(gitlabVersion string) int {
	major, _ := strconv.Atoi(strings.SplitN(gitlabVersion, ".", 2)[0])
	switch {
	case major >= 19:
		return 17
	case major == 18:
		return 16
	case major == 17:
		return 14
	default:
		return 13
	}
}

// checkDatabase refuses a database GitLab could not use: a superuser role, a database the role
// neither owns nor can create tables in, missing extensions, a too-old server, and (sameersbn,
// first boot only) a role without CREATEDB, which the image's db:setup needs for db:create.
func checkDatabase(ctx context.Context, conn *pgx.Conn, c Config) (firstBoot bool, err error) {
	var (
		super, createdb bool
		owner           string
		canCreate       bool
		serverNum       int
	)
	err = conn.QueryRow(ctx, `
		SELECT r.rolsuper, r.rolcreatedb, pg_get_userbyid(d.datdba),
		       has_schema_privilege(current_user, 'public', 'CREATE'),
		       current_setting('server_version_num')::int
		FROM pg_roles r, pg_database d
		WHERE r.rolname = current_user AND d.datname = current_database()`).
		Scan(&super, &createdb, &owner, &canCreate, &serverNum)
	if err != nil {
		return false, fmt.Errorf("inspect role and database: %w", err)
	}
	var problems []string
	if super {
		problems = append(problems, fmt.Sprintf("role %q is a superuser: GitLab's role must not be one (provision it NOSUPERUSER)", c.DBUser))
	}
	if owner != c.DBUser && !canCreate {
		problems = append(problems, fmt.Sprintf("database %q is owned by %q and role %q cannot create tables in schema public (on PostgreSQL 15+ make the role the database owner)", c.DBName, owner, c.DBUser))
	}
	if min := minPostgres(c.Version); serverNum/10000 < min {
		problems = append(problems, fmt.Sprintf("PostgreSQL %d is older than %d, the minimum for GitLab %s", serverNum/10000, min, c.Version))
	}
	rows, err := conn.Query(ctx, `SELECT extname FROM pg_extension`)
	if err != nil {
		return false, fmt.Errorf("list extensions: %w", err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, fmt.Errorf("list extensions: %w", err)
	}
	var missing []string
	for _, e := range requiredExtensions {
		if !contains(have, e) {
			missing = append(missing, e)
		}
	}
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("extensions missing in database %q: %s (a superuser must CREATE EXTENSION them before GitLab's first boot; amcheck is untrusted)", c.DBName, strings.Join(missing, ", ")))
	}
	var tables int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'`).Scan(&tables); err != nil {
		return false, fmt.Errorf("count tables: %w", err)
	}
	firstBoot = tables == 0
	if firstBoot && c.Flavour == flavourSameersbn && !createdb && !super {
		problems = append(problems, fmt.Sprintf("role %q lacks CREATEDB: on first boot the image runs db:setup, which starts with db:create", c.DBUser))
	}
	if len(problems) > 0 {
		return firstBoot, errors.New(strings.Join(problems, "; "))
	}
	return firstBoot, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// schema is the stand-in's own state, in GitLab's database as GitLab's role, so that it survives
// restarts and recreation of the container exactly as GitLab's would.
const schema = `
CREATE TABLE IF NOT EXISTS standin_users (
	id         bigserial PRIMARY KEY,
	username   text NOT NULL UNIQUE,
	name       text NOT NULL,
	email      text NOT NULL,
	is_admin   boolean NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS standin_personal_access_tokens (
	id           bigserial PRIMARY KEY,
	user_id      bigint NOT NULL REFERENCES standin_users(id),
	name         text NOT NULL,
	token_digest text NOT NULL UNIQUE,
	scopes       text[] NOT NULL,
	expires_at   date NOT NULL,
	revoked      boolean NOT NULL DEFAULT false,
	created_at   timestamptz NOT NULL DEFAULT now(),
	last_used_at timestamptz
);
CREATE TABLE IF NOT EXISTS standin_runners (
	id               bigserial PRIMARY KEY,
	token            text NOT NULL UNIQUE,
	description      text NOT NULL DEFAULT '',
	tag_list         text[] NOT NULL DEFAULT '{}',
	run_untagged     boolean NOT NULL,
	locked           boolean NOT NULL,
	paused           boolean NOT NULL,
	runner_type      text NOT NULL,
	access_level     text NOT NULL,
	maximum_timeout  bigint,
	maintenance_note text NOT NULL DEFAULT '',
	created_at       timestamptz NOT NULL DEFAULT now(),
	contacted_at     timestamptz,
	token_expires_at timestamptz
);
ALTER TABLE standin_runners ADD COLUMN IF NOT EXISTS token_expires_at timestamptz;
ALTER TABLE standin_runners ADD COLUMN IF NOT EXISTS project_id bigint;
ALTER TABLE standin_runners ADD COLUMN IF NOT EXISTS group_id bigint;
CREATE TABLE IF NOT EXISTS standin_fetches (
	id          bigserial PRIMARY KEY,
	at          timestamptz NOT NULL DEFAULT now(),
	remote_addr text NOT NULL,
	user_agent  text NOT NULL,
	runner_id   bigint,
	host        text NOT NULL,
	path        text NOT NULL
);`

// migrate creates the stand-in's tables and, on first boot, the root user.
func migrate(ctx context.Context, conn *pgx.Conn, c Config) (createdRoot bool, err error) {
	if err := createSchema(ctx, conn); err != nil {
		return false, err
	}
	return seedRoot(ctx, conn, c)
}

// createSchema creates the stand-in's tables (GitLab's schema load, or its migrations).
func createSchema(ctx context.Context, conn *pgx.Conn) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7245031)`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, schema); err != nil {
		return fmt.Errorf("create stand-in tables: %w", err)
	}
	return tx.Commit(ctx)
}

// seedRoot adds the root user when it is missing (the seed at the end of gitlab:setup).
func seedRoot(ctx context.Context, conn *pgx.Conn, c Config) (createdRoot bool, err error) {
	tag, err := conn.Exec(ctx, `INSERT INTO standin_users (username, name, email, is_admin)
		VALUES ('root', 'Administrator', $1, true) ON CONFLICT (username) DO NOTHING`, c.RootEmail)
	if err != nil {
		return false, fmt.Errorf("seed root: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// pool is a small set of connections for the HTTP handlers (pgxpool would add a module).
type pool struct {
	cfg  *pgx.ConnConfig
	mu   sync.Mutex
	idle []*pgx.Conn
}

func newPool(c Config) (*pool, error) {
	cfg, err := pgConfig(c)
	if err != nil {
		return nil, err
	}
	return &pool{cfg: cfg}, nil
}

// with runs fn on a connection; a connection that failed is closed rather than reused.
func (p *pool) with(ctx context.Context, fn func(*pgx.Conn) error) error {
	p.mu.Lock()
	var conn *pgx.Conn
	if n := len(p.idle); n > 0 {
		conn, p.idle = p.idle[n-1], p.idle[:n-1]
	}
	p.mu.Unlock()
	if conn == nil {
		var err error
		if conn, err = pgx.ConnectConfig(ctx, p.cfg); err != nil {
			return err
		}
	}
	err := fn(conn)
	if err != nil && (conn.IsClosed() || !isPgError(err)) {
		conn.Close(context.Background())
		return err
	}
	p.mu.Lock()
	if len(p.idle) < 4 {
		p.idle = append(p.idle, conn)
		conn = nil
	}
	p.mu.Unlock()
	if conn != nil {
		conn.Close(context.Background())
	}
	return err
}

func isPgError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) || errors.Is(err, pgx.ErrNoRows)
}
