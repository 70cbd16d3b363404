package config

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/forgebox/forgebox/service/internal/secretfiles"
)

// SecretsFile is the secret store's file name inside the data dir.
const SecretsFile = secretfiles.StoreFile

// Names of the secrets forgebox keeps. Generated values never leave the store except into the
// container environment that needs them.
const (
	SecretPostgresSuperuser  = "postgres_superuser_password"
	SecretPostgresGitLab     = "postgres_gitlab_password"
	SecretGitLabRootPassword = "gitlab_root_password" // shown once, on an explicit reveal
	SecretGitLabAdminToken   = "gitlab_admin_token"   // root's personal access token, for the API
	SecretRedisPassword      = "redis_password"       // Omnibus only: sameersbn cannot send one
)

// Files beside the secret store that other processes read, so they are not in secrets.json.
const (
	// FrontSecretFile holds the shared secret that the DSM CGI front adds to every request it
	// passes to the controller.
	FrontSecretFile = secretfiles.FrontSecret
	// AdminTokenFile holds the controller's local admin token, for the CLI and scripts.
	AdminTokenFile = secretfiles.AdminToken
	// SessionGenerationFile holds the controller's session generation: a logout bumps it, and
	// session cookies of an older generation are refused.
	SessionGenerationFile = "session.generation"
)

// Secrets is the store of generated secrets: one JSON file, mode 0600, replaced atomically on
// every change so a crash never leaves half a file and a lost secret.
type Secrets struct {
	path string
	mu   sync.Mutex
	vals map[string]string
}

// OpenSecrets reads the store in dir, or starts an empty one when the file does not exist yet.
// A file that exists but cannot be read or parsed is an error: starting over would generate new
// secrets and lock forgebox out of its own database.
func OpenSecrets(dir string) (*Secrets, error) {
	s := &Secrets{path: filepath.Join(dir, SecretsFile), vals: map[string]string{}}
	b, err := os.ReadFile(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("read secret store: %w", err)
	}
	err = json.Unmarshal(b, &s.vals)
	if err == nil && s.vals == nil {
		err = errors.New("null instead of an object") // would leave a nil map that Ensure panics on
	}
	if err != nil {
		return nil, fmt.Errorf("secret store %s is damaged (%v); restore it from a backup, do not delete it", s.path, err)
	}
	return s, nil
}

// Path is the file the store lives in.
func (s *Secrets) Path() string { return s.path }

// Get returns a stored secret.
func (s *Secrets) Get(name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vals[name]
	return v, ok
}

// reloadLocked reads the file again before a change, so a long-lived store (the controller's)
// never writes back a stale copy over secrets another process (the CLI) added since.
func (s *Secrets) reloadLocked() error {
	b, err := os.ReadFile(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("read secret store: %w", err)
	}
	var vals map[string]string
	if err := json.Unmarshal(b, &vals); err != nil || vals == nil {
		return fmt.Errorf("secret store %s is damaged (%v); restore it from a backup, do not delete it", s.path, err)
	}
	s.vals = vals
	return nil
}

// Ensure returns the named secret, generating and saving a random one the first time.
func (s *Secrets) Ensure(name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.vals[name]; ok {
		return v, nil
	}
	if err := s.reloadLocked(); err != nil {
		return "", err
	}
	if v, ok := s.vals[name]; ok {
		return v, nil
	}
	v, err := RandomSecret(32)
	if err != nil {
		return "", err
	}
	s.vals[name] = v
	if err := s.saveLocked(); err != nil {
		delete(s.vals, name)
		return "", err
	}
	return v, nil
}

// Set stores a value that came from elsewhere (a token GitLab issued, a restored backup).
func (s *Secrets) Set(name, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadLocked(); err != nil {
		return err
	}
	old, had := s.vals[name]
	s.vals[name] = value
	if err := s.saveLocked(); err != nil {
		if had {
			s.vals[name] = old
		} else {
			delete(s.vals, name)
		}
		return err
	}
	return nil
}

// Delete removes a secret that is no longer used, such as the token of a removed runner.
func (s *Secrets) Delete(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadLocked(); err != nil {
		return err
	}
	old, had := s.vals[name]
	if !had {
		return nil
	}
	delete(s.vals, name)
	if err := s.saveLocked(); err != nil {
		s.vals[name] = old
		return err
	}
	return nil
}

// Names lists the stored secrets' names, sorted; values stay inside.
func (s *Secrets) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.vals))
	for n := range s.vals {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Values returns every secret value in the store, for callers that must mask them in output
// (secretfiles.StoreValues says which).
func (s *Secrets) Values() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return secretfiles.StoreValues(s.vals)
}

// MetadataSuffix ends the names of stored values that describe a secret rather than being one.
const MetadataSuffix = secretfiles.MetadataSuffix

func (s *Secrets) saveLocked() error {
	b, err := json.MarshalIndent(s.vals, "", "  ")
	if err != nil {
		return fmt.Errorf("encode secret store: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return fmt.Errorf("create data dir for the secret store: %w", err)
	}
	if err := WriteFileAtomic(s.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save secret store: %w", err)
	}
	return nil
}

// RandomSecret returns n random bytes from crypto/rand as lowercase hex: safe in environment
// variables, URLs and connection strings without quoting.
func RandomSecret(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}
