package backup_test

// The GitLab stand-in's rules about backups (docs/gitlab-contract.md §1.7, §3.1, §4.6), each shown refusing
// what forgebox did before, and forgebox's backup and restore passing under them.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/backup"
	"github.com/forgebox/forgebox/service/internal/stack"
	"github.com/forgebox/forgebox/service/internal/upgrade/standintest"
	"github.com/forgebox/forgebox/service/internal/upgradepath"
)

func execIn(t *testing.T, ctx context.Context, x *stack.Session, user string, cmd ...string) (string, int) {
	t.Helper()
	res, err := x.Exec(ctx, "gitlab", user, cmd)
	if err != nil {
		t.Fatalf("exec %v: %v", cmd, err)
	}
	return res.Stdout + "\n" + res.Stderr, res.ExitCode
}

func execOK(t *testing.T, ctx context.Context, x *stack.Session, user string, cmd ...string) string {
	t.Helper()
	out, code := execIn(t, ctx, x, user, cmd...)
	if code != 0 {
		t.Fatalf("%v: exit code %d: %s", cmd, code, out)
	}
	return out
}

var doneLine = regexp.MustCompile(`Backup ([0-9]+_[0-9_]+_[0-9.]+) is done`)

// GitLab's own database backup, as forgebox ran it before, on Omnibus 18.5 (pg_dump 16 in the
// image) against the default config's PostgreSQL: the stand-in refuses it as pg_dump does;
// forgebox's backup, with the PostgreSQL container's own pg_dump, passes.
func TestGitLabsOwnDatabaseDumpIsRefusedOnOmnibus18_5(t *testing.T) {
	version := ""
	for _, s := range upgradepath.LoadFor(upgradepath.Omnibus).Stops {
		if s.MinorString() == "18.5" {
			version = s.String()
		}
	}
	pg := standintest.DefaultPostgresMajor(t)
	ctx := standintest.Ctx(t, 15*time.Minute)
	f := standintest.New(t, version, "omnibus")
	f.Up(ctx)
	x := f.Session("backup")

	out, code := execIn(t, ctx, x, "root", "gitlab-backup", "create")
	if code == 0 || !strings.Contains(out, "aborting because of server version mismatch") || !strings.Contains(out, "pg_dump version: 16") {
		t.Fatalf("GitLab's own backup with its database on Omnibus %s against PostgreSQL %d: exit code %d\n%s", version, pg, code, out)
	}
	res, err := backup.Create(ctx, x, backup.KindManual)
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.Postgres.Major != pg || !strings.Contains(res.Manifest.Postgres.DumpClient, fmt.Sprintf("(PostgreSQL) %d", pg)) {
		t.Errorf("manifest postgres %+v", res.Manifest.Postgres)
	}
}

