package upgrade_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/backup"
	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/pgupgrade"
	"github.com/forgebox/forgebox/service/internal/upgrade"
	"github.com/forgebox/forgebox/service/internal/upgrade/standintest"
)

// buildForgebox builds the forgebox binary with the crash hooks (-tags forgebox_testhooks).
func buildForgebox(t *testing.T) string {
	t.Helper()
	mod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "forgebox")
	cmd := exec.Command("go", "build", "-tags", "forgebox_testhooks", "-o", bin, "./service/cmd/forgebox")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(mod)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type run struct {
	out    string
	code   int
	killed bool
}

func forgebox(t *testing.T, ctx context.Context, bin, cfgPath, killAfter string, args ...string) run {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--config", cfgPath}, args...)...)
	cmd.Env = append(os.Environ(), "FORGEBOX_TEST_KILL_AFTER="+killAfter)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	r := run{out: buf.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			r.killed = true
		}
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestKilledUpgradeResumes runs the forgebox binary for `upgrade apply` from GitLab 17.11.7 on
// PostgreSQL 15 to 18.2.8 (which needs PostgreSQL 16 or newer), SIGKILLs it in the middle of the
// PostgreSQL switch (old data directory renamed aside, new one not yet in place), checks that
// `up` now refuses to touch the stack, runs apply again and kills it right after the config
// names the new GitLab, and runs it a third time: it ends upgraded, on PostgreSQL 17, with every
// row of a test table and the runner tokens, the old data kept, one backup.
func TestKilledUpgradeResumes(t *testing.T) {
	pg15 := os.Getenv("FORGEBOX_TEST_POSTGRES15_IMAGE")
	if pg15 == "" {
		standintest.New(t, "17.11.7", "sameersbn") // skips, or fails under FORGEBOX_REQUIRE_ENGINE=1
		t.Fatal("FORGEBOX_TEST_POSTGRES15_IMAGE is not set: eval \"$(bash testimages/build.sh)\"")
	}
	bin := buildForgebox(t)
	ctx := standintest.Ctx(t, 10*time.Minute)
	f := standintest.New(t, "17.11.7", "sameersbn", func(c *config.Config) { c.Postgres.Image = pg15 })
	pg17 := f.Images.Postgres
	standintest.GitLabImage(t, f.Images, "18.2.8")
	standintest.RunnerImage(t, f.Images, "18.2.8")
	f.Up(ctx)
	// GitLab's own data is owned by its role (its backup reads it as that role).
	if _, err := f.DB(ctx).Exec(ctx, `CREATE TABLE forgebox_test_rows AS SELECT i AS id, md5(i::text) AS v FROM generate_series(1, 5000) i;
		ALTER TABLE forgebox_test_rows OWNER TO gitlab`); err != nil {
		t.Fatal(err)
	}
	sum := func() string {
		var s string
		f.DB(ctx).QueryRow(ctx, `SELECT count(*) || ' ' || md5(string_agg(v, '' ORDER BY id)) FROM forgebox_test_rows`).Scan(&s)
		return s
	}
	before := sum()
	recBefore, _ := f.Stack().View().RunnerRecords()
	data := filepath.Join(f.Cfg.Stack.DataDir, "postgres")
	apply := []string{"upgrade", "apply", "--to", "18.2.8", "--postgres-image", pg17, "--yes"}

	// 1. Killed between the two renames of the PostgreSQL switch.
	start := time.Now()
	r := forgebox(t, ctx, bin, f.CfgPath, "pg-old-kept", apply...)
	if !r.killed {
		t.Fatalf("first run was not killed (exit %d):\n%s", r.code, r.out)
	}
	st, err := upgrade.LoadState(f.Cfg.Stack.DataDir)
	if err != nil || st == nil || st.Step != upgrade.StepBackedUp || st.Postgres == nil || st.Postgres.Phase != pgupgrade.PhaseSwap {
		t.Fatalf("state after the first kill: %+v %v", st, err)
	}
	oldDir := st.Postgres.OldDir
	if exists(data) || !exists(oldDir) || !exists(st.Postgres.NewDir) {
		t.Fatalf("after the kill: data %v, old %v, new %v", exists(data), exists(oldDir), exists(st.Postgres.NewDir))
	}
	// Nothing else may touch the stack now: an up would start PostgreSQL on an empty directory.
	if r := forgebox(t, ctx, bin, f.CfgPath, "", "up"); r.code == 0 || !strings.Contains(r.out, "upgrade of this stack is in progress") {
		t.Fatalf("up during the upgrade: exit %d\n%s", r.code, r.out)
	}
	if exists(data) {
		t.Fatal("the refused up created a data directory")
	}

	// 2. Resumed; killed right after the config names GitLab 18.2.8.
	r = forgebox(t, ctx, bin, f.CfgPath, "switched", apply...)
	if !r.killed || !strings.Contains(r.out, "resuming the upgrade to GitLab 18.2.8") {
		t.Fatalf("second run (killed %v, exit %d):\n%s", r.killed, r.code, r.out)
	}
	if m, _ := pgupgrade.MajorOfDataDir(data); m != 17 {
		t.Fatalf("after the second run the data directory holds PostgreSQL %d", m)
	}
	if cfg, _ := config.Load(f.CfgPath); !strings.HasSuffix(cfg.GitLab.Image, ":18.2.8") || cfg.Postgres.Image != pg17 {
		t.Fatalf("config after the second kill: gitlab %s, postgres %s", cfg.GitLab.Image, cfg.Postgres.Image)
	}

	// 3. Resumed to the end.
	r = forgebox(t, ctx, bin, f.CfgPath, "", apply...)
	if r.code != 0 || r.killed {
		t.Fatalf("third run: exit %d\n%s", r.code, r.out)
	}
	t.Logf("MEASURED upgrade 17.11.7 -> 18.2.8 with PostgreSQL 15 -> 17, killed twice, on stand-ins: %s", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(r.out, "the old PostgreSQL data directory stays at "+oldDir) {
		t.Errorf("the output does not name the kept data directory %s:\n%s", oldDir, r.out)
	}
	st2 := f.StandinState(ctx)
	if st2.Version != "18.2.8" || st2.DataVersion != "18.2.8" || st2.MigrationsByStatus["1"] != 0 {
		t.Errorf("GitLab after the resume: %+v", st2)
	}
	if got := sum(); got != before {
		t.Errorf("forgebox_test_rows: %s after, %s before", got, before)
	}
	if m, _ := pgupgrade.MajorOfDataDir(oldDir); m != 15 {
		t.Errorf("the kept old data directory holds PostgreSQL %d", m)
	}
	if s, _ := upgrade.LoadState(f.Cfg.Stack.DataDir); s != nil {
		t.Errorf("state left: %+v", s)
	}
	list, _ := backup.List(f.Cfg.BackupDir())
	if len(list) != 1 || list[0].Manifest == nil || list[0].Manifest.GitLab.Version != "17.11.7" || list[0].Manifest.Postgres.Major != 15 {
		t.Errorf("backups: %+v (want the one pre-upgrade backup of 17.11.7 on PostgreSQL 15, not redone on resume)", list)
	}
	after, _ := f.Stack().View().RunnerRecords()
	known, err := f.Stack().View().VerifyRunners(ctx)
	if err != nil || !known["default"] || after["default"].Token != recBefore["default"].Token {
		t.Errorf("runner after the resume: %v %v, token kept %v", known, err, after["default"].Token == recBefore["default"].Token)
	}
}
