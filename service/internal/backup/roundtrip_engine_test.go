package backup_test

// Backups and restores on the real engine. GitLab and GitLab Runner are contract stand-ins
// (service/standins): a pass shows forgebox drives the images' backup commands and puts data,
// secrets, host keys and runner tokens back as their contracts say, not that a real GitLab
// restores.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/forgebox/forgebox/service/internal/backup"
	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/stack"
	"github.com/forgebox/forgebox/service/internal/testenv"
	"github.com/forgebox/forgebox/service/internal/upgrade/standintest"
)

// rows is a checksum of the columns that hold a table's data (not the ones GitLab updates as
// runners check in), per table.
func rows(t *testing.T, ctx context.Context, db *pgx.Conn) map[string]string {
	t.Helper()
	out := map[string]string{}
	for table, cols := range map[string]string{
		"standin_users":                  "id, username, email, is_admin",
		"standin_runners":                "id, token, description, tag_list, run_untagged, runner_type",
		"standin_personal_access_tokens": "id, user_id, name, token_digest, scopes, expires_at, revoked",
		"standin_encryption_canary":      "id, digest",
		"batched_background_migrations":  "id, job_class_name, status",
	} {
		var n int
		var sum string
		err := db.QueryRow(ctx, fmt.Sprintf(`SELECT count(*), coalesce(md5(string_agg(r::text, '|' ORDER BY r::text)), '') FROM (SELECT %s FROM %s) r`, cols, table)).Scan(&n, &sum)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		out[table] = fmt.Sprintf("%d rows %s", n, sum)
	}
	return out
}

