package main

// GitLab's secrets and host keys, as far as backups and restores depend on them.
//
// GitLab encrypts database columns with keys derived from its Rails secrets: CI variables and
// runner tokens with db_key_base (Gitlab::CryptoHelper, aes-256-gcm with the truncated key),
// users' 2FA secrets with otp_key_base. A database restored without the secrets it was
// encrypted with boots, but those columns can no longer be read: GitLab raises
// OpenSSL::Cipher::CipherError, runners cannot authenticate, jobs get stuck, CI settings answer
// 500, and 2FA users cannot sign in (docs.gitlab.com administration/backup_restore/
// troubleshooting_backup_gitlab.md, "When the secrets file is lost"; gitlab-org/gitlab issue
// 25864, a CipherError in token_authenticatable_strategies/encrypted.rb after a restore
// without the secrets). GitLab does not refuse to start: the errors come on use, and
// `gitlab-rake gitlab:doctor:secrets` counts them.
//
// The stand-in keeps digests of its db_key_base and otp_key_base in the database
// (standin_encryption_canary, written with the data's first boot and restored with it) and,
// while the running keys differ from the data's: logs the decryption error at start, rejects
// every runner token (403, as the runner's encrypted-token lookup finds nothing), and reports
// secrets_match_data false (db_key_base_matches, otp_key_base_matches) on its state endpoint.
//
// sameersbn takes the keys from GITLAB_SECRETS_DB_KEY_BASE and GITLAB_SECRETS_OTP_KEY_BASE;
// Omnibus generates /etc/gitlab/gitlab-secrets.json on its first reconfigure and keeps it there
// (not in GitLab's backup: docs/gitlab-contract.md §2.4), under "gitlab_rails": the four
// *_key_base as 128 hex characters, the two active_record_encryption keys as arrays of one
// 32-character alphanumeric key and the derivation salt as one (omnibus-gitlab 19.2.4+ce.0
// files/gitlab-cookbooks/gitlab/libraries/gitlab_rails.rb parse_secrets), values already in the
// file kept (`||=`). SSH host keys are generated on first start: sameersbn under
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

// canaryOTP adds otp_key_base's digest to data written before the stand-in kept it; NULL
// there means "not recorded yet", filled in by the next start.
const canaryOTP = `ALTER TABLE standin_encryption_canary ADD COLUMN IF NOT EXISTS otp_digest text`

// keys is what this process booted with.
var keys struct {
	mu          sync.Mutex
	canary      string // HMAC of db_key_base; "" until prepareSecrets ran
	otpCanary   string // HMAC of otp_key_base
	hostKeySHA  string // sha256 of the ed25519 public host key file, shown in the SSH banner
	canaryAlarm bool   // logged the mismatch already
}

func canaryDigest(dbKeyBase string) string {
	m := hmac.New(sha256.New, []byte(dbKeyBase))
	m.Write([]byte("forgebox-standin-encryption-canary"))
	return hex.EncodeToString(m.Sum(nil))
}

// railsKeys are the gitlab_rails keys the first reconfigure generates, with how: hex(64), or
// [alphanumeric(32)] for the two rotatable active_record_encryption keys, alphanumeric(32) for
// the salt (omnibus-gitlab 19.2.4+ce.0 gitlab_rails.rb parse_secrets).
var railsKeys = []struct {
	key   string
	array bool
	alnum bool
}{
	{"db_key_base", false, false}, {"secret_key_base", false, false}, {"otp_key_base", false, false},
	{"encrypted_settings_key_base", false, false},
	{"active_record_encryption_primary_key", true, true}, {"active_record_encryption_deterministic_key", true, true},
	{"active_record_encryption_key_derivation_salt", false, true},
}

