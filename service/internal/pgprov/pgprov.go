// Package pgprov provisions GitLab's database with pgx, as the PostgreSQL superuser: the role
// GitLab logs in as (LOGIN and CREATEDB, never a superuser), its database, and the extensions GitLab needs
// but cannot create itself without superuser rights. Every step checks before it acts, so
// running it again, or after PostgreSQL restarted half way, is safe.
package pgprov

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/forgebox/forgebox/service/internal/msg"
)

// Extensions GitLab requires in its database (docs/gitlab-contract.md §3.2).
var Extensions = []string{"pg_trgm", "btree_gist", "amcheck"}

// Target is where and what to provision.
type Target struct {
	Host          string
	Port          int
	Superuser     string
	SuperPassword string
	Role          string
	RolePassword  string
	Database      string
	Extensions    []string
}

// State is what exists now.
type State struct {
	RoleExists      bool
	RoleSuperuser   bool
	RoleCanLogin    bool
	RoleCreateDB    bool
	RolePasswordOK  bool // the role logs in to its database with the stored password
	DatabaseExists  bool
	DatabaseOwner   string
	ExtensionsFound map[string]bool
}

// Missing lists, in words, what Provision would change; empty when nothing.
func (s State) Missing(t Target) []string {
	var out []string
	for _, g := range s.Gaps(t) {
		out = append(out, g.String())
	}
	return out
}

// Gaps is Missing as messages, for the web app's languages.
func (s State) Gaps(t Target) []msg.Msg {
	var out []msg.Msg
	switch {
	case !s.RoleExists:
		out = append(out, msg.New("pg.noRole", "role", t.Role))
	default:
		if s.RoleSuperuser {
			out = append(out, msg.New("pg.superuser", "role", t.Role))
		}
		if !s.RoleCanLogin {
			out = append(out, msg.New("pg.noLogin", "role", t.Role))
		}
		if !s.RoleCreateDB {
			out = append(out, msg.New("pg.noCreateDB", "role", t.Role))
		}
	}
	if !s.DatabaseExists {
		out = append(out, msg.New("pg.noDatabase", "db", t.Database))
	} else if s.DatabaseOwner != t.Role {
		out = append(out, msg.New("pg.owner", "db", t.Database, "owner", s.DatabaseOwner, "role", t.Role))
	}
	for _, e := range t.Extensions {
		if !s.ExtensionsFound[e] {
			out = append(out, msg.New("pg.noExtension", "ext", e, "db", t.Database))
		}
	}
	if s.RoleExists && s.DatabaseExists && !s.RolePasswordOK {
		out = append(out, msg.New("pg.password", "role", t.Role))
	}
	return out
}

func (t Target) dsn(user, password, database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     net.JoinHostPort(t.Host, strconv.Itoa(t.Port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable&connect_timeout=5",
	}
	return u.String()
}

func (t Target) connect(ctx context.Context, user, password, database string) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, t.dsn(user, password, database))
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s:%d as %s, database %s: %w", t.Host, t.Port, user, database, err)
	}
	return conn, nil
}