// On sameersbn, `supervisorctl stop gitlab:*` (what forgebox ran before) leaves Sidekiq
// running, and the stand-in refuses the restore as GitLab's procedure does; a restore whose
// database load logs errors asks its question and fails on a closed standard input. forgebox's
// restore stops Sidekiq too, answers with GITLAB_ASSUME_YES, reports the errors block, restores
// an archive of the old format and the new one, and brings everything back when GitLab's
// restore fails.
func TestRestoreStopsSidekiqAndAnswersForItself(t *testing.T) {
	version := standintest.DefaultVersion(t)
	ctx := standintest.Ctx(t, 25*time.Minute)
	f := standintest.New(t, version, "sameersbn")
	f.Up(ctx)
	rake := func(task string, args ...string) []string {
		return append(append([]string{"bundle", "exec", "rake", task}, args...), "RAILS_ENV=production")
	}
	x := f.Session("test")
	out := execOK(t, ctx, x, "git", rake("gitlab:backup:create")...)
	m := doneLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no backup id in %s", out)
	}
	withDB := m[1]
	hostBackups := filepath.Join(f.Cfg.ShareDir(), "gitlab", "data", "backups")

	t.Run("the stand-in refuses a restore while Sidekiq runs", func(t *testing.T) {
		execOK(t, ctx, x, "root", "supervisorctl", "stop", "gitlab_extensions:*")
		execOK(t, ctx, x, "root", "supervisorctl", "stop", "gitlab:*")
		out, code := execIn(t, ctx, x, "git", rake("gitlab:backup:restore", "BACKUP="+withDB, "force=yes")...)
		if code == 0 || !strings.Contains(out, "sidekiq still running") {
			t.Fatalf("restore with only gitlab:* stopped: exit code %d\n%s", code, out)
		}
	})
	t.Run("without GITLAB_ASSUME_YES the question after errors fails", func(t *testing.T) {
		execOK(t, ctx, x, "root", "supervisorctl", "stop", "sidekiq")
		// Rows the backup holds that this database now refuses: errors, as psql logs them.
		if _, err := f.DB(ctx).Exec(ctx, `ALTER TABLE batched_background_migrations ADD CONSTRAINT forgebox_test_no_rows CHECK (id < 0) NOT VALID`); err != nil {
			t.Fatal(err)
		}
		out, code := execIn(t, ctx, x, "git", rake("gitlab:backup:restore", "BACKUP="+withDB, "force=yes")...)
		if code == 0 || !strings.Contains(out, "BEGIN ERRORS") || !strings.Contains(out, "Do you want to continue") || !strings.Contains(out, "chomp") {
			t.Fatalf("restore with errors, no GITLAB_ASSUME_YES: exit code %d\n%s", code, out)
		}
		for _, c := range [][]string{{"sidekiq"}, {"gitlab:*"}, {"gitlab_extensions:*"}} {
			execOK(t, ctx, x, "root", append([]string{"supervisorctl", "start"}, c...)...)
		}
	})
	// A GitLab backup holding a table this database no longer has: GitLab's restore of it fails.
	if _, err := f.DB(ctx).Exec(ctx, `CREATE TABLE forgebox_test_gone (id int); ALTER TABLE forgebox_test_gone OWNER TO `+stack.GitLabRole); err != nil {
		t.Fatal(err)
	}
	out = execOK(t, ctx, x, "git", rake("gitlab:backup:create")...)
	failing := doneLine.FindStringSubmatch(out)[1]
	if _, err := f.DB(ctx).Exec(ctx, `DROP TABLE forgebox_test_gone`); err != nil {
		t.Fatal(err)
	}

	// GitLab names a backup by the second it started in: a backup started in the same second
	// as the one above would be written over it, and forgebox's backup removes the GitLab
	// archive it made (CI lost the failing archive so once).
	time.Sleep(time.Until(time.Unix(time.Now().Unix()+1, 0)))
	res, err := backup.Create(ctx, x, backup.KindManual)
	if err != nil {
		t.Fatal(err)
	}
	format1, err := backup.WriteFormat1ForTest(res.File, filepath.Join(hostBackups, withDB+"_gitlab_backup.tar"), "format1")
	if err != nil {
		t.Fatal(err)
	}
	failing1, err := backup.WriteFormat1ForTest(res.File, filepath.Join(hostBackups, failing+"_gitlab_backup.tar"), "format1-failing")
	if err != nil {
		t.Fatal(err)
	}
	// A row written after the backup, which the restore takes away.
	if _, err := f.DB(ctx).Exec(ctx, `INSERT INTO standin_users (username, name, email, is_admin) VALUES ('after', 'After', 'after@example.org', false)`); err != nil {
		t.Fatal(err)
	}

	t.Run("a failed restore brings GitLab's processes and the runner back", func(t *testing.T) {
		_, err := backup.Restore(ctx, x, failing1, f.SaveConfig)
		if err == nil || !strings.Contains(err.Error(), "GitLab's restore failed") || !strings.Contains(err.Error(), "run again") {
			t.Fatalf("restore of a GitLab backup that fails: %v", err)
		}
		st := f.StandinState(ctx) // answers: Puma and nginx run
		if st.PumaStopped || st.SidekiqStopped {
			t.Errorf("after the failed restore: %+v", st)
		}
		if _, err := x.Running(ctx, "runner"); err != nil {
			t.Errorf("the runner: %v", err)
		}
	})
	t.Run("an archive of format 1 restores through GitLab, which lists its errors", func(t *testing.T) {
		rr, err := backup.Restore(ctx, x, format1, f.SaveConfig)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(rr.GitLabErrors, "forgebox_test_no_rows") {
			t.Errorf("GitLab's errors block was not reported: %q", rr.GitLabErrors)
		}
	})
	t.Run("forgebox's restore passes and the database is the backup's", func(t *testing.T) {
		rr, err := backup.Restore(ctx, x, res.File, f.SaveConfig)
		if err != nil {
			t.Fatal(err)
		}
		if rr.GitLabErrors != "" {
			t.Errorf("errors: %s", rr.GitLabErrors)
		}
		var n int
		if err := f.DB(ctx).QueryRow(ctx, `SELECT count(*) FROM standin_users WHERE username = 'after'`).Scan(&n); err != nil || n != 0 {
			t.Errorf("a row written after the backup is still there (%d, %v)", n, err)
		}
		var owner string
		if err := f.DB(ctx).QueryRow(ctx, `SELECT tableowner FROM pg_tables WHERE tablename = 'standin_users'`).Scan(&owner); err != nil || owner != stack.GitLabRole {
			t.Errorf("standin_users is owned by %q (%v), not %s", owner, err, stack.GitLabRole)
		}
		var exts int
		f.DB(ctx).QueryRow(ctx, `SELECT count(*) FROM pg_extension WHERE extname IN ('pg_trgm', 'btree_gist', 'amcheck')`).Scan(&exts)
		if exts != 3 {
			t.Errorf("%d of the 3 extensions after the restore", exts)
		}
		var dbs []string
		rows, _ := f.DB(ctx).Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE '%forgebox%'`)
		for rows.Next() {
			var d string
			rows.Scan(&d)
			dbs = append(dbs, d)
		}
		if len(dbs) != 0 {
			t.Errorf("databases left behind: %v", dbs)
		}
		if left, _ := os.ReadDir(filepath.Join(f.Cfg.Stack.DataDir, "postgres", "forgebox-backup")); len(left) != 0 {
			t.Errorf("work files left: %v", left)
		}
	})
}
