package dsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
)

// Where the data share really is. DSM's data-share worker makes the shared folder and its link
// /var/packages/forgebox/shares/forgebox when the package is enabled (FROM_ENABLE), while
// Container Manager's docker-project worker creates the controller's project at WHEN_POSTINST,
// earlier. Should Docker ever start the controller before the link exists, it makes a
// root-owned directory at that path, on the system partition, and GitLab's data would land
// there. So start resolves the link on the host and records what it found (ShareRecordName in
// the var dir), and the controller, which sees only its bind mount, refuses to bring the stack
// up unless that record says the share is under a /volumeN and is the directory it has mounted.
//
// The share's bind in spk/compose/compose.yaml keeps create_host_path: a missing bind source
// with create_host_path: false makes Docker refuse to *create* the container (Docker 20.10,
// "bind source path does not exist"; TestMissingBindSourceRefusedAtCreate), which the
// docker-project worker does at WHEN_POSTINST, before the link exists: the install would fail.

// The controller's environment in the package's compose project: it runs on DSM.
const (
	EnvPlatform = "FORGEBOX_PLATFORM"
	PlatformDSM = "dsm"
)

// ShareRecordName is the record start writes in the var dir.
const ShareRecordName = "share.json"

// ShareRecord is what start found, on the host, at the share's path.
type ShareRecord struct {
	Share     string `json:"share"`    // the path the config and the compose project use
	Resolved  string `json:"resolved"` // where it leads on the host
	Dev       uint64 `json:"dev"`
	Ino       uint64 `json:"ino"`
	CheckedAt string `json:"checked_at"`
}

// volumePath is a DSM volume's mount point and what lies under it.
var volumePath = regexp.MustCompile(`^/volume[0-9]+/.`)

// hostRoot is the "/" of the NAS that share lives in: "" on a NAS, the scratch root when the
// package root is elsewhere (the installation test's scratch NAS).
func hostRoot(share string) string {
	root, ok := strings.CutSuffix(filepath.Clean(share), "/var/packages/"+PackageName+"/shares/"+ShareName)
	if !ok {
		return "" // not laid out as a package root: take the path as the NAS's own
	}
	return root
}

// UnderVolume says whether resolved lies under a /volumeN of the NAS whose share path is share.
func UnderVolume(share, resolved string) bool {
	rest, ok := strings.CutPrefix(resolved, hostRoot(share))
	return ok && volumePath.MatchString(rest)
}

// RecordShare resolves the share's path on the host and writes the record. An error says what
// is wrong and what to do, in words for the user.
func RecordShare(env Env) (ShareRecord, error) {
	share := env.ShareDir
	os.Remove(filepath.Join(env.VarDir, ShareRecordName)) // a stale record must not vouch for anything
	resolved, err := filepath.EvalSymlinks(share)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return ShareRecord{}, fmt.Errorf("the shared folder %s is not there yet: DSM makes it when the package starts; stop and start Forgebox in Package Center", share)
		}
		return ShareRecord{}, fmt.Errorf("cannot resolve the shared folder %s: %w", share, err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(resolved, &st); err != nil {
		return ShareRecord{}, fmt.Errorf("cannot read the shared folder %s: %w", resolved, err)
	}
	rec := ShareRecord{Share: share, Resolved: resolved, Dev: uint64(st.Dev), Ino: st.Ino, CheckedAt: time.Now().UTC().Format(time.RFC3339)}
	if !UnderVolume(share, resolved) {
		return rec, shareNotOnVolume(share, resolved)
	}
	b, _ := json.MarshalIndent(rec, "", "  ")
	if err := config.WriteFileAtomic(filepath.Join(env.VarDir, ShareRecordName), append(b, '\n'), 0o644); err != nil {
		return rec, fmt.Errorf("record where the shared folder is: %w", err)
	}
	return rec, nil
}

func shareNotOnVolume(share, resolved string) error {
	return fmt.Errorf("the shared folder %s leads to %s, which is not on a volume (/volume1, /volume2, ...): "+
		"a directory there (Docker makes one if it started the controller before DSM linked the shared folder) hides the shared folder, "+
		"and GitLab's data would land on the system partition. Stop Forgebox in Package Center; over SSH, move anything in %s into the "+
		"shared folder %s (Control Panel > Shared Folder shows where it is), then remove the directory (sudo rm -rf %s); start Forgebox again, "+
		"and DSM links the shared folder", share, resolved, resolved, ShareName, resolved)
}

// Preflight is the controller's check before up and restart on DSM (api.Options.Preflight):
// the share is the shared folder, and GitLab's data of an earlier version has moved to the var
// dir.
func (s ShareCheck) Preflight(cfg config.Config) error {
	if err := s.Check(cfg); err != nil {
		return err
	}
	moved, err := MoveLegacyGitLabData(cfg)
	if err != nil {
		return err
	}
	if moved != "" && s.Log != nil {
		s.Log.Info("GitLab's data moved from the shared folder to the var dir; the old folder is kept", "gitlab_dir", cfg.GitLabDir(), "old", moved)
	}
	return nil
}

// ShareCheck is the controller's check before it brings the stack up on DSM: the record start
// wrote must name this config's share, under a /volumeN, and be the directory the controller
// has mounted at that path (same device and inode: a bind mount keeps both).
type ShareCheck struct {
	VarDir string // where the record is: the config file's directory
	Log    *slog.Logger
}

// Check returns nil when the stack may come up.
func (s ShareCheck) Check(cfg config.Config) error {
	share := cfg.ShareDir()
	b, err := os.ReadFile(filepath.Join(s.VarDir, ShareRecordName))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("Forgebox has not checked where its shared folder %s is: stop and start Forgebox in Package Center (start checks it), then bring the stack up", share)
		}
		return fmt.Errorf("read where the shared folder is: %w", err)
	}
	var rec ShareRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return fmt.Errorf("the record %s is damaged (%v): stop and start Forgebox in Package Center", filepath.Join(s.VarDir, ShareRecordName), err)
	}
	if filepath.Clean(rec.Share) != filepath.Clean(share) {
		return fmt.Errorf("the config's share_dir %s is not the package's shared folder %s: on DSM set share_dir back to %s", share, rec.Share, rec.Share)
	}
	if !UnderVolume(rec.Share, rec.Resolved) {
		return shareNotOnVolume(rec.Share, rec.Resolved)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(share, &st); err != nil {
		return fmt.Errorf("the controller cannot see the shared folder at %s (%v): stop and start Forgebox in Package Center", share, err)
	}
	if uint64(st.Dev) != rec.Dev || st.Ino != rec.Ino {
		return fmt.Errorf("the directory the controller has at %s is not the shared folder %s that DSM links there "+
			"(the controller was started before DSM made the link): stop and start Forgebox in Package Center", share, rec.Resolved)
	}
	return nil
}
