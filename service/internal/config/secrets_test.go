package config

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
)

func openSecrets(t *testing.T, dir string) *Secrets {
	t.Helper()
	s, err := OpenSecrets(dir)
	if err != nil {
		t.Fatalf("OpenSecrets(%s): %v", dir, err)
	}
	return s
}

// storedSecrets reads secrets.json directly, not through the package.
func storedSecrets(t *testing.T, dir string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, SecretsFile))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("secrets.json is not a JSON object of strings: %v\n%s", err, b)
	}
	return m
}

func isHex64(s string) bool {
	if len(s) != 64 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func TestOpenSecretsEmptyDir(t *testing.T) {
	dir := t.TempDir()
	s := openSecrets(t, dir)
	if s.Path() != filepath.Join(dir, "secrets.json") {
		t.Errorf("Path() = %q", s.Path())
	}
	if _, ok := s.Get(SecretPostgresSuperuser); ok {
		t.Error("Get found a secret in an empty store")
	}
	if n := s.Names(); len(n) != 0 {
		t.Errorf("Names() = %v", n)
	}
	if v := s.Values(); len(v) != 0 {
		t.Errorf("Values() = %v", v)
	}
	// Opening and reading does not create the file.
	if _, err := os.Stat(s.Path()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenSecrets created the file: %v", err)
	}
	// Deleting a name that is not there writes nothing either.
	if err := s.Delete("nothing"); err != nil {
		t.Errorf("Delete of a missing name: %v", err)
	}
	if _, err := os.Stat(s.Path()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Delete of a missing name created the file: %v", err)
	}
}

func TestEnsure(t *testing.T) {
	dir := t.TempDir()
	s := openSecrets(t, dir)
	v1, err := s.Ensure(SecretPostgresSuperuser)
	if err != nil {
		t.Fatal(err)
	}
	if !isHex64(v1) {
		t.Errorf("Ensure = %q, want 64 lowercase hex characters", v1)
	}
	v2, err := s.Ensure(SecretPostgresSuperuser)
	if err != nil || v2 != v1 {
		t.Errorf("second Ensure = %q, %v; want %q", v2, err, v1)
	}
	if got, ok := s.Get(SecretPostgresSuperuser); !ok || got != v1 {
		t.Errorf("Get = %q, %v", got, ok)
	}

	other, err := s.Ensure(SecretPostgresGitLab)
	if err != nil {
		t.Fatal(err)
	}
	if other == v1 || !isHex64(other) {
		t.Errorf("second name got %q, first %q", other, v1)
	}

	st, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("secrets.json mode = %v, want 0600", st.Mode().Perm())
	}
	want := map[string]string{SecretPostgresSuperuser: v1, SecretPostgresGitLab: other}
	if got := storedSecrets(t, dir); !reflect.DeepEqual(got, want) {
		t.Errorf("file holds %v, want %v", got, want)
	}

	// Reopened from disk, Ensure returns the stored values rather than new ones.
	r := openSecrets(t, dir)
	for name, v := range want {
		if got, err := r.Ensure(name); err != nil || got != v {
			t.Errorf("after reopening, Ensure(%s) = %q, %v; want %q", name, got, err, v)
		}
	}
	if got, want := r.Names(), []string{SecretPostgresGitLab, SecretPostgresSuperuser}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	vals := r.Values()
	sort.Strings(vals)
	wantVals := []string{v1, other}
	sort.Strings(wantVals)
	if !reflect.DeepEqual(vals, wantVals) {
		t.Errorf("Values() = %v, want %v", vals, wantVals)
	}
	assertNoTempFiles(t, dir)
}

func TestEnsureCreatesMissingDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "forgebox")
	s := openSecrets(t, dir)
	v, err := s.Ensure("x")
	if err != nil {
		t.Fatal(err)
	}
	if got := storedSecrets(t, dir)["x"]; got != v {
		t.Errorf("stored %q, want %q", got, v)
	}
}

