package pgupgrade_test

// A PostgreSQL major upgrade on the real engine: PostgreSQL 15 (Debian bookworm) to 17 (trixie),
// both real servers from the project's test images; GitLab is the contract stand-in.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/pgupgrade"
	"github.com/forgebox/forgebox/service/internal/upgrade/standintest"
)

func postgres15(t *testing.T) string {
	img := os.Getenv("FORGEBOX_TEST_POSTGRES15_IMAGE")
	if img == "" {
		if os.Getenv("FORGEBOX_REQUIRE_ENGINE") == "1" {
			t.Fatal("FORGEBOX_TEST_POSTGRES15_IMAGE is not set: eval \"$(bash testimages/build.sh)\"")
		}
		t.Skip("FORGEBOX_TEST_POSTGRES15_IMAGE is not set")
	}
	return img
}

// tableSums is the test's own view of every user table: row count and an md5 over the rows'
// text in order (another method than pgupgrade's streaming checksum).
func tableSums(t *testing.T, ctx context.Context, db *pgx.Conn) map[string]string {
	t.Helper()
	rows, err := db.Query(ctx, `SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, tb := range tables {
		var n int64
		var sum string
		if err := db.QueryRow(ctx, "SELECT count(*), coalesce(md5(string_agg(r::text, E'\\n' ORDER BY r::text)), '') FROM "+tb+" r").Scan(&n, &sum); err != nil {
			t.Fatalf("%s: %v", tb, err)
		}
		out[tb] = fmt.Sprintf("%d rows, md5 %s", n, sum)
	}
	return out
}

// fillVaried adds rows of many types, NULLs and non-ASCII text, in public and another schema.
func fillVaried(t *testing.T, ctx context.Context, db *pgx.Conn) {
	t.Helper()
	for _, q := range []string{
		`CREATE TABLE forgebox_test_rows (id int PRIMARY KEY, label text, amount numeric(20,6), ratio float8, at timestamptz,
			doc jsonb, raw bytea, tags text[], maybe text, span tsrange, ip inet)`,
		`INSERT INTO forgebox_test_rows SELECT i, '行 ' || i || ' ünïcödé ' || repeat('x', i % 50), i * 1.000001, i / 7.0, '2026-01-01'::timestamptz + i * interval '37 minutes',
			jsonb_build_object('i', i, 'even', i % 2 = 0, 'list', jsonb_build_array(i, 'a')), decode(md5(i::text), 'hex'), ARRAY['t' || (i % 5), 'é'],
			CASE WHEN i % 3 = 0 THEN NULL ELSE 'm' || i END, tsrange('2026-01-01', '2026-02-01'), ('10.0.' || (i % 250) || '.1')::inet
			FROM generate_series(1, 3000) i`,
		`CREATE SCHEMA forgebox_extra`,
		`CREATE TABLE forgebox_extra.notes (id bigserial PRIMARY KEY, body text NOT NULL)`,
		`INSERT INTO forgebox_extra.notes (body) SELECT 'note ' || i FROM generate_series(1, 200) i`,
		`ALTER TABLE forgebox_test_rows OWNER TO gitlab`,
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestMajorUpgradeKeepsEveryRow moves a stack from PostgreSQL 15 to 17 and compares every table
// (all schemas) before and after: row counts and checksums, computed by the test itself. The old
// data directory stays, the new one is in place, the config names the new image, and GitLab
// runs on it with its runners.
func TestMajorUpgradeKeepsEveryRow(t *testing.T) {
	pg15 := postgres15(t)
	ctx := standintest.Ctx(t, 8*time.Minute)
	f := standintest.New(t, "17.11.7", "sameersbn", func(c *config.Config) { c.Postgres.Image = pg15 })
	f.Up(ctx)
	fillVaried(t, ctx, f.DB(ctx))
	pg17 := f.Images.Postgres
	data := filepath.Join(f.Cfg.Stack.DataDir, "postgres")
	if m, _ := pgupgrade.MajorOfDataDir(data); m != 15 {
		t.Fatalf("the stack starts on PostgreSQL %d", m)
	}

	x := f.Session("upgrade")
	// GitLab and the runner stop for the copy; the test takes its view once they are still.
	x.Stop(ctx, "runner")
	x.Stop(ctx, "gitlab")
	before := tableSums(t, ctx, f.DB(ctx))
	var phases []string
	start := time.Now()
	res, err := pgupgrade.Upgrade(ctx, x, pgupgrade.State{}, pgupgrade.Options{
		Image: pg17, MinMajor: 16, SaveCfg: f.SaveConfig,
		Save: func(s pgupgrade.State) error { phases = append(phases, s.Phase); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	var rowsTotal int64
	for _, tc := range res.Tables {
		rowsTotal += tc.Rows
	}
	t.Logf("MEASURED PostgreSQL %d -> %d on the test images: %d tables, %d rows, in %s", res.From, res.To, len(res.Tables), rowsTotal, time.Since(start).Round(time.Millisecond))
	x.End()
	if strings.Join(phases, ",") != "copy,swap,done" {
		t.Errorf("phases saved: %v", phases)
	}
	if res.From != 15 || res.To != 17 || len(res.Tables) != len(before) {
		t.Errorf("result %d -> %d, %d tables checked, %d tables before", res.From, res.To, len(res.Tables), len(before))
	}

	// PostgreSQL 17 alone, before GitLab touches anything.
	if _, err := f.Stack().UpComponent(ctx, "postgres"); err != nil {
		t.Fatal(err)
	}
	after := tableSums(t, ctx, f.DB(ctx))
	for tb, want := range before {
		if after[tb] != want {
			t.Errorf("%s: %s after the upgrade, %s before", tb, after[tb], want)
		}
	}
	for tb := range after {
		if _, ok := before[tb]; !ok {
			t.Errorf("table %s appeared", tb)
		}
	}
	if before[`public.forgebox_test_rows`] == "" || before["forgebox_extra.notes"] == "" || !strings.HasPrefix(before["public.forgebox_test_rows"], "3000 rows") {
		t.Errorf("the test's own tables were not compared: %v", before)
	}
	var ver int
	var owner string
	f.DB(ctx).QueryRow(ctx, `SELECT current_setting('server_version_num')::int / 10000, tableowner FROM pg_tables WHERE tablename = 'forgebox_test_rows'`).Scan(&ver, &owner)
	if ver != 17 || owner != "gitlab" {
		t.Errorf("server %d, forgebox_test_rows owned by %q", ver, owner)
	}
	var exts int
	f.DB(ctx).QueryRow(ctx, `SELECT count(*) FROM pg_extension WHERE extname IN ('pg_trgm', 'btree_gist', 'amcheck')`).Scan(&exts)
	if exts != 3 {
		t.Errorf("%d of GitLab's 3 extensions on the new server", exts)
	}

	if m, _ := pgupgrade.MajorOfDataDir(data); m != 17 {
		t.Errorf("%s holds PostgreSQL %d", data, m)
	}
	if m, _ := pgupgrade.MajorOfDataDir(res.OldDir); m != 15 || filepath.Dir(res.OldDir) != f.Cfg.Stack.DataDir {
		t.Errorf("old data kept at %s holds PostgreSQL %d", res.OldDir, m)
	}
	if _, err := os.Stat(filepath.Join(f.Cfg.Stack.DataDir, "postgres-upgrade")); !os.IsNotExist(err) {
		t.Errorf("the work directory is left: %v", err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(data, "forgebox-upgrade")); len(leftovers) != 0 {
		t.Errorf("dump and password file left in the data directory: %v", leftovers)
	}
	cfg, _ := config.Load(f.CfgPath)
	if cfg.Postgres.Image != pg17 {
		t.Errorf("postgres.image is %s", cfg.Postgres.Image)
	}

	// GitLab and its runner on the new server.
	f.Up(ctx)
	known, err := f.Stack().View().VerifyRunners(ctx)
	if err != nil || !known["default"] {
		t.Errorf("runners after the upgrade: %v %v", known, err)
	}
}

func TestCompare(t *testing.T) {
	a := []pgupgrade.TableCheck{{Table: "public.a", Rows: 2, Checksum: "x"}, {Table: "public.b", Rows: 1, Checksum: "y"}}
	if d := pgupgrade.Compare(a, a); d != "" {
		t.Errorf("same: %q", d)
	}
	b := []pgupgrade.TableCheck{{Table: "public.a", Rows: 2, Checksum: "z"}, {Table: "public.c", Rows: 1, Checksum: "y"}}
	d := pgupgrade.Compare(a, b)
	for _, want := range []string{"public.a's rows differ", "public.b is missing", "public.c is new"} {
		if !strings.Contains(d, want) {
			t.Errorf("diff %q lacks %q", d, want)
		}
	}
	if d := pgupgrade.Compare(a, []pgupgrade.TableCheck{{Table: "public.a", Rows: 1, Checksum: "x"}, a[1]}); !strings.Contains(d, "1 rows instead of 2") {
		t.Errorf("row count: %q", d)
	}
}
