package stack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/forgebox/forgebox/service/internal/upgradepath"
)

// UpgradeStateFile is the upgrade's progress in the data dir (package upgrade writes it): while
// it exists an upgrade is half done, and only `forgebox upgrade apply` may change the stack.
const UpgradeStateFile = "upgrade-state.json"

type upgradeKey struct{}

// withUpgrade marks a context as the upgrade's own: its converges pass the guard below.
func withUpgrade(ctx context.Context) context.Context {
	return context.WithValue(ctx, upgradeKey{}, true)
}

// UpgradeInProgressError refuses changing a stack in the middle of an upgrade.
type UpgradeInProgressError struct{ File string }

func (e *UpgradeInProgressError) Error() string {
	return fmt.Sprintf("an upgrade of this stack is in progress (%s): only `forgebox upgrade apply` may change it now; run it to finish the upgrade", e.File)
}

// checkGitLabVersion refuses to start the configured GitLab image on data that another GitLab
// version left, when that would be a downgrade (GitLab's migrations only go forward) or would
// jump over a required upgrade stop: a changed gitlab.image and an `up` must never do what
// `forgebox upgrade apply` does one stop at a time. It reads the version the image keeps in its
// data; a tag without a version, or data no GitLab ran on yet, is not checked.
func (s *Stack) checkGitLabVersion(ctx context.Context) error {
	if ctx.Value(upgradeKey{}) == nil {
		if p := filepath.Join(s.cfg.Stack.DataDir, UpgradeStateFile); fileExists(p) {
			return &UpgradeInProgressError{File: p}
		}
	}
	want, ok := upgradepath.VersionFromImage(s.cfg.GitLab.Image)
	if !ok {
		return nil
	}
	have, ok, err := GitLabDataVersion(s.cfg)
	if err != nil || !ok {
		return err
	}
	return upgradepath.Load().CheckHop(have, want)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