func TestSetDeletePersist(t *testing.T) {
	dir := t.TempDir()
	s := openSecrets(t, dir)
	if err := s.Set("runner_token_default", "glrt-abc"); err != nil {
		t.Fatal(err)
	}
	if err := s.Set("runner_token_go", "glrt-go"); err != nil {
		t.Fatal(err)
	}
	if err := s.Set("runner_token_default", "glrt-new"); err != nil {
		t.Fatal(err)
	}
	r := openSecrets(t, dir)
	if v, ok := r.Get("runner_token_default"); !ok || v != "glrt-new" {
		t.Errorf("after reopening, Get = %q, %v; want the overwritten value", v, ok)
	}
	// Ensure does not replace a value that was Set.
	if v, err := r.Ensure("runner_token_go"); err != nil || v != "glrt-go" {
		t.Errorf("Ensure of a Set value = %q, %v", v, err)
	}

	if err := r.Delete("runner_token_default"); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Get("runner_token_default"); ok {
		t.Error("Get after Delete found the secret")
	}
	want := map[string]string{"runner_token_go": "glrt-go"}
	if got := storedSecrets(t, dir); !reflect.DeepEqual(got, want) {
		t.Errorf("file holds %v, want %v", got, want)
	}
	if _, ok := openSecrets(t, dir).Get("runner_token_default"); ok {
		t.Error("deleted secret is back after reopening")
	}
	if st, err := os.Stat(s.Path()); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode after Set/Delete: %v, %v", st, err)
	}
}

func TestOpenSecretsDamaged(t *testing.T) {
	for _, content := range []string{
		`{"postgres_superuser_password": "abc"`, // truncated
		"",
		"not json",
		`{"a": 1}`,
		`["a"]`,
		"null",
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, SecretsFile)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenSecrets(dir)
		if err == nil {
			t.Errorf("%q: OpenSecrets accepted a damaged store (names %v)", content, s.Names())
			continue
		}
		msg := err.Error()
		for _, want := range []string{"damaged", "do not delete it", path} {
			if !strings.Contains(msg, want) {
				t.Errorf("%q: error %q does not contain %q", content, msg, want)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Errorf("%q: file changed to %q, %v", content, got, err)
		}
		assertNoTempFiles(t, dir)
	}
}

func TestOpenSecretsUnreadable(t *testing.T) {
	// secrets.json that is a directory cannot be read: an error, not an empty store.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, SecretsFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSecrets(dir); err == nil {
		t.Fatal("OpenSecrets accepted an unreadable store")
	}
	// A data dir path that runs through a regular file is an error too.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSecrets(file); err == nil {
		t.Fatal("OpenSecrets accepted a data dir that is a regular file")
	}
}

func TestEnsureWriteFailure(t *testing.T) {
	t.Run("data dir became a regular file", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		s := openSecrets(t, dir)
		// Running as root, permissions do not stop a write; a regular file where the
		// directory was does.
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Ensure("x"); err == nil {
			t.Fatalf("Ensure = %q with no error", v)
		}
		if v, ok := s.Get("x"); ok {
			t.Errorf("unsaved secret kept in memory: %q", v)
		}
		if n := s.Names(); len(n) != 0 {
			t.Errorf("Names() = %v", n)
		}
	})

	t.Run("rename fails", func(t *testing.T) {
		dir := t.TempDir()
		s := openSecrets(t, dir)
		if err := s.Set("kept", "old"); err != nil {
			t.Fatal(err)
		}
		before, err := os.ReadFile(s.Path())
		if err != nil {
			t.Fatal(err)
		}
		// Put a non-empty directory where the file goes, so the rename over it fails.
		if err := os.Rename(s.Path(), filepath.Join(dir, "saved")); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(s.Path(), "x"), 0o700); err != nil {
			t.Fatal(err)
		}

		if v, err := s.Ensure("new"); err == nil {
			t.Fatalf("Ensure = %q with no error", v)
		}
		if _, ok := s.Get("new"); ok {
			t.Error("Ensure kept an unsaved secret in memory")
		}
		if err := s.Set("kept", "changed"); err == nil {
			t.Error("Set reported success")
		}
		if v, _ := s.Get("kept"); v != "old" {
			t.Errorf("failed Set left %q in memory, want the old value", v)
		}
		if err := s.Set("added", "v"); err == nil {
			t.Error("Set reported success")
		}
		if _, ok := s.Get("added"); ok {
			t.Error("failed Set of a new name kept it in memory")
		}
		if err := s.Delete("kept"); err == nil {
			t.Error("Delete reported success")
		}
		if v, ok := s.Get("kept"); !ok || v != "old" {
			t.Errorf("failed Delete lost the secret: %q, %v", v, ok)
		}
		assertNoTempFiles(t, dir)

		// Once the file can be written again, the store works and holds only what was saved.
		if err := os.RemoveAll(s.Path()); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "saved"), s.Path()); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(s.Path()); !bytes.Equal(got, before) {
			t.Fatalf("test setup: file changed")
		}
		v, err := s.Ensure("new")
		if err != nil || !isHex64(v) {
			t.Fatalf("Ensure = %q, %v", v, err)
		}
		want := map[string]string{"kept": "old", "new": v}
		if got := storedSecrets(t, dir); !reflect.DeepEqual(got, want) {
			t.Errorf("file holds %v, want %v", got, want)
		}
	})
}