// Ping logs in as the superuser and runs a query: PostgreSQL serves, initialisation included.
func Ping(ctx context.Context, t Target) error {
	conn, err := t.connect(ctx, t.Superuser, t.SuperPassword, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var one int
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// Observe reads what exists, changing nothing.
func Observe(ctx context.Context, t Target) (State, error) {
	s := State{ExtensionsFound: map[string]bool{}}
	conn, err := t.connect(ctx, t.Superuser, t.SuperPassword, "postgres")
	if err != nil {
		return s, err
	}
	defer conn.Close(ctx)
	err = conn.QueryRow(ctx, `SELECT rolsuper, rolcanlogin, rolcreatedb FROM pg_roles WHERE rolname = $1`, t.Role).Scan(&s.RoleSuperuser, &s.RoleCanLogin, &s.RoleCreateDB)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return s, fmt.Errorf("look up role %s: %w", t.Role, err)
	default:
		s.RoleExists = true
	}
	err = conn.QueryRow(ctx, `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1`, t.Database).Scan(&s.DatabaseOwner)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return s, fmt.Errorf("look up database %s: %w", t.Database, err)
	default:
		s.DatabaseExists = true
	}
	if !s.DatabaseExists {
		return s, nil
	}
	db, err := t.connect(ctx, t.Superuser, t.SuperPassword, t.Database)
	if err != nil {
		return s, err
	}
	defer db.Close(ctx)
	rows, err := db.Query(ctx, `SELECT extname FROM pg_extension`)
	if err != nil {
		return s, fmt.Errorf("list extensions in %s: %w", t.Database, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return s, fmt.Errorf("list extensions in %s: %w", t.Database, err)
	}
	for _, n := range names {
		s.ExtensionsFound[n] = true
	}
	if s.RoleExists && s.RoleCanLogin {
		role, err := t.connect(ctx, t.Role, t.RolePassword, t.Database)
		if err == nil {
			s.RolePasswordOK = true
			role.Close(ctx)
		} else if !IsAuthError(err) {
			return s, err
		}
	}
	return s, nil
}

// Provision makes what is missing and reports each change. Connection failures (PostgreSQL
// restarting under it) are retried until ctx ends; every step re-checks, so nothing is done twice.
// An object that appears between a check and its create (a statement of an earlier, killed run
// that PostgreSQL was still carrying out) sends it back to check again, a few times at most.
func Provision(ctx context.Context, t Target) ([]string, error) {
	var changes []string
	looks := 0
	for attempt := 1; ; attempt++ {
		c, err := provisionOnce(ctx, t)
		changes = append(changes, c...)
		if err == nil {
			return changes, nil
		}
		if isDuplicate(err) && looks < maxLooks && ctx.Err() == nil {
			looks++
			continue
		}
		if !isConnectionError(err) || ctx.Err() != nil {
			return changes, err
		}
		select {
		case <-ctx.Done():
			return changes, fmt.Errorf("provision PostgreSQL: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(time.Duration(min(attempt, 5)) * 500 * time.Millisecond):
		}
	}
}

// maxLooks bounds how often Provision checks again after a duplicate: an earlier run leaves at
// most one statement in flight per object.
const maxLooks = 3

// LockKey is the PostgreSQL advisory lock every provisioning holds from its first check to its
// last change. A session-level lock outlives nothing: when forgebox is killed, PostgreSQL ends
// the session (after the statement it is running) and releases the lock, so the next run waits
// for that statement instead of racing it.
const LockKey int64 = 0x666f7267650001 // "forge", 1

// beforeCreate, when set (by tests), runs between a check that found role or database
// ("role", "database") missing and the statement that creates it.
var beforeCreate func(ctx context.Context, what string)

func provisionOnce(ctx context.Context, t Target) ([]string, error) {
	var changes []string
	conn, err := t.connect(ctx, t.Superuser, t.SuperPassword, "postgres")
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", LockKey); err != nil {
		return nil, fmt.Errorf("wait for the provisioning lock (another session holds it): %w", err)
	}
	role := pgx.Identifier{t.Role}.Sanitize()
	password := QuoteLiteral(t.RolePassword)

	// CREATEDB because the sameersbn image's first-run setup starts with db:create, which
	// PostgreSQL refuses without it even when the database exists (docs/gitlab-contract.md §1.4).
	var super, login, createdb bool
	err = conn.QueryRow(ctx, `SELECT rolsuper, rolcanlogin, rolcreatedb FROM pg_roles WHERE rolname = $1`, t.Role).Scan(&super, &login, &createdb)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if beforeCreate != nil {
			beforeCreate(ctx, "role")
		}
		if _, err := conn.Exec(ctx, "CREATE ROLE "+role+" LOGIN NOSUPERUSER CREATEDB NOCREATEROLE PASSWORD "+password); err != nil {
			return changes, fmt.Errorf("create role %s: %w", t.Role, err)
		}
		changes = append(changes, "created role "+t.Role)
	case err != nil:
		return changes, fmt.Errorf("look up role %s: %w", t.Role, err)
	case super || !login || !createdb:
		if _, err := conn.Exec(ctx, "ALTER ROLE "+role+" LOGIN NOSUPERUSER CREATEDB"); err != nil {
			return changes, fmt.Errorf("alter role %s: %w", t.Role, err)
		}
		changes = append(changes, "made role "+t.Role+" a login role with CREATEDB and without superuser rights")
	}

	// The password is always checked by logging in, never assumed from an earlier run: a
	// restored secrets file or a hand-made role would otherwise lock GitLab out.
	if probe, err := t.connect(ctx, t.Role, t.RolePassword, "postgres"); err == nil {
		probe.Close(ctx)
	} else if IsAuthError(err) {
		if _, err := conn.Exec(ctx, "ALTER ROLE "+role+" PASSWORD "+password); err != nil {
			return changes, fmt.Errorf("set password of role %s: %w", t.Role, err)
		}
		changes = append(changes, "set the password of role "+t.Role)
	} else {
		return changes, err
	}

	var owner string
	err = conn.QueryRow(ctx, `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1`, t.Database).Scan(&owner)
	db := pgx.Identifier{t.Database}.Sanitize()
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if beforeCreate != nil {
			beforeCreate(ctx, "database")
		}
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+db+" OWNER "+role+" ENCODING 'UTF8' TEMPLATE template0"); err != nil {
			return changes, fmt.Errorf("create database %s: %w", t.Database, err)
		}
		changes = append(changes, "created database "+t.Database)
	case err != nil:
		return changes, fmt.Errorf("look up database %s: %w", t.Database, err)
	case owner != t.Role:
		if _, err := conn.Exec(ctx, "ALTER DATABASE "+db+" OWNER TO "+role); err != nil {
			return changes, fmt.Errorf("change owner of database %s: %w", t.Database, err)
		}
		changes = append(changes, "gave database "+t.Database+" to role "+t.Role)
	}

	dbConn, err := t.connect(ctx, t.Superuser, t.SuperPassword, t.Database)
	if err != nil {
		return changes, err
	}
	defer dbConn.Close(ctx)
	for _, ext := range t.Extensions {
		var present bool
		if err := dbConn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = $1)`, ext).Scan(&present); err != nil {
			return changes, fmt.Errorf("look up extension %s: %w", ext, err)
		}
		if present {
			continue
		}
		if _, err := dbConn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS "+pgx.Identifier{ext}.Sanitize()); err != nil {
			return changes, fmt.Errorf("create extension %s in %s (is the PostgreSQL contrib package installed in the image?): %w", ext, t.Database, err)
		}
		changes = append(changes, "created extension "+ext+" in "+t.Database)
	}
	return changes, nil
}

// QuoteLiteral makes s a SQL string literal for the statements that take no parameters (CREATE
// ROLE ... PASSWORD, ALTER ROLE): quotes doubled, which is all PostgreSQL needs with
// standard_conforming_strings on (the default since 9.1). pgx keeps its literal sanitiser
// internal, so this is the one copy.
func QuoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// IsAuthError reports a refused login: 28P01 invalid_password, 28000 invalid_authorization_specification.
func IsAuthError(err error) bool {
	c := pgCode(err)
	return c == "28P01" || c == "28000"
}

// isDuplicate: another session created the object between our check and our create. 42710 is
// duplicate_object (a role), 42P04 duplicate_database; 23505 unique_violation is what a CREATE
// DATABASE or CREATE ROLE meets when the other one had not committed yet when ours checked.
func isDuplicate(err error) bool {
	c := pgCode(err)
	return c == "42710" || c == "42P04" || c == "23505"
}

// isConnectionError: the server went away or is not accepting connections yet (57P03 is
// "the database system is starting up", 57P01 admin shutdown).
func isConnectionError(err error) bool {
	if c := pgCode(err); c != "" {
		return c == "57P01" || c == "57P02" || c == "57P03" || strings.HasPrefix(c, "08")
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