func records(t *testing.T, x *stack.Session) map[string]stack.RunnerRecord {
	t.Helper()
	r, err := x.RunnerRecords()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestBackupThenRestoreOntoAFreshStack backs up a stack with two runners and some data, then
// restores the backup onto a new, empty stack of the same name and GitLab version (a new box): the data rows, the
// runner records and tokens (which the restored GitLab accepts and the runner uses), GitLab's
// secrets and SSH host keys all come back, the new stack keeps its own PostgreSQL passwords, a
// safety backup of it is taken first, and a stack of another version is refused with the
// version to install.
func TestBackupThenRestoreOntoAFreshStack(t *testing.T) {
	for _, flavour := range []string{"sameersbn", "omnibus"} {
		t.Run(flavour, func(t *testing.T) {
			t.Parallel()
			roundTrip(t, flavour)
		})
	}
}

// hostKeyFile is the ed25519 host key on the host, where each image keeps it.
func hostKeyFile(cfg config.Config) string {
	if cfg.GitLab.Flavour == "omnibus" {
		return filepath.Join(cfg.ShareDir(), "gitlab", "config", "ssh_host_ed25519_key")
	}
	return filepath.Join(cfg.ShareDir(), "gitlab", "data", "ssh", "ssh_host_ed25519_key")
}

func roundTrip(t *testing.T, flavour string) {
	ctx := standintest.Ctx(t, 20*time.Minute)
	version := standintest.DefaultVersion(t)
	other := standintest.OtherStop(t, version)
	a := standintest.New(t, version, flavour, func(c *config.Config) {
		c.Runner.Profiles = append(c.Runner.Profiles, config.Profile{Name: "gpu", Image: c.Runner.Profiles[0].Image, Tags: []string{"gpu", "cuda"}, Concurrency: 1})
	})
	a.Up(ctx)
	// Data beyond what setup made: users, as GitLab's own rows.
	if _, err := a.DB(ctx).Exec(ctx, `INSERT INTO standin_users (username, name, email, is_admin)
		SELECT 'user' || i, 'User ' || i, 'user' || i || '@example.org', false FROM generate_series(1, 50) i`); err != nil {
		t.Fatal(err)
	}
	before := rows(t, ctx, a.DB(ctx))
	xa := a.Session("backup")
	recA := records(t, xa)
	if len(recA) != 2 {
		t.Fatalf("runner records before the backup: %v", recA)
	}
	secretsA := a.Secrets()
	sshA, _ := os.ReadFile(hostKeyFile(a.Cfg))
	omnibusSecretsA, _ := os.ReadFile(filepath.Join(a.Cfg.ShareDir(), "gitlab", "config", "gitlab-secrets.json"))
	stateA := a.StandinState(ctx)

	start := time.Now()
	res, err := backup.Create(ctx, xa, backup.KindManual)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MEASURED backup on stand-ins: %s, %d bytes on disk (%d bytes of members), %d members, in %s",
		res.Name, res.Size, res.Manifest.Size, len(res.Manifest.Members), time.Since(start).Round(time.Millisecond))
	xa.End()

	t.Run("archive", func(t *testing.T) {
		fi, err := os.Stat(res.File)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("archive %s: %v mode %v, want 0600", res.File, err, fi.Mode())
		}
		if filepath.Dir(res.File) != filepath.Join(a.Cfg.ShareDir(), "backups") {
			t.Errorf("archive in %s, want <share_dir>/backups", filepath.Dir(res.File))
		}
		m, err := backup.Verify(res.File)
		if err != nil {
			t.Fatal(err)
		}
		// The default config's PostgreSQL major: GitLab's own pg_dump would be refused there
		// by Omnibus images before 18.11 (the stand-in's client rule); PostgreSQL's own is not.
		pg := standintest.DefaultPostgresMajor(t)
		if m.Format != backup.FormatVersion || m.GitLab.Version != version || m.GitLab.Flavour != flavour || m.Postgres.Major != pg || m.Kind != backup.KindManual || m.Runner.Runners != 2 || m.Forgebox != "test" {
			t.Errorf("manifest %+v (want PostgreSQL %d)", m, pg)
		}
		if !strings.Contains(m.Postgres.DumpClient, fmt.Sprintf("(PostgreSQL) %d", pg)) {
			t.Errorf("the database was dumped by %q, not PostgreSQL %d's own pg_dump", m.Postgres.DumpClient, pg)
		}
		have := map[string]bool{}
		for _, mem := range m.Members {
			have[mem.Path] = true
			if len(mem.SHA256) != 64 {
				t.Errorf("%s has no sha256", mem.Path)
			}
		}
		wants := []string{backup.MemberConfig, backup.MemberSecrets, backup.MemberRunnerConfig, backup.MemberDatabase,
			"gitlab/backup/" + m.GitLab.BackupID + "_gitlab_backup.tar", "gitlab/ssh/ssh_host_ed25519_key", "gitlab/ssh/ssh_host_rsa_key.pub"}
		if flavour == "omnibus" {
			wants = append(wants, backup.MemberOmnibusJSON)
		}
		for _, want := range wants {
			if !have[want] {
				t.Errorf("member %s missing; have %v", want, have)
			}
		}
		// GitLab's own tar went into forgebox's archive; it is not left twice on the disk.
		left, _ := filepath.Glob(filepath.Join(a.Cfg.ShareDir(), "gitlab", "data", "backups", "*_gitlab_backup.tar"))
		if len(left) != 0 {
			t.Errorf("GitLab's backup tar left in GitLab's backup dir: %v", left)
		}
	})

	// The new box: the old stack is gone (its containers; its data stays where it was), a fresh
	// stack of the same name and GitLab version takes its place, with the default runner
	// profile only, its own data directories and its own secrets.
	// (Removed the way a dead box loses them: the runner's own job containers may be going away
	// at the same moment, which stack.Down does not tolerate.)
	testenv.RemoveStack(t, a.Eng, a.Cfg.Stack.Name, a.Cfg.NetworkName())
	b := standintest.New(t, version, flavour, func(c *config.Config) { c.Stack.Name = a.Cfg.Stack.Name })
	superA, _ := secretsA.Get(config.SecretPostgresSuperuser)

	t.Run("another version is refused with the version to install", func(t *testing.T) {
		cfg := b.Cfg
		cfg.GitLab.Image = standintest.GitLabImage(t, b.Images, other)
		if err := b.SaveConfig(cfg); err != nil {
			t.Fatal(err)
		}
		x := b.Session("restore")
		_, err := backup.Restore(ctx, x, res.File, b.SaveConfig)
		x.End()
		var mm *backup.VersionMismatchError
		if !errors.As(err, &mm) || !strings.Contains(err.Error(), "GitLab "+version) || !strings.Contains(err.Error(), ":"+version) {
			t.Fatalf("restore of a %s backup onto %s: %v", version, other, err)
		}
		if list, _ := backup.List(b.Cfg.BackupDir()); len(list) != 0 {
			t.Errorf("a refused restore wrote backups: %v", list)
		}
		cfg.GitLab.Image = standintest.GitLabImage(t, b.Images, version)
		b.SaveConfig(cfg)
	})

	// sameersbn restores onto a fresh stack that is up; Omnibus onto an empty one that never ran,
	// which the restore brings up itself.
	freshB := map[string]stack.RunnerRecord{}
	if flavour == "sameersbn" {
		b.Up(ctx)
		freshB = records(t, b.Stack().View())
	}
	xb := b.Session("restore")
	start = time.Now()
	rr, err := backup.Restore(ctx, xb, res.File, b.SaveConfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MEASURED restore on stand-ins: %s, safety backup %s, %d/%d runners verified, in %s", rr.Name, rr.SafetyBackup, rr.RunnersOK, rr.Runners, time.Since(start).Round(time.Millisecond))
	xb.End()

	t.Run("data rows are back", func(t *testing.T) {
		after := rows(t, ctx, b.DB(ctx))
		for table, want := range before {
			if after[table] != want {
				t.Errorf("%s: %s after the restore, %s before", table, after[table], want)
			}
		}
		var users int
		b.DB(ctx).QueryRow(ctx, `SELECT count(*) FROM standin_users WHERE username LIKE 'user%'`).Scan(&users)
		if users != 50 {
			t.Errorf("%d of the 50 users are back", users)
		}
	})
	t.Run("runner tokens are back and work", func(t *testing.T) {
		x := b.Stack().View()
		recB := records(t, x)
		if len(recB) != 2 {
			t.Fatalf("runner records after the restore: %v", recB)
		}
		for p, ra := range recA {
			if rb := recB[p]; rb.ID != ra.ID || rb.Token != ra.Token {
				t.Errorf("profile %s: runner %d %q after the restore, %d %q before", p, rb.ID, rb.Token, ra.ID, ra.Token)
			}
		}
		for p, r := range freshB {
			if recB[p].Token == r.Token {
				t.Errorf("the fresh stack's own runner token for %s survived the restore", p)
			}
		}
		if rr.RunnersOK != 2 || len(rr.Reregistered) != 0 {
			t.Errorf("restore result: %d runners verified, re-registered %v", rr.RunnersOK, rr.Reregistered)
		}
		known, err := x.VerifyRunners(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for p, ok := range known {
			if !ok {
				t.Errorf("GitLab rejects the restored token of profile %s", p)
			}
		}
		// The runner uses them: it verifies each restored runner id against GitLab.
		waitRunnerVerified(t, b, recA)
		// The profiles the runners belong to came back with them.
		if len(b.Cfg.Runner.Profiles) != 2 || b.Cfg.Runner.Profiles[1].Name != "gpu" {
			t.Errorf("profiles after the restore: %+v", b.Cfg.Runner.Profiles)
		}
	})
	t.Run("secrets and host keys are back; PostgreSQL passwords are the stack's own", func(t *testing.T) {
		sb := b.Secrets()
		for _, n := range secretsA.Names() {
			va, _ := secretsA.Get(n)
			vb, _ := sb.Get(n)
			isPG := n == config.SecretPostgresSuperuser || n == config.SecretPostgresGitLab
			if !isPG && va != vb {
				t.Errorf("secret %s differs from the backup's", n)
			}
		}
		if v, _ := sb.Get(config.SecretPostgresSuperuser); v == superA || v == "" {
			t.Error("the restore replaced the stack's own PostgreSQL superuser password")
		}
		sshB, _ := os.ReadFile(hostKeyFile(b.Cfg))
		if flavour == "omnibus" {
			// GitLab's encryption keys live in /etc/gitlab/gitlab-secrets.json there, not in the
			// secret store: the fresh stack generated its own, the restore put the backup's back.
			secretsB, _ := os.ReadFile(filepath.Join(b.Cfg.ShareDir(), "gitlab", "config", "gitlab-secrets.json"))
			if len(omnibusSecretsA) == 0 || !bytes.Equal(omnibusSecretsA, secretsB) {
				t.Error("/etc/gitlab/gitlab-secrets.json was not restored")
			}
		}
		if len(sshA) == 0 || !bytes.Equal(sshA, sshB) {
			t.Error("the SSH host key was not restored")
		}
		st := b.StandinState(ctx)
		if !st.SecretsMatchData {
			t.Error("the restored GitLab runs with a db_key_base that does not match its data")
		}
		if st.SSHHostKey != stateA.SSHHostKey {
			t.Errorf("GitLab serves host key %s, the backup's is %s", st.SSHHostKey, stateA.SSHHostKey)
		}
	})
	t.Run("a safety backup of the fresh stack came first", func(t *testing.T) {
		list, err := backup.List(b.Cfg.BackupDir())
		if err != nil || len(list) != 1 || list[0].Manifest == nil || list[0].Manifest.Kind != backup.KindPreRestore || list[0].Name != rr.SafetyBackup {
			t.Fatalf("backups of the fresh stack: %+v, %v", list, err)
		}
	})
}