func TestEnsureConcurrent(t *testing.T) {
	dir := t.TempDir()
	s := openSecrets(t, dir)
	const n = 32
	var wg sync.WaitGroup
	vals := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vals[i], errs[i] = s.Ensure("shared")
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Ensure %d: %v", i, errs[i])
		}
		if vals[i] != vals[0] {
			t.Fatalf("Ensure %d = %q, Ensure 0 = %q", i, vals[i], vals[0])
		}
	}
	if got := storedSecrets(t, dir)["shared"]; got != vals[0] {
		t.Errorf("stored %q, returned %q", got, vals[0])
	}

	// Different names at once: every one is saved, none lost to a concurrent write.
	got := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := s.Ensure(fmt.Sprintf("name-%02d", i))
			if err != nil {
				t.Error(err)
			}
			got[i] = v
			s.Names()
			s.Values()
		}()
	}
	wg.Wait()
	stored := storedSecrets(t, dir)
	if len(stored) != n+1 {
		t.Errorf("file holds %d secrets, want %d", len(stored), n+1)
	}
	seen := map[string]bool{}
	for i := range n {
		name := fmt.Sprintf("name-%02d", i)
		if stored[name] != got[i] {
			t.Errorf("%s: stored %q, returned %q", name, stored[name], got[i])
		}
		if seen[got[i]] {
			t.Errorf("value %q returned twice", got[i])
		}
		seen[got[i]] = true
	}
	assertNoTempFiles(t, dir)
}

func TestRandomSecret(t *testing.T) {
	for _, n := range []int{1, 16, 32} {
		a, err := RandomSecret(n)
		if err != nil {
			t.Fatal(err)
		}
		b, err := RandomSecret(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(a) != 2*n || strings.ToLower(a) != a {
			t.Errorf("RandomSecret(%d) = %q", n, a)
		}
		if _, err := hex.DecodeString(a); err != nil {
			t.Errorf("RandomSecret(%d) = %q is not hex", n, a)
		}
		if n >= 16 && a == b {
			t.Errorf("RandomSecret(%d) returned %q twice", n, a)
		}
	}
}

// Two stores on one file, as the controller and the CLI have: neither writes back a stale copy
// that drops the other's secrets.
func TestTwoStoresOnOneFileKeepEachOthersSecrets(t *testing.T) {
	dir := t.TempDir()
	a, err := OpenSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	va, _ := a.Ensure("from_a")
	vb, _ := b.Ensure("from_b")
	if err := a.Set("set_by_a", "x"); err != nil {
		t.Fatal(err)
	}
	c, err := OpenSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"from_a": va, "from_b": vb, "set_by_a": "x"} {
		if got, ok := c.Get(name); !ok || got != want {
			t.Errorf("%s = %q (%v), want %q", name, got, ok, want)
		}
	}
	if got, _ := b.Ensure("from_a"); got != va {
		t.Error("b generated its own from_a instead of reading a's")
	}
}

// TestValuesUnpackRecords: a runner record is stored as JSON, and its token must come out as a
// value on its own (a bare glrt- token in a log line is what a scrubber has to find); the
// record's ordinary fields, and metadata such as a token's expiry date, must not (they would
// mask the stack's name or a date everywhere).
func TestValuesUnpackRecords(t *testing.T) {
	dir := t.TempDir()
	s := openSecrets(t, dir)
	token := "glrt-t1_" + strings.Repeat("Ab9", 6)
	record := `{"id":7,"token":"` + token + `","description":"mystack-default","tags":["docker"],"run_untagged":true,"created_at":"2026-12-03T08:00:00Z"}`
	nested := `{"ssh":{"private_key":"-----BEGIN KEY-----abcdefgh"},"name":"plain-name"}`
	for name, v := range map[string]string{
		"runner/default":                        record,
		"other/record":                          nested,
		SecretGitLabAdminToken:                  "glpat-0123456789abcdef",
		SecretGitLabAdminToken + MetadataSuffix: "2027-09-30",
	} {
		if err := s.Set(name, v); err != nil {
			t.Fatal(err)
		}
	}
	got := openSecrets(t, dir).Values()
	sort.Strings(got)
	want := []string{"-----BEGIN KEY-----abcdefgh", "glpat-0123456789abcdef", token}
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Values() = %q\nwant %q", got, want)
	}
}
