package backup_test

// A flavour switch with one backup, on the real engine with the contract stand-ins: what passes
// here shows forgebox carries GitLab's secrets from a sameersbn stack to an Omnibus one as the
// images' contracts say, and that the GitLab stand-in accepts them; not that a real GitLab does.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/backup"
	"github.com/forgebox/forgebox/service/internal/stack"
	"github.com/forgebox/forgebox/service/internal/testenv"
	"github.com/forgebox/forgebox/service/internal/upgrade/standintest"
)

func railsSection(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Rails map[string]any `json:"gitlab_rails"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc.Rails
}

// TestRestoreSameersbnBackupOntoOmnibus backs up a sameersbn stack with a runner and restores
// the backup onto a fresh Omnibus stack (another stack name) of the same GitLab version: the
// Omnibus stand-in starts on gitlab-secrets.json holding the sameersbn stack's Rails secrets and
// finds they match the data (db_key_base and otp_key_base), the runner verifies with its old
// token, and the secret store holds the carried secrets. Then the negative: the same backup
// with a wrong db_key_base in its secret store is restored, the stand-in logs GitLab's
// decryption error and rejects the runner token, and the restore fails naming the safety
// backup. And an Omnibus stack of another GitLab version is refused first.
func TestRestoreSameersbnBackupOntoOmnibus(t *testing.T) {
	ctx := standintest.Ctx(t, 25*time.Minute)
	version := standintest.DefaultVersion(t)
	a := standintest.New(t, version, "sameersbn")
	a.Up(ctx)
	xa := a.Session("backup")
	recA := records(t, xa)
	if len(recA) != 1 {
		t.Fatalf("runner records before the backup: %v", recA)
	}
	secretsA := a.Secrets()
	res, err := backup.Create(ctx, xa, backup.KindManual)
	if err != nil {
		t.Fatal(err)
	}
	xa.End()
	if res.Manifest.GitLab.Flavour != "sameersbn" {
		t.Fatalf("manifest flavour %q", res.Manifest.GitLab.Flavour)
	}
	// The source is gone (a box switched), and it frees the two cores for the target.
	testenv.RemoveStack(t, a.Eng, a.Cfg.Stack.Name, a.Cfg.NetworkName())

	b := standintest.New(t, version, "omnibus")
	if b.Cfg.Stack.Name == a.Cfg.Stack.Name {
		t.Fatal("the Omnibus stack must have its own name")
	}
	t.Run("another version is refused", func(t *testing.T) {
		other := standintest.OtherStop(t, version)
		cfg := b.Cfg
		cfg.GitLab.Image = standintest.GitLabImage(t, b.Images, other)
		if err := b.SaveConfig(cfg); err != nil {
			t.Fatal(err)
		}
		x := b.Session("restore")
		_, err := backup.Restore(ctx, x, res.File, b.SaveConfig)
		x.End()
		var mm *backup.VersionMismatchError
		if !errors.As(err, &mm) || !strings.Contains(err.Error(), "GitLab "+version) {
			t.Fatalf("restore of a sameersbn %s backup onto Omnibus %s: %v", version, other, err)
		}
		cfg.GitLab.Image = standintest.GitLabImage(t, b.Images, version)
		if err := b.SaveConfig(cfg); err != nil {
			t.Fatal(err)
		}
	})
	b.Up(ctx)
	secretsFile := filepath.Join(b.Cfg.ShareDir(), "gitlab", "config", "gitlab-secrets.json")
	own := railsSection(t, secretsFile)
	dkbA, _ := secretsA.Get("gitlab_secrets_db_key_base")
	if own["db_key_base"] == dkbA || own["db_key_base"] == nil {
		t.Fatalf("the fresh Omnibus stack should run on its own db_key_base")
	}

	xb := b.Session("restore")
	start := time.Now()
	rr, err := backup.Restore(ctx, xb, res.File, b.SaveConfig)
	if err != nil {
		t.Fatal(err)
	}
	xb.End()
	t.Logf("MEASURED sameersbn -> omnibus restore on stand-ins: %s, %d/%d runners verified, in %s", rr.Name, rr.RunnersOK, rr.Runners, time.Since(start).Round(time.Millisecond))
	if rr.FromFlavour != "sameersbn" || rr.Runners != 1 || rr.RunnersOK != 1 || len(rr.Reregistered) != 0 {
		t.Errorf("restore result %+v", rr)
	}

	t.Run("gitlab-secrets.json holds the sameersbn stack's Rails secrets", func(t *testing.T) {
		rails := railsSection(t, secretsFile)
		for key, secret := range map[string]string{"db_key_base": "gitlab_secrets_db_key_base", "otp_key_base": "gitlab_secrets_otp_key_base",
			"secret_key_base": "gitlab_secrets_secret_key_base", "encrypted_settings_key_base": "gitlab_secrets_encrypted_settings_key_base",
			"active_record_encryption_key_derivation_salt": "gitlab_secrets_ar_key_derivation_salt"} {
			want, _ := secretsA.Get(secret)
			if rails[key] != want || want == "" {
				t.Errorf("gitlab_rails.%s is not the sameersbn stack's %s", key, secret)
			}
		}
		want, _ := secretsA.Get("gitlab_secrets_ar_primary_key")
		if p, ok := rails["active_record_encryption_primary_key"].([]any); !ok || len(p) != 1 || p[0] != want {
			t.Error("gitlab_rails.active_record_encryption_primary_key is not [the sameersbn stack's key]")
		}
		fi, err := os.Stat(secretsFile)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("gitlab-secrets.json mode %v, %v; want 0600", fi.Mode(), err)
		}
	})
	t.Run("the secret store holds them, so later ups keep them", func(t *testing.T) {
		sb := b.Secrets()
		for _, n := range secretsA.Names() {
			if strings.HasPrefix(n, "gitlab_secrets_") {
				va, _ := secretsA.Get(n)
				if vb, _ := sb.Get(n); va != vb {
					t.Errorf("secret %s is not the backup's", n)
				}
			}
		}
	})
	t.Run("the stand-in finds the secrets match the data and the runner verifies", func(t *testing.T) {
		st := b.StandinState(ctx)
		if !st.SecretsMatchData || !st.DBKeyBaseMatches || !st.OTPKeyBaseMatches {
			t.Errorf("stand-in state after the restore: %+v", st)
		}
		x := b.Stack().View()
		recB := records(t, x)
		for p, ra := range recA {
			if rb := recB[p]; rb.ID != ra.ID || rb.Token != ra.Token {
				t.Errorf("profile %s: runner %d after the restore, %d before (or another token)", p, rb.ID, ra.ID)
			}
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
		waitRunnerVerified(t, b, recA)
		// A second up changes nothing about them.
		b.Up(ctx)
		if st := b.StandinState(ctx); !st.SecretsMatchData {
			t.Error("after another up the secrets no longer match")
		}
		if rails := railsSection(t, secretsFile); rails["db_key_base"] != dkbA {
			t.Error("another up changed gitlab_rails.db_key_base")
		}
	})

	t.Run("a wrong key is detected", func(t *testing.T) {
		bad, err := backup.WithSecretForTest(res.File, "gitlab_secrets_db_key_base", strings.Repeat("0", 128), "wrongkey")
		if err != nil {
			t.Fatal(err)
		}
		x := b.Session("restore")
		rr, err := backup.Restore(ctx, x, bad, b.SaveConfig)
		x.End()
		if err == nil || !strings.Contains(err.Error(), "do not match the backup's data") || rr.SafetyBackup == "" || !strings.Contains(err.Error(), rr.SafetyBackup) {
			t.Fatalf("restore with a wrong db_key_base: %v (result %+v)", err, rr)
		}
		t.Logf("the restore with a wrong db_key_base said: %v", err)
		st := b.StandinState(ctx)
		if st.SecretsMatchData || st.DBKeyBaseMatches || !st.OTPKeyBaseMatches {
			t.Errorf("the stand-in did not find db_key_base (only) wrong: %+v", st)
		}
		if logs := b.Logs(ctx, "gitlab"); !strings.Contains(logs, "OpenSSL::Cipher::CipherError: db_key_base differs") {
			t.Errorf("the stand-in did not log GitLab's decryption error:\n%s", logs)
		}
	})
}

// waitRunnerVerified waits until the runner stand-in logs each restored runner id as verified.
func waitRunnerVerified(t *testing.T, f *standintest.Fixture, recs map[string]stack.RunnerRecord) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		logs := f.Logs(t.Context(), "runner")
		missing := ""
		for _, r := range recs {
			if !strings.Contains(logs, fmt.Sprintf("runner %d (", r.ID)) || !strings.Contains(logs, "verified") {
				missing += fmt.Sprint(" ", r.ID)
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the runner did not verify runner(s)%s with the restored tokens:\n%s", missing, logs)
		}
		time.Sleep(time.Second)
	}
}

// TestRestoreOmnibusBackupOntoSameersbn is the reverse switch: an Omnibus stack with a runner is
// backed up and restored onto a fresh sameersbn stack of the same version; the backup's
// gitlab-secrets.json values become the secret store's GITLAB_SECRETS_*, the sameersbn stand-in
// finds they match the data, and the runner verifies with its old token.
func TestRestoreOmnibusBackupOntoSameersbn(t *testing.T) {
	ctx := standintest.Ctx(t, 25*time.Minute)
	version := standintest.DefaultVersion(t)
	a := standintest.New(t, version, "omnibus")
	a.Up(ctx)
	xa := a.Session("backup")
	recA := records(t, xa)
	railsA := railsSection(t, filepath.Join(a.Cfg.ShareDir(), "gitlab", "config", "gitlab-secrets.json"))
	res, err := backup.Create(ctx, xa, backup.KindManual)
	if err != nil {
		t.Fatal(err)
	}
	xa.End()
	testenv.RemoveStack(t, a.Eng, a.Cfg.Stack.Name, a.Cfg.NetworkName())

	b := standintest.New(t, version, "sameersbn")
	b.Up(ctx)
	xb := b.Session("restore")
	rr, err := backup.Restore(ctx, xb, res.File, b.SaveConfig)
	if err != nil {
		t.Fatal(err)
	}
	xb.End()
	if rr.FromFlavour != "omnibus" || rr.Runners != 1 || rr.RunnersOK != 1 || len(rr.Reregistered) != 0 {
		t.Errorf("restore result %+v", rr)
	}
	sb := b.Secrets()
	for key, secret := range map[string]string{"db_key_base": "gitlab_secrets_db_key_base", "otp_key_base": "gitlab_secrets_otp_key_base",
		"secret_key_base": "gitlab_secrets_secret_key_base", "active_record_encryption_key_derivation_salt": "gitlab_secrets_ar_key_derivation_salt"} {
		if v, _ := sb.Get(secret); v == "" || v != railsA[key] {
			t.Errorf("secret %s is not the Omnibus stack's gitlab_rails.%s", secret, key)
		}
	}
	if p, _ := railsA["active_record_encryption_primary_key"].([]any); len(p) != 1 {
		t.Fatalf("the Omnibus stand-in's primary key is not a list of one: %v", len(p))
	} else if v, _ := sb.Get("gitlab_secrets_ar_primary_key"); v != p[0] {
		t.Error("gitlab_secrets_ar_primary_key is not the Omnibus stack's key")
	}
	if st := b.StandinState(ctx); !st.SecretsMatchData || !st.DBKeyBaseMatches || !st.OTPKeyBaseMatches {
		t.Errorf("stand-in state after the restore: %+v", st)
	}
	recB := records(t, b.Stack().View())
	for p, ra := range recA {
		if rb := recB[p]; rb.ID != ra.ID || rb.Token != ra.Token {
			t.Errorf("profile %s: runner %d after the restore, %d before (or another token)", p, rb.ID, ra.ID)
		}
	}
	waitRunnerVerified(t, b, recA)
}
