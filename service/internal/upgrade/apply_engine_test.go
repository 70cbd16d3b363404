package upgrade_test

// Upgrades on the real engine. GitLab and GitLab Runner are contract stand-ins, retagged per
// version: a pass shows forgebox walks the stops, waits, backs up and switches images as the
// contract says, not that a real GitLab migrates.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/forgebox/forgebox/service/internal/backup"
	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/upgrade"
	"github.com/forgebox/forgebox/service/internal/upgrade/standintest"
	"github.com/forgebox/forgebox/service/internal/upgradepath"
)

// TestApplyWalksTheStopsHopByHop upgrades an Omnibus stack from 18.2.8 to 18.8.11: a changed
// gitlab.image that skips 18.5 is refused by `up`, a downgrade and the running version are
// refused by the plan, and apply goes 18.2.8 -> 18.5.7 -> 18.8.11 with a backup before each
// hop, waiting for the migrations each version queues, switching GitLab and runner together,
// and keeping the runners' tokens.
func TestApplyWalksTheStopsHopByHop(t *testing.T) {
	ctx := standintest.Ctx(t, 10*time.Minute)
	f := standintest.New(t, "18.2.8", "omnibus")
	f.Up(ctx)
	recBefore, err := f.Stack().View().RunnerRecords()
	if err != nil || len(recBefore) != 1 {
		t.Fatalf("runner records: %v %v", recBefore, err)
	}

	t.Run("up refuses an image that skips a stop", func(t *testing.T) {
		cfg := f.Cfg
		cfg.GitLab.Image = standintest.GitLabImage(t, f.Images, "18.8.11")
		if err := f.SaveConfig(cfg); err != nil {
			t.Fatal(err)
		}
		_, err := f.Stack().Up(ctx)
		var skip *upgradepath.SkipError
		if !errors.As(err, &skip) || !strings.Contains(err.Error(), "18.5.7") || !strings.Contains(err.Error(), "forgebox upgrade apply --to 18.8.11") {
			t.Fatalf("up with 18.8.11 on 18.2.8 data: %v", err)
		}
		if v := f.StandinState(ctx).Version; v != "18.2.8" {
			t.Errorf("GitLab runs %s after the refused up", v)
		}
		cfg.GitLab.Image = standintest.GitLabImage(t, f.Images, "18.2.8")
		f.SaveConfig(cfg)
	})
	t.Run("plan refuses a downgrade and the running version", func(t *testing.T) {
		x := f.Stack().View()
		var down *upgradepath.DowngradeError
		if _, err := upgrade.PlanFor(ctx, x, "18.2.0", ""); !errors.As(err, &down) {
			t.Errorf("--to 18.2.0 on 18.2.8: %v", err)
		}
		var cur *upgradepath.CurrentError
		if _, err := upgrade.PlanFor(ctx, x, "18.2.8", ""); !errors.As(err, &cur) {
			t.Errorf("--to 18.2.8 on 18.2.8: %v", err)
		}
		p, err := upgrade.PlanFor(ctx, x, "18.8.11", "")
		if err != nil || len(p.Hops) != 2 || p.Hops[0].Version != "18.5.7" || p.FromSource != "GitLab's API (/api/v4/version)" {
			t.Fatalf("plan: %+v %v", p, err)
		}
	})
	for _, v := range []string{"18.5.7", "18.8.11"} {
		standintest.GitLabImage(t, f.Images, v)
		standintest.RunnerImage(t, f.Images, v)
	}

	x := f.Session("upgrade")
	start := time.Now()
	res, err := upgrade.Apply(ctx, x, upgrade.Options{To: "18.8.11", SaveConfig: f.SaveConfig, Poll: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("MEASURED upgrade on stand-ins: %s -> %s, %d hops in %s (%s per hop)", res.From, res.To, len(res.Hops), took.Round(time.Millisecond), (took / time.Duration(len(res.Hops))).Round(time.Millisecond))
	x.End()

	t.Run("one backup before each hop, of the version it started from", func(t *testing.T) {
		if len(res.Backups) != 2 {
			t.Fatalf("backups %v", res.Backups)
		}
		list, err := backup.List(f.Cfg.BackupDir())
		if err != nil {
			t.Fatal(err)
		}
		versions := map[string]string{}
		for _, e := range list {
			if e.Manifest == nil || e.Manifest.Kind != backup.KindPreUpgrade {
				t.Errorf("unexpected backup %+v", e)
				continue
			}
			versions[e.Name] = e.Manifest.GitLab.Version
			if !slices.ContainsFunc(e.Manifest.Members, func(m backup.Member) bool { return m.Path == backup.MemberOmnibusJSON }) {
				t.Errorf("backup %s lacks /etc/gitlab/gitlab-secrets.json", e.Name)
			}
		}
		if versions[res.Backups[0]] != "18.2.8" || versions[res.Backups[1]] != "18.5.7" {
			t.Errorf("backups %v by version %v", res.Backups, versions)
		}
	})
	t.Run("the feed shows each hop: migrations, backup, switch, in that order", func(t *testing.T) {
		var seq []string
		for _, e := range f.Events.Events() {
			switch {
			case e.Kind == events.KindInfo && strings.HasPrefix(e.Message, "batched background migrations are finished"):
				seq = append(seq, "migrations")
			case e.Kind == events.KindInfo && strings.HasPrefix(e.Message, "backup ") && strings.Contains(e.Message, "pre-upgrade written"):
				seq = append(seq, "backup")
			case e.Kind == events.KindStep && strings.Contains(e.Message, "switch GitLab to"):
				seq = append(seq, "switch")
			}
			if e.Op != "upgrade" && e.Op != "" && e.Kind != events.KindPlan && e.Op != "up" {
				t.Errorf("event of op %q during the upgrade: %s", e.Op, e.Message)
			}
		}
		want := "migrations backup switch migrations migrations backup switch migrations"
		// The first "migrations" of a hop is the readiness check, the second the hop's own.
		if got := strings.Join(seq, " "); !strings.HasSuffix(got, want) {
			t.Errorf("order %q, want it to end with %q", got, want)
		}
	})
	t.Run("GitLab and runner run the target; migrations drained; tokens kept", func(t *testing.T) {
		st := f.StandinState(ctx)
		if st.Version != "18.8.11" || st.DataVersion != "18.8.11" {
			t.Errorf("GitLab %s, data %s", st.Version, st.DataVersion)
		}
		if st.MigrationsByStatus["3"] != 9 || len(st.MigrationsByStatus) != 1 {
			t.Errorf("migrations by status %v, want 9 finished (3 per version)", st.MigrationsByStatus)
		}
		cfg, err := config.Load(f.CfgPath)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(cfg.GitLab.Image, ":18.8.11") || !strings.HasSuffix(cfg.Runner.Image, ":alpine-v18.8.0") {
			t.Errorf("config images %s, %s", cfg.GitLab.Image, cfg.Runner.Image)
		}
		status, err := f.Stack().Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range status {
			if !c.UpToDate || c.State != "running" {
				t.Errorf("%s: %s, up to date %v", c.Component, c.State, c.UpToDate)
			}
		}
		after, _ := f.Stack().View().RunnerRecords()
		if after["default"].ID != recBefore["default"].ID || after["default"].Token != recBefore["default"].Token {
			t.Errorf("runner %+v after, %+v before", after["default"], recBefore["default"])
		}
		known, err := f.Stack().View().VerifyRunners(ctx)
		if err != nil || !known["default"] {
			t.Errorf("GitLab 18.8.11 rejects the runner token: %v %v", known, err)
		}
		if s, _ := upgrade.LoadState(f.Cfg.Stack.DataDir); s != nil {
			t.Errorf("upgrade state left behind: %+v", s)
		}
		if _, err := f.Stack().Up(ctx); err != nil {
			t.Errorf("up after the upgrade: %v", err)
		}
	})
}

// A failed batched background migration stops the wait at once, naming it, and a paused or
// active one is waited for.
func TestWaitMigrationsStopsOnAFailedOne(t *testing.T) {
	ctx := standintest.Ctx(t, 5*time.Minute)
	f := standintest.New(t, "18.5.7", "sameersbn", func(c *config.Config) { c.Stack.PullPolicy = "never" })
	if _, err := f.Stack().UpComponent(ctx, "postgres"); err != nil {
		t.Fatal(err)
	}
	x := f.Session("test")
	db := f.DB(ctx)
	// No table at all: a GitLab without batched migrations has nothing to wait for.
	if err := upgrade.WaitMigrations(ctx, x, time.Minute, 100*time.Millisecond); err != nil {
		t.Fatalf("without the table: %v", err)
	}
	if _, err := db.Exec(ctx, `CREATE TABLE batched_background_migrations (id bigserial PRIMARY KEY, job_class_name text, table_name text, status smallint);
		INSERT INTO batched_background_migrations (job_class_name, table_name, status) VALUES ('Done', 'a', 3), ('Final', 'b', 6), ('Running', 'c', 1)`); err != nil {
		t.Fatal(err)
	}
	// An active one is waited for. Its poll is caught twice on a table lock (the event "it
	// looks"): a second look proves the first saw the running migration and did not return;
	// the migration finishes under the second, and the wait ends.
	waited := make(chan error, 1)
	go func() { waited <- upgrade.WaitMigrations(ctx, x, time.Minute, 200*time.Millisecond) }()
	lock, watch := f.DB(ctx), f.DB(ctx)
	for look := 1; look <= 2; look++ {
		if _, err := lock.Exec(ctx, `BEGIN; LOCK TABLE batched_background_migrations IN ACCESS EXCLUSIVE MODE`); err != nil {
			t.Fatal(err)
		}
		if err := waitPoll(ctx, watch, waited); err != nil {
			t.Fatalf("look %d: %v", look, err)
		}
		end := `ROLLBACK`
		if look == 2 {
			end = `UPDATE batched_background_migrations SET status = 3 WHERE job_class_name = 'Running'; COMMIT`
		}
		if _, err := lock.Exec(ctx, end); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-waited; err != nil {
		t.Fatalf("active one: %v", err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO batched_background_migrations (job_class_name, table_name, status) VALUES ('BackfillBroken', 'ci_builds', 4)`); err != nil {
		t.Fatal(err)
	}
	var failed *upgrade.FailedMigrationError
	if err := upgrade.WaitMigrations(ctx, x, time.Minute, 200*time.Millisecond); !errors.As(err, &failed) || !strings.Contains(err.Error(), "BackfillBroken") {
		t.Fatalf("failed one: %v", err)
	}
	if _, err := db.Exec(ctx, `UPDATE batched_background_migrations SET status = 0 WHERE job_class_name = 'BackfillBroken'`); err != nil {
		t.Fatal(err)
	}
	// The deadline ends the wait between two looks ("still not finished") or, on a loaded
	// machine, during one ("still running"): either way it says so.
	if err := upgrade.WaitMigrations(ctx, x, 3*time.Second, 200*time.Millisecond); err == nil ||
		!(strings.Contains(err.Error(), "still not finished") || strings.Contains(err.Error(), "still running after")) {
		t.Fatalf("paused one past the deadline: %v", err)
	}
}

// waitPoll waits until WaitMigrations' query waits on the table lock, or fails when the wait
// ended instead (it returned without looking again).
func waitPoll(ctx context.Context, watch *pgx.Conn, waited <-chan error) error {
	for {
		var n int
		if err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
			AND query LIKE 'SELECT id, job_class_name, table_name, status FROM batched_background_migrations%'`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		select {
		case err := <-waited:
			return fmt.Errorf("WaitMigrations returned (%v) while a migration was running", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestLastHopOnEachFlavour upgrades each flavour over its last hop (the second-last stop to the
// newest release, both from the stops table, so each flavour's own patch releases) on the
// default config's PostgreSQL major: the pre-upgrade backup dumps the database with
// PostgreSQL's own pg_dump and the hop lands.
func TestLastHopOnEachFlavour(t *testing.T) {
	for _, flavour := range upgradepath.Flavours {
		t.Run(flavour, func(t *testing.T) {
			tab := upgradepath.LoadFor(flavour)
			from, to := tab.Stops[len(tab.Stops)-2].String(), tab.Latest.String()
			pg := standintest.DefaultPostgresMajor(t)
			ctx := standintest.Ctx(t, 15*time.Minute)
			f := standintest.New(t, from, flavour)
			standintest.GitLabImage(t, f.Images, to)
			standintest.RunnerImage(t, f.Images, to)
			f.Up(ctx)
			x := f.Session("upgrade")
			res, err := upgrade.Apply(ctx, x, upgrade.Options{To: to, SaveConfig: f.SaveConfig, Poll: 500 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			x.End()
			if len(res.Backups) != 1 {
				t.Fatalf("backups %v", res.Backups)
			}
			list, err := backup.List(f.Cfg.BackupDir())
			if err != nil || len(list) != 1 || list[0].Manifest == nil {
				t.Fatalf("backups %+v %v", list, err)
			}
			m := list[0].Manifest
			if m.GitLab.Version != from || m.Postgres.Major != pg || !strings.Contains(m.Postgres.DumpClient, fmt.Sprintf("(PostgreSQL) %d", pg)) {
				t.Errorf("the pre-upgrade backup: GitLab %s, PostgreSQL %d dumped by %q", m.GitLab.Version, m.Postgres.Major, m.Postgres.DumpClient)
			}
			if st := f.StandinState(ctx); st.Version != to || st.DataVersion != to {
				t.Errorf("GitLab %s, data %s after the hop to %s", st.Version, st.DataVersion, to)
			}
		})
	}
}
