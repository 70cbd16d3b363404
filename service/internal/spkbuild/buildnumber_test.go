package spkbuild_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/spkbuild/spktest"
)

// TestBuildNumberOnlyGrows runs build.sh's dsm-build-number in three clones of a scratch
// repository holding this repository's build.sh: a full clone counts its commits, a shallow
// clone is refused with what to do, and FORGEBOX_DSM_BUILD overrides both (a number only).
func TestBuildNumberOnlyGrows(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is needed: build.sh takes the build number from git")
	}
	script, err := os.ReadFile(filepath.Join(spktest.RepoRoot(t), "build.sh"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	origin := filepath.Join(dir, "origin")
	git := func(wd string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = wd
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	os.MkdirAll(origin, 0o755)
	git(origin, "init", "-q")
	os.WriteFile(filepath.Join(origin, "build.sh"), script, 0o755)
	for i := range 3 {
		os.WriteFile(filepath.Join(origin, "n"), []byte{byte('0' + i)}, 0o644)
		git(origin, "add", ".")
		git(origin, "commit", "-q", "-m", "c")
	}
	git(dir, "clone", "-q", "file://"+origin, "full")
	git(dir, "clone", "-q", "--depth", "1", "file://"+origin, "shallow")

	number := func(clone, override string) (string, string, error) {
		cmd := exec.Command("bash", "build.sh", "dsm-build-number")
		cmd.Dir = filepath.Join(dir, clone)
		cmd.Env = append(os.Environ(), "FORGEBOX_DSM_BUILD="+override)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), stderr.String(), err
	}
	if n, errs, err := number("full", ""); err != nil || n != "3" {
		t.Errorf("full clone: %q %v %s", n, err, errs)
	}
	if n, errs, err := number("shallow", ""); err == nil || n != "" ||
		!strings.Contains(errs, "shallow clone") || !strings.Contains(errs, "FORGEBOX_DSM_BUILD") {
		t.Errorf("shallow clone accepted: %q %v %s", n, err, errs)
	}
	if n, errs, err := number("shallow", "57"); err != nil || n != "57" {
		t.Errorf("shallow clone with FORGEBOX_DSM_BUILD=57: %q %v %s", n, err, errs)
	}
	if _, errs, err := number("full", "57a"); err == nil || !strings.Contains(errs, "not a number") {
		t.Errorf("FORGEBOX_DSM_BUILD=57a accepted: %v %s", err, errs)
	}
}
