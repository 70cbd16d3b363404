package main

// GitLab's secrets and host keys, as far as backups and restores depend on them.
//
// GitLab encrypts database columns (CI variables, runner tokens since 15.x) with keys derived
// from db_key_base. A database restored without the secrets it was encrypted with boots, but
// those columns can no longer be read: runners are rejected. The stand-in keeps a digest of its
// db_key_base in the database (standin_encryption_canary) and rejects every runner token while
// the running key differs from the one the data was written with.
//
// sameersbn takes db_key_base from GITLAB_SECRETS_DB_KEY_BASE; Omnibus generates
// /etc/gitlab/gitlab-secrets.json on its first reconfigure and keeps it there (not in GitLab's
// backup: docs/gitlab-contract.md §2.4). SSH host keys are generated on first start: sameersbn under
// /home/git/data/ssh, Omnibus /etc/gitlab/ssh_host_*_key (omnibus-gitlab init-container).

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/jackc/pgx/v5"
)

const omnibusSecretsFile = "/etc/gitlab/gitlab-secrets.json"

const canarySchema = `CREATE TABLE IF NOT EXISTS standin_encryption_canary (
	id     integer PRIMARY KEY CHECK (id = 1),
	digest text NOT NULL
)`

// keys is what this process booted with.
var keys struct {
	mu          sync.Mutex
	canary      string // HMAC of db_key_base; "" until prepareSecrets ran
	hostKeySHA  string // sha256 of the ed25519 public host key file, shown in the SSH banner
	canaryAlarm bool   // logged the mismatch already
}

func canaryDigest(dbKeyBase string) string {
	m := hmac.New(sha256.New, []byte(dbKeyBase))
	m.Write([]byte("forgebox-standin-encryption-canary"))
	return hex.EncodeToString(m.Sum(nil))
}

// omnibusSecrets reads gitlab-secrets.json, generating it as the first reconfigure does.
func omnibusSecrets() (dbKeyBase string, err error) {
	var doc struct {
		GitLabRails map[string]string `json:"gitlab_rails"`
	}
	b, err := os.ReadFile(omnibusSecretsFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
		doc.GitLabRails = map[string]string{}
		for _, k := range []string{"secret_key_base", "db_key_base", "otp_key_base", "encrypted_settings_key_base",
			"active_record_encryption_primary_key", "active_record_encryption_deterministic_key", "active_record_encryption_key_derivation_salt"} {
			doc.GitLabRails[k] = randomHex(64)
		}
		out, _ := json.MarshalIndent(doc, "", "  ")
		if err := os.WriteFile(omnibusSecretsFile, append(out, '\n'), 0o600); err != nil {
			return "", fmt.Errorf("write %s: %w", omnibusSecretsFile, err)
		}
		logf("generated %s (first reconfigure)", omnibusSecretsFile)
	case err != nil:
		return "", fmt.Errorf("read %s: %w", omnibusSecretsFile, err)
	default:
		if err := json.Unmarshal(b, &doc); err != nil {
			return "", fmt.Errorf("%s is not valid JSON: %w", omnibusSecretsFile, err)
		}
	}
	k := doc.GitLabRails["db_key_base"]
	if k == "" {
		return "", fmt.Errorf("%s has no gitlab_rails.db_key_base", omnibusSecretsFile)
	}
	return k, nil
}

func randomHex(n int) string {
	b := make([]byte, n/2)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func hostKeyDir(flavour string) string {
	if flavour == flavourOmnibus {
		return "/etc/gitlab"
	}
	return "/home/git/data/ssh"
}

// ensureHostKeys writes host key pairs when missing (random stand-in keys in OpenSSH's file
// layout, not usable keys) and remembers the ed25519 public key's digest for the SSH banner.
func ensureHostKeys(flavour string) error {
	dir := hostKeyDir(flavour)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, typ := range []string{"rsa", "ecdsa", "ed25519"} {
		priv := filepath.Join(dir, "ssh_host_"+typ+"_key")
		if _, err := os.Stat(priv); err == nil {
			continue
		}
		raw := make([]byte, 48)
		rand.Read(raw)
		body := "-----BEGIN OPENSSH PRIVATE KEY-----\n" + base64.StdEncoding.EncodeToString(raw) + "\n-----END OPENSSH PRIVATE KEY-----\n"
		if err := os.WriteFile(priv, []byte(body), 0o600); err != nil {
			return err
		}
		sum := sha256.Sum256(raw)
		pub := fmt.Sprintf("ssh-%s %s forgebox-gitlab-standin\n", typ, base64.StdEncoding.EncodeToString(sum[:]))
		if err := os.WriteFile(priv+".pub", []byte(pub), 0o644); err != nil {
			return err
		}
		logf("generated %s (stand-in host key)", priv)
	}
	b, err := os.ReadFile(filepath.Join(dir, "ssh_host_ed25519_key.pub"))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	keys.mu.Lock()
	keys.hostKeySHA = hex.EncodeToString(sum[:8])
	keys.mu.Unlock()
	return nil
}

// sshGreeting is what the SSH port greets with; the host key digest lets a test see which host
// keys the server was started with (a real server shows them in the key exchange).
func sshGreeting() string {
	keys.mu.Lock()
	defer keys.mu.Unlock()
	if keys.hostKeySHA == "" {
		return "SSH-2.0-forgebox-gitlab-standin\r\n"
	}
	return "SSH-2.0-forgebox-gitlab-standin hostkey-" + keys.hostKeySHA + "\r\n"
}

// prepareSecrets loads db_key_base, records the canary on new data, and generates host keys.
func prepareSecrets(ctx context.Context, conn *pgx.Conn, c Config) error {
	dbKeyBase := os.Getenv("GITLAB_SECRETS_DB_KEY_BASE")
	if c.Flavour == flavourOmnibus {
		var err error
		if dbKeyBase, err = omnibusSecrets(); err != nil {
			return err
		}
	}
	digest := canaryDigest(dbKeyBase)
	if _, err := conn.Exec(ctx, canarySchema); err != nil {
		return fmt.Errorf("create standin_encryption_canary: %w", err)
	}
	tag, err := conn.Exec(ctx, `INSERT INTO standin_encryption_canary (id, digest) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`, digest)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		var stored string
		if err := conn.QueryRow(ctx, `SELECT digest FROM standin_encryption_canary WHERE id = 1`).Scan(&stored); err != nil {
			return err
		}
		if stored != digest {
			logf("WARNING: db_key_base differs from the one this database was encrypted with: encrypted columns cannot be read, every runner token is rejected (restore the secrets that belong to this data)")
		}
	}
	keys.mu.Lock()
	keys.canary = digest
	keys.mu.Unlock()
	return ensureHostKeys(c.Flavour)
}

// secretsMatch reports whether the data in the database was encrypted with this process's
// db_key_base; it is asked on every runner token lookup, so a database restored under it
// counts at once.
func (s *server) secretsMatch(ctx context.Context) bool {
	keys.mu.Lock()
	want := keys.canary
	keys.mu.Unlock()
	if want == "" {
		return true
	}
	var stored string
	err := s.db.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT digest FROM standin_encryption_canary WHERE id = 1`).Scan(&stored)
	})
	if err != nil {
		return true // no canary (yet): nothing to compare
	}
	ok := stored == want
	keys.mu.Lock()
	if !ok && !keys.canaryAlarm {
		s.logf("WARNING: runner tokens are rejected: db_key_base differs from the one the database was encrypted with")
	}
	keys.canaryAlarm = !ok
	keys.mu.Unlock()
	return ok
}
