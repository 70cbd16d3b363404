package backup

// GitLab's database, dumped and restored by the PostgreSQL container's own pg_dump and
// pg_restore (design decision of 2026-12-03): they are always the server's major, so no GitLab
// image's bundled client decides whether a backup works. GitLab's own pg_dump refuses a newer
// server ("aborting because of server version mismatch"), and which client an image bundles
// moves with each release (docs/gitlab-contract.md §1.5, §2.4 and §3.1).
//
// The dump is pg_dump's custom format, taken as the superuser. A restore loads it into a new,
// empty database owned by GitLab's role, as the superuser, so every object keeps its owner
// (the role) and the extensions are created as they were; only when that load succeeded is the
// new database swapped in under GitLab's database name and the old one dropped. So a failed
// load leaves GitLab's database as it was. GitLab's restore drops every table before it loads
// its dump (gitlabhq lib/tasks/gitlab/db.rake drop_tables) for the same reason: nothing newer
// may stay behind from a failed upgrade; a fresh database has nothing to drop.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/msg"
	"github.com/forgebox/forgebox/service/internal/pgprov"
	"github.com/forgebox/forgebox/service/internal/stack"
)

// MemberDatabase is GitLab's database in the archive (pg_dump custom format).
const MemberDatabase = "postgres/" + stack.GitLabDatabase + ".dump"

// dbWorkDir is below PostgreSQL's bind-mounted data directory, outside PGDATA: the dump and the
// password file, for the postgres container's own tools.
const dbWorkDir = stack.PostgresMount + "/forgebox-backup"

// restoreDatabaseName is where a restore loads the dump before it is swapped in.
const restoreDatabaseName = stack.GitLabDatabase + "_forgebox_restore"

// DumpTimeout bounds pg_dump and pg_restore.
var DumpTimeout = 6 * time.Hour

