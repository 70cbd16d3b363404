package dsm

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
)

// Before this version the package kept GitLab's live data in the share's gitlab folder, where
// containers that chmod hit "Operation not permitted" (Synology's ACLs; shared research
// audit-spk.md finding 8). postinst points an upgraded config at the var dir (gitlab_dir); the
// controller, which runs as root with both mounted, moves the data before the stack next comes
// up. The stack is down then: a package upgrade stops it, and so does an uninstall before a
// re-install. The copy keeps owners, modes (set after the owner, which would clear setgid),
// times and symbolic links; it lands under a temporary name and is renamed when complete, and
// the old folder is renamed, never deleted.

// MovedSuffix marks the old folder after the move.
const MovedSuffix = "-moved-to-appdata-"

// MoveLegacyGitLabData moves GitLab's data from the share to cfg's gitlab_dir when the first
// has data and the second has none. It returns the old folder's new name, "" when nothing moved.
func MoveLegacyGitLabData(cfg config.Config) (string, error) {
	oldDir := filepath.Join(cfg.ShareDir(), GitLabShareDir)
	newDir := cfg.GitLabDir()
	if filepath.Clean(oldDir) == filepath.Clean(newDir) {
		return "", nil
	}
	if empty, err := isEmptyDir(oldDir); err != nil || empty {
		return "", err
	}
	if empty, err := isEmptyDir(newDir); err != nil {
		return "", err
	} else if !empty {
		return "", fmt.Errorf("GitLab's data is in two places, %s and %s: the stack uses %s; move or delete the other over SSH, then bring the stack up",
			oldDir, newDir, newDir)
	}
	tmp := newDir + ".moving"
	if err := os.RemoveAll(tmp); err != nil { // a copy an interrupted move left: ours, never the data
		return "", fmt.Errorf("remove the unfinished copy %s: %w", tmp, err)
	}
	if err := copyTree(oldDir, tmp); err != nil {
		return "", fmt.Errorf("copy GitLab's data from %s to %s: %w (nothing was removed; the copy %s can go)", oldDir, newDir, err, tmp)
	}
	if err := os.Remove(newDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("replace the empty %s: %w", newDir, err)
	}
	if err := os.Rename(tmp, newDir); err != nil {
		return "", fmt.Errorf("put GitLab's data in place at %s: %w", newDir, err)
	}
	moved := oldDir + MovedSuffix + time.Now().UTC().Format("20060102-150405")
	if err := os.Rename(oldDir, moved); err != nil {
		return "", fmt.Errorf("GitLab's data is now in %s, but the old folder %s could not be renamed (%w): delete it once GitLab works", newDir, oldDir, err)
	}
	return moved, nil
}

// isEmptyDir says whether dir is missing or empty.
func isEmptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}

// copyTree copies src to dst (which must not exist), keeping owners, modes, times and links.
// Sockets and device files are not data and are left out.
func copyTree(src, dst string) error {
	type dirTimes struct {
		path string
		st   *syscall.Stat_t
	}
	var dirs []dirTimes
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode()
		switch {
		case mode.IsDir():
			if err := os.Mkdir(out, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, dirTimes{out, st})
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, out); err != nil {
				return err
			}
			return os.Lchown(out, int(st.Uid), int(st.Gid))
		case mode.IsRegular():
			if err := copyFile(p, out); err != nil {
				return err
			}
		default:
			return nil
		}
		if err := os.Lchown(out, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		if err := syscall.Chmod(out, st.Mode&0o7777); err != nil {
			return err
		}
		if !mode.IsDir() {
			return os.Chtimes(out, time.Unix(st.Atim.Unix()), time.Unix(st.Mtim.Unix()))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- { // children first changed their parents' times
		d := dirs[i]
		os.Chtimes(d.path, time.Unix(d.st.Atim.Unix()), time.Unix(d.st.Mtim.Unix()))
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
