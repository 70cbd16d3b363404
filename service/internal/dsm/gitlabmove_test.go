//go:build linux

package dsm

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/forgebox/forgebox/service/internal/config"
)

// TestMoveLegacyGitLabData moves an existing install's GitLab data from the share to the var
// dir as the controller does before up: contents, owners (other uids, as GitLab's containers
// write them), modes with setgid, symbolic links and times arrive; the old folder is renamed,
// whole; a second run does nothing; data in both places is refused.
func TestMoveLegacyGitLabData(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	cfg := config.Default()
	cfg.Stack.DataDir = filepath.Join(root, "var/data")
	cfg.Stack.ShareDir = filepath.Join(root, "share")
	cfg.Stack.GitLabDir = filepath.Join(root, "var/gitlab")
	old := filepath.Join(cfg.Stack.ShareDir, "gitlab")
	repos := filepath.Join(old, "data/repositories")
	os.MkdirAll(repos, 0o755)
	os.Chown(repos, 1000, 1000)
	syscall.Chmod(repos, 0o2770) // setgid, as sameersbn's image sets it on repositories
	os.WriteFile(filepath.Join(repos, "HEAD"), []byte("ref: refs/heads/main\n"), 0o640)
	os.Chown(filepath.Join(repos, "HEAD"), 1000, 998)
	os.Symlink("repositories/HEAD", filepath.Join(old, "data/head-link"))
	os.MkdirAll(filepath.Join(old, "logs"), 0o700)
	os.WriteFile(filepath.Join(old, "logs/empty.log"), nil, 0o600)
	os.MkdirAll(filepath.Dir(cfg.Stack.GitLabDir), 0o755)

	moved, err := MoveLegacyGitLabData(cfg)
	if err != nil || !strings.HasPrefix(moved, old+MovedSuffix) {
		t.Fatalf("move: %q %v", moved, err)
	}
	check := func(dir string) {
		t.Helper()
		st := func(p string) (os.FileInfo, *syscall.Stat_t) {
			fi, err := os.Lstat(filepath.Join(dir, p))
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			return fi, fi.Sys().(*syscall.Stat_t)
		}
		if fi, s := st("data/repositories"); !fi.IsDir() || fi.Mode()&os.ModeSetgid == 0 || fi.Mode().Perm() != 0o770 || s.Uid != 1000 || s.Gid != 1000 {
			t.Errorf("%s repositories: %v %d:%d", dir, fi.Mode(), s.Uid, s.Gid)
		}
		if fi, s := st("data/repositories/HEAD"); fi.Mode().Perm() != 0o640 || s.Uid != 1000 || s.Gid != 998 {
			t.Errorf("%s HEAD: %v %d:%d", dir, fi.Mode(), s.Uid, s.Gid)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "data/repositories/HEAD")); string(b) != "ref: refs/heads/main\n" {
			t.Errorf("%s HEAD holds %q", dir, b)
		}
		if l, _ := os.Readlink(filepath.Join(dir, "data/head-link")); l != "repositories/HEAD" {
			t.Errorf("%s link %q", dir, l)
		}
		if _, err := os.Stat(filepath.Join(dir, "logs/empty.log")); err != nil {
			t.Error(err)
		}
	}
	check(cfg.Stack.GitLabDir)
	check(moved) // nothing lost: the old folder is whole under its new name
	if _, err := os.Stat(old); err == nil {
		t.Error("the old folder is still in use under its name")
	}
	if _, err := os.Stat(cfg.Stack.GitLabDir + ".moving"); err == nil {
		t.Error("the temporary copy is left")
	}
	if again, err := MoveLegacyGitLabData(cfg); again != "" || err != nil {
		t.Errorf("second run: %q %v", again, err)
	}
	// Data in both places: refuse to choose.
	os.MkdirAll(filepath.Join(old, "data"), 0o755)
	if _, err := MoveLegacyGitLabData(cfg); err == nil || !strings.Contains(err.Error(), "two places") {
		t.Errorf("data in both places: %v", err)
	}
}