// omnibusSecrets reads gitlab-secrets.json, generating the gitlab_rails keys it lacks as the
// reconfigure does (values in the file are kept, other sections untouched).
func omnibusSecrets() (dbKeyBase, otpKeyBase string, err error) {
	doc := map[string]any{}
	b, err := os.ReadFile(omnibusSecretsFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return "", "", fmt.Errorf("read %s: %w", omnibusSecretsFile, err)
	default:
		if err := json.Unmarshal(b, &doc); err != nil {
			return "", "", fmt.Errorf("%s is not valid JSON: %w", omnibusSecretsFile, err)
		}
	}
	rails, _ := doc["gitlab_rails"].(map[string]any)
	if rails == nil {
		rails = map[string]any{}
	}
	generated := false
	for _, k := range railsKeys {
		if _, ok := rails[k.key]; ok {
			continue
		}
		v := randomHex(128)
		if k.alnum {
			v = randomHex(32)
		}
		if k.array {
			rails[k.key] = []any{v}
		} else {
			rails[k.key] = v
		}
		generated = true
	}
	if generated {
		doc["gitlab_rails"] = rails
		out, _ := json.MarshalIndent(doc, "", "  ")
		if err := os.WriteFile(omnibusSecretsFile, append(out, '\n'), 0o600); err != nil {
			return "", "", fmt.Errorf("write %s: %w", omnibusSecretsFile, err)
		}
		logf("wrote %s (reconfigure: generated the gitlab_rails secrets it lacked)", omnibusSecretsFile)
	}
	for _, k := range railsKeys {
		v := rails[k.key]
		if k.array {
			list, ok := v.([]any)
			if !ok || len(list) == 0 {
				return "", "", fmt.Errorf("%s: gitlab_rails.%s must be an array of keys (omnibus-gitlab keeps it as one, for rotation)", omnibusSecretsFile, k.key)
			}
			v = list[len(list)-1]
		}
		if str, ok := v.(string); !ok || str == "" {
			return "", "", fmt.Errorf("%s: gitlab_rails.%s must be a non-empty string", omnibusSecretsFile, k.key)
		}
	}
	return rails["db_key_base"].(string), rails["otp_key_base"].(string), nil
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

// prepareSecrets loads db_key_base and otp_key_base, records their digests on new data, logs
// GitLab's decryption error when the data was written with other keys, and generates host keys.
func prepareSecrets(ctx context.Context, conn *pgx.Conn, c Config) error {
	dbKeyBase, otpKeyBase := os.Getenv("GITLAB_SECRETS_DB_KEY_BASE"), os.Getenv("GITLAB_SECRETS_OTP_KEY_BASE")
	if c.Flavour == flavourOmnibus {
		var err error
		if dbKeyBase, otpKeyBase, err = omnibusSecrets(); err != nil {
			return err
		}
	}
	digest, otpDigest := canaryDigest(dbKeyBase), canaryDigest(otpKeyBase)
	if _, err := conn.Exec(ctx, canarySchema); err != nil {
		return fmt.Errorf("create standin_encryption_canary: %w", err)
	}
	if _, err := conn.Exec(ctx, canaryOTP); err != nil {
		return fmt.Errorf("add otp_digest to standin_encryption_canary: %w", err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO standin_encryption_canary (id, digest, otp_digest) VALUES (1, $1, $2) ON CONFLICT (id) DO UPDATE SET otp_digest = coalesce(standin_encryption_canary.otp_digest, EXCLUDED.otp_digest)`, digest, otpDigest); err != nil {
		return err
	}
	var stored, storedOTP string
	if err := conn.QueryRow(ctx, `SELECT digest, otp_digest FROM standin_encryption_canary WHERE id = 1`).Scan(&stored, &storedOTP); err != nil {
		return err
	}
	if stored != digest {
		logf("ERROR: OpenSSL::Cipher::CipherError: db_key_base differs from the one this database was encrypted with: CI variables and runner tokens cannot be decrypted, every runner token is rejected (restore the secrets that belong to this data)")
	}
	if storedOTP != otpDigest {
		logf("ERROR: OpenSSL::Cipher::CipherError: otp_key_base differs from the one this database was encrypted with: users' 2FA secrets cannot be decrypted, 2FA users cannot sign in (restore the secrets that belong to this data)")
	}
	keys.mu.Lock()
	keys.canary, keys.otpCanary = digest, otpDigest
	keys.mu.Unlock()
	return ensureHostKeys(c.Flavour)
}

// keysMatch compares the running keys with the data's: db_key_base, otp_key_base. Before the
// canary exists (or without a database) both count as matching: nothing to compare.
func (s *server) keysMatch(ctx context.Context) (db, otp bool) {
	keys.mu.Lock()
	want, wantOTP := keys.canary, keys.otpCanary
	keys.mu.Unlock()
	if want == "" {
		return true, true
	}
	var stored string
	var storedOTP *string
	err := s.db.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT digest, otp_digest FROM standin_encryption_canary WHERE id = 1`).Scan(&stored, &storedOTP)
	})
	if err != nil {
		return true, true
	}
	return stored == want, storedOTP == nil || *storedOTP == wantOTP
}

// secretsMatch reports whether the data in the database was encrypted with this process's
// db_key_base; it is asked on every runner token lookup, so a database restored under it
// counts at once.
func (s *server) secretsMatch(ctx context.Context) bool {
	ok, _ := s.keysMatch(ctx)
	keys.mu.Lock()
	if !ok && !keys.canaryAlarm {
		s.logf("WARNING: runner tokens are rejected: db_key_base differs from the one the database was encrypted with")
	}
	keys.canaryAlarm = !ok
	keys.mu.Unlock()
	return ok
}
