package pgprov_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/pgprov"
	"github.com/forgebox/forgebox/service/internal/stack"
	"github.com/forgebox/forgebox/service/internal/testenv"
)

// TestProvisionRaces runs provisioning against statements of other sessions that land between
// its checks and its creates, on one real PostgreSQL; each case has a role and database of its
// own, so each starts from nothing.
func TestProvisionRaces(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	base := postgres(t, ctx)
	for _, c := range []struct {
		name string
		run  func(*testing.T, context.Context, pgprov.Target)
	}{
		{"database appears", provisionLooksAgainWhenTheDatabaseAppears},
		{"role appears", provisionLooksAgainWhenTheRoleAppears},
		{"a killed run's statements", provisionWaitsForAKilledRunsStatements},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg := base
			tg.Role = "racer" + strings.ReplaceAll(c.name[:4], " ", "")
			tg.Database = tg.Role + "_db"
			tg.RolePassword = "pw-" + tg.Role
			c.run(t, ctx, tg)
		})
	}
}

// postgres brings up a throw-away stack's PostgreSQL (the real one, from the test image).
func postgres(t *testing.T, ctx context.Context) pgprov.Target {
	t.Helper()
	eng := testenv.Engine(t)
	cfg := testenv.Config(t, eng, testenv.TestImages(t))
	secrets, err := config.OpenSecrets(cfg.Stack.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stack.New(cfg, eng, secrets, stack.Options{Version: "test"}).UpComponent(ctx, "postgres"); err != nil {
		t.Fatalf("up postgres: %v", err)
	}
	list, err := eng.ListContainers(ctx, cfg.Stack.Name)
	if err != nil || len(list) != 1 {
		t.Fatalf("containers of the stack: %v, %v", list, err)
	}
	det, err := eng.Inspect(ctx, list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	super, err := secrets.Ensure(config.SecretPostgresSuperuser)
	if err != nil {
		t.Fatal(err)
	}
	return pgprov.Target{
		Host: det.IPs[cfg.NetworkName()], Port: 5432,
		Superuser: cfg.Postgres.Superuser, SuperPassword: super,
		Extensions: pgprov.Extensions,
	}
}

func session(t *testing.T, ctx context.Context, tg pgprov.Target) *pgx.Conn {
	t.Helper()
	u := fmt.Sprintf("postgres://%s:%s@%s:%d/postgres?sslmode=disable", tg.Superuser, tg.SuperPassword, tg.Host, tg.Port)
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// waitLocked waits until a session whose query starts with prefix waits on a lock of the given
// kind (pg_stat_activity's wait_event: "advisory", "transactionid", "object"...).
func waitLocked(ctx context.Context, watch *pgx.Conn, prefix, event string) error {
	for {
		var n int
		err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND wait_event = $1 AND query LIKE $2`, event, prefix+"%").Scan(&n)
		if err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no session running %q waits on a %s lock: %w", prefix, event, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func owner(t *testing.T, ctx context.Context, c *pgx.Conn, database string) string {
	t.Helper()
	var o string
	if err := c.QueryRow(ctx, `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1`, database).Scan(&o); err != nil {
		t.Fatalf("owner of %s: %v", database, err)
	}
	return o
}

// provisionLooksAgainWhenTheDatabaseAppears: another session's CREATE DATABASE, not yet
// committed when provisioning checked, commits while provisioning's own CREATE DATABASE waits
// on it. PostgreSQL answers that one with a unique violation (23505): provisioning must look
// again, find the database (owned by somebody else) and put it right, and must not claim it
// created the database.
func provisionLooksAgainWhenTheDatabaseAppears(t *testing.T, ctx context.Context, tg pgprov.Target) {
	watch, holder, other := session(t, ctx, tg), session(t, ctx, tg), session(t, ctx, tg)
	// The other CREATE DATABASE is held after it has inserted its row: its owner's role is
	// being dropped by a third session, and it waits on that role's lock until the drop
	// rolls back.
	if _, err := watch.Exec(ctx, "CREATE ROLE "+tg.Role+"_other"); err != nil {
		t.Fatal(err)
	}
	otherDone := make(chan error, 1)
	hookRan := false
	defer pgprov.SetBeforeCreate(func(hctx context.Context, what string) {
		if what != "database" {
			return
		}
		hookRan = true
		if _, err := holder.Exec(hctx, "BEGIN; DROP ROLE "+tg.Role+"_other"); err != nil {
			t.Errorf("hold the owner role: %v", err)
			return
		}
		go func() {
			_, err := other.Exec(ctx, "CREATE DATABASE "+tg.Database+" OWNER "+tg.Role+"_other TEMPLATE template0")
			otherDone <- err
		}()
		if err := waitLocked(hctx, watch, "CREATE DATABASE "+tg.Database+" OWNER "+tg.Role+"_other", "object"); err != nil {
			t.Error(err)
		}
		// Provisioning's own CREATE DATABASE runs next and waits on the other's row; only
		// then does the other one go on and commit.
		go func() {
			if err := waitLocked(ctx, watch, `CREATE DATABASE "`+tg.Database+`"`, "transactionid"); err != nil {
				t.Error(err)
			}
			if _, err := holder.Exec(ctx, `ROLLBACK`); err != nil {
				t.Errorf("release the owner role: %v", err)
			}
		}()
	})()

	changes, err := pgprov.Provision(ctx, tg)
	if err != nil {
		t.Fatalf("provision while another session created the database: %v (changes %q)", err, changes)
	}
	if !hookRan {
		t.Fatal("provisioning never came to create the database")
	}
	if err := <-otherDone; err != nil {
		t.Fatalf("the other session's CREATE DATABASE: %v", err)
	}
	if slices.Contains(changes, "created database "+tg.Database) {
		t.Errorf("provisioning claims it created the database another session made: %q", changes)
	}
	if !slices.Contains(changes, "gave database "+tg.Database+" to role "+tg.Role) {
		t.Errorf("changes %q: want the database given to %s", changes, tg.Role)
	}
	if o := owner(t, ctx, watch, tg.Database); o != tg.Role {
		t.Errorf("%s is owned by %s, want %s", tg.Database, o, tg.Role)
	}
	st, err := pgprov.Observe(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	if m := st.Missing(tg); len(m) > 0 {
		t.Errorf("after provisioning, still missing: %q", m)
	}
}

// provisionLooksAgainWhenTheRoleAppears: the same for the role, created in another
// session's open transaction and committed while provisioning's CREATE ROLE waits on it.
func provisionLooksAgainWhenTheRoleAppears(t *testing.T, ctx context.Context, tg pgprov.Target) {
	watch, other := session(t, ctx, tg), session(t, ctx, tg)
	defer pgprov.SetBeforeCreate(func(hctx context.Context, what string) {
		if what != "role" {
			return
		}
		if _, err := other.Exec(hctx, "BEGIN; CREATE ROLE "+tg.Role+" NOLOGIN"); err != nil {
			t.Errorf("create the role in another session: %v", err)
			return
		}
		go func() {
			if err := waitLocked(ctx, watch, `CREATE ROLE "`+tg.Role+`"`, "transactionid"); err != nil {
				t.Error(err)
			}
			if _, err := other.Exec(ctx, `COMMIT`); err != nil {
				t.Errorf("commit the other session's role: %v", err)
			}
		}()
	})()
	changes, err := pgprov.Provision(ctx, tg)
	if err != nil {
		t.Fatalf("provision while another session created the role: %v (changes %q)", err, changes)
	}
	if slices.Contains(changes, "created role "+tg.Role) {
		t.Errorf("provisioning claims it created the role another session made: %q", changes)
	}
	st, err := pgprov.Observe(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	if m := st.Missing(tg); len(m) > 0 {
		t.Errorf("after provisioning, still missing: %q", m)
	}
}

// provisionWaitsForAKilledRunsStatements: an earlier run holds the provisioning lock and
// its statements are still running when the next run starts. The next run waits for the lock
// (PostgreSQL releases it when the killed run's session ends) instead of racing them, so the
// earlier run's statements succeed and the next run finds their work done.
func provisionWaitsForAKilledRunsStatements(t *testing.T, ctx context.Context, tg pgprov.Target) {
	watch, killed := session(t, ctx, tg), session(t, ctx, tg)
	if _, err := killed.Exec(ctx, `SELECT pg_advisory_lock($1)`, pgprov.LockKey); err != nil {
		t.Fatal(err)
	}
	type result struct {
		changes []string
		err     error
	}
	done := make(chan result, 1)
	go func() {
		c, err := pgprov.Provision(ctx, tg)
		done <- result{c, err}
	}()
	// Provisioning must come to wait on the lock; finishing instead means it did not wait.
	wctx, stop := context.WithCancel(ctx)
	waited := make(chan error, 1)
	go func() { waited <- waitLocked(wctx, watch, "SELECT pg_advisory_lock", "advisory") }()
	select {
	case r := <-done:
		stop()
		<-waited
		t.Fatalf("provisioning ran while an earlier run held the lock: changes %q, err %v", r.changes, r.err)
	case err := <-waited:
		stop()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		"CREATE ROLE " + tg.Role + " LOGIN NOSUPERUSER CREATEDB NOCREATEROLE PASSWORD '" + tg.RolePassword + "'",
		"CREATE DATABASE " + tg.Database + " OWNER " + tg.Role + " TEMPLATE template0",
	} {
		if _, err := killed.Exec(ctx, q); err != nil {
			t.Fatalf("the earlier run's %q: %v (provisioning did not wait for it)", q, err)
		}
	}
	// Killed: the connection drops without a goodbye, as when the process dies.
	if err := killed.PgConn().Conn().Close(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("provision after the earlier run died: %v", r.err)
	}
	for _, c := range r.changes {
		if strings.HasPrefix(c, "created role") || strings.HasPrefix(c, "created database") {
			t.Errorf("provisioning redid the earlier run's work: %q", r.changes)
		}
	}
	if o := owner(t, ctx, watch, tg.Database); o != tg.Role {
		t.Errorf("%s is owned by %s, want %s", tg.Database, o, tg.Role)
	}
}