var clientVersion = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.\d+)?`)

// dbWork is the work directory on the host and in the container, with the password file.
type dbWork struct {
	host, inContainer string
	t                 pgprov.Target
}

// openDBWork creates the work directory (an interrupted run's is forgebox's own: removed) and
// writes the superuser's password file into it, mode 0600.
func openDBWork(ctx context.Context, x *stack.Session) (*dbWork, error) {
	t, err := x.PostgresTarget(ctx)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL must run: %w", err)
	}
	host, err := x.HostPath("postgres", dbWorkDir)
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(host); err != nil {
		return nil, fmt.Errorf("remove %s, left by an interrupted backup or restore: %w", host, err)
	}
	if err := os.MkdirAll(host, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", host, err)
	}
	pass := fmt.Sprintf("127.0.0.1:%d:*:%s:%s\n", t.Port, pgpassEscape(t.Superuser), pgpassEscape(t.SuperPassword))
	if err := os.WriteFile(filepath.Join(host, "pgpass"), []byte(pass), 0o600); err != nil {
		os.RemoveAll(host)
		return nil, fmt.Errorf("write the password file: %w", err)
	}
	return &dbWork{host: host, inContainer: dbWorkDir, t: t}, nil
}

func (w *dbWork) close() { os.RemoveAll(w.host) }

// conninfo reaches db on the container's own server as the superuser, password from the file.
func (w *dbWork) conninfo(db string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s passfile=%s/pgpass sslmode=disable",
		w.t.Port, conninfoQuote(w.t.Superuser), conninfoQuote(db), w.inContainer)
}

// execPostgres runs cmd in the postgres container and fails with the end of its output.
func execPostgres(ctx context.Context, x *stack.Session, cmd []string) (string, error) {
	res, err := x.Exec(ctx, "postgres", "", cmd)
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return res.Stdout, fmt.Errorf("%s: exit code %d: %s", cmd[0], res.ExitCode, stack.LastLines(res.Stderr+"\n"+res.Stdout, 8))
	}
	return res.Stdout, nil
}

// postgresClient checks that the postgres container's pg_dump is at least the server's major
// (it always is in the official image; a custom image might not be) and names it.
func postgresClient(ctx context.Context, x *stack.Session, tool string, serverMajor int) (string, error) {
	out, err := execPostgres(ctx, x, []string{tool, "--version"})
	if err != nil {
		return "", fmt.Errorf("the PostgreSQL container has no usable %s: %w", tool, err)
	}
	version := strings.TrimSpace(out)
	m := clientVersion.FindStringSubmatch(version)
	if m == nil {
		return "", fmt.Errorf("%s --version in the PostgreSQL container said %q", tool, version)
	}
	if major, _ := strconv.Atoi(m[1]); major < serverMajor {
		return "", fmt.Errorf("the PostgreSQL container's %s is %s, older than its server (PostgreSQL %d): set postgres.image to an image whose tools match its server", tool, version, serverMajor)
	}
	return version, nil
}

// dumpDatabase writes GitLab's database into the work directory with the postgres container's
// pg_dump and returns the dump's host path and the pg_dump that wrote it.
func dumpDatabase(ctx context.Context, x *stack.Session, w *dbWork, serverMajor int) (string, string, error) {
	client, err := postgresClient(ctx, x, "pg_dump", serverMajor)
	if err != nil {
		return "", "", err
	}
	x.Emit(events.Event{Kind: events.KindInfo, Status: events.Working, Component: "postgres"}.With(msg.New("backup.dumping", "db", stack.GitLabDatabase, "client", msg.Raw(client))))
	name := filepath.Base(MemberDatabase)
	dctx, cancel := context.WithTimeout(ctx, DumpTimeout)
	defer cancel()
	if _, err := execPostgres(dctx, x, []string{"pg_dump", "--format=custom", "--file=" + w.inContainer + "/" + name, "--dbname=" + w.conninfo(stack.GitLabDatabase)}); err != nil {
		return "", "", fmt.Errorf("dump GitLab's database: %w", err)
	}
	return filepath.Join(w.host, name), client, nil
}

// restoreDatabase loads the dump at dumpHost (inside the work directory) into a new database
// and swaps it in for GitLab's. Nothing may be connected to GitLab's database for the swap:
// the caller stopped GitLab's processes; what is still connected is disconnected.
func restoreDatabase(ctx context.Context, x *stack.Session, w *dbWork, dumpHost string, serverMajor int) error {
	client, err := postgresClient(ctx, x, "pg_restore", serverMajor)
	if err != nil {
		return err
	}
	conn, err := connect(ctx, w.t.Host, w.t.Port, w.t.Superuser, w.t.SuperPassword, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	live := pgx.Identifier{stack.GitLabDatabase}.Sanitize()
	fresh := pgx.Identifier{restoreDatabaseName}.Sanitize()
	role := pgx.Identifier{w.t.Role}.Sanitize()
	// A database of this name is forgebox's own, left by an interrupted restore.
	if err := dropDatabase(ctx, conn, restoreDatabaseName); err != nil {
		return fmt.Errorf("remove %s, left by an interrupted restore: %w", restoreDatabaseName, err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+fresh+" OWNER "+role+" ENCODING 'UTF8' TEMPLATE template0"); err != nil {
		return fmt.Errorf("create the database to restore into: %w", err)
	}
	dropFresh := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		dropDatabase(dctx, conn, restoreDatabaseName)
	}
	x.Emit(events.Event{Kind: events.KindInfo, Status: events.Working, Component: "postgres"}.With(msg.New("restore.loading", "client", msg.Raw(client))))
	rctx, cancel := context.WithTimeout(ctx, DumpTimeout)
	_, err = execPostgres(rctx, x, []string{"pg_restore", "--exit-on-error", "--dbname=" + w.conninfo(restoreDatabaseName), w.inContainer + "/" + filepath.Base(dumpHost)})
	cancel()
	if err != nil {
		dropFresh()
		return fmt.Errorf("load the backup's database (GitLab's database was not changed): %w", err)
	}
	fconn, err := connect(ctx, w.t.Host, w.t.Port, w.t.Superuser, w.t.SuperPassword, restoreDatabaseName)
	if err != nil {
		dropFresh()
		return err
	}
	// A restored database has no planner statistics (omnibus-gitlab doc/settings/database.md).
	_, err = fconn.Exec(ctx, "ANALYZE")
	fconn.Close(context.Background())
	if err != nil {
		dropFresh()
		return fmt.Errorf("ANALYZE the restored database: %w", err)
	}

	// The swap. New connections to GitLab's database are refused first, so that nothing
	// reconnects between the disconnect and the rename.
	old := fmt.Sprintf("%s_forgebox_replaced_%d", stack.GitLabDatabase, time.Now().Unix())
	oldID := pgx.Identifier{old}.Sanitize()
	steps := []string{
		"ALTER DATABASE " + live + " WITH ALLOW_CONNECTIONS false",
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = " + pgprov.QuoteLiteral(stack.GitLabDatabase) + " AND pid <> pg_backend_pid()",
		"ALTER DATABASE " + live + " RENAME TO " + oldID,
	}
	for _, q := range steps {
		if _, err := conn.Exec(ctx, q); err != nil {
			conn.Exec(context.WithoutCancel(ctx), "ALTER DATABASE "+live+" WITH ALLOW_CONNECTIONS true")
			dropFresh()
			return fmt.Errorf("put the restored database in place (GitLab's database was not changed): %s: %w", q, err)
		}
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+fresh+" RENAME TO "+live); err != nil {
		bctx := context.WithoutCancel(ctx)
		_, e1 := conn.Exec(bctx, "ALTER DATABASE "+oldID+" RENAME TO "+live)
		_, e2 := conn.Exec(bctx, "ALTER DATABASE "+live+" WITH ALLOW_CONNECTIONS true")
		if e := errors.Join(e1, e2); e != nil {
			return fmt.Errorf("put the restored database in place: %w; then putting GitLab's database back failed too (%v): it is database %s on the stack's PostgreSQL", err, e, old)
		}
		dropFresh()
		return fmt.Errorf("put the restored database in place (GitLab's database was put back): %w", err)
	}
	// The replaced data is in the safety backup the restore took first.
	if err := dropDatabase(ctx, conn, old); err != nil {
		x.Emit(events.Event{Kind: events.KindInfo, Status: events.Warning, Component: "postgres"}.With(msg.New("restore.dropFailed", "db", old, "error", msg.Raw(err.Error()))))
	}
	// The role, its password and the extensions, as forgebox provisions them.
	if _, err := pgprov.Provision(ctx, w.t); err != nil {
		return fmt.Errorf("provision the restored database: %w", err)
	}
	return nil
}

// dropDatabase disconnects whatever is connected to name and drops it (DROP DATABASE ... WITH
// (FORCE) needs PostgreSQL 13; GitLab 15.11 runs on 12).
func dropDatabase(ctx context.Context, conn *pgx.Conn, name string) error {
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name); err != nil {
		return err
	}
	_, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize())
	return err
}

// pgpassEscape escapes ':' and '\' as the password file wants.
func pgpassEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(s)
}

// conninfoQuote quotes a conninfo value.
func conninfoQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
