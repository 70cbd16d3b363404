package backup

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/stack"
	"github.com/forgebox/forgebox/service/internal/upgrade/upgradepath"
)

func jsonDecoder(r io.Reader) *json.Decoder { return json.NewDecoder(r) }

// VersionMismatchError refuses a restore onto another GitLab version, saying which to install.
type VersionMismatchError struct {
	Backup, Running string
	Image           string // the image that runs the backup's version, when it can be named
}

func (e *VersionMismatchError) Error() string {
	install := "GitLab " + e.Backup
	if e.Image != "" {
		install = fmt.Sprintf("GitLab %s (gitlab.image = %q)", e.Backup, e.Image)
	}
	b, errB := upgradepath.Parse(e.Backup)
	r, errR := upgradepath.Parse(e.Running)
	switch {
	case e.Running == "":
		return fmt.Sprintf("this backup was made by GitLab %s: install %s first, bring it up (forgebox up), then restore", e.Backup, install)
	case errB == nil && errR == nil && b.Less(r):
		return fmt.Sprintf("this backup was made by GitLab %s, and this stack runs GitLab %s: a restore needs the same version, and a GitLab cannot go back to an older one. Restore onto a new stack (another stack.data_dir and share_dir) that runs %s; its data may then be upgraded with forgebox upgrade apply", e.Backup, e.Running, install)
	}
	return fmt.Sprintf("this backup was made by GitLab %s, and this stack runs GitLab %s: a restore needs the same version. Install %s first: on a new stack set it and run forgebox up; then restore, and upgrade afterwards with forgebox upgrade apply", e.Backup, e.Running, install)
}

// FlavourMismatchError refuses a restore across image flavours.
type FlavourMismatchError struct{ Backup, Running string }

func (e *FlavourMismatchError) Error() string {
	return fmt.Sprintf("this backup comes from the %s image and this stack runs %s: their secrets and files live in different places; restore onto a stack with gitlab.flavour = %q", e.Backup, e.Running, e.Backup)
}

// RestoreResult is what a restore did.
type RestoreResult struct {
	Name          string        `json:"name"`
	Version       string        `json:"gitlab_version"`
	SafetyBackup  string        `json:"safety_backup,omitempty"`
	Runners       int           `json:"runners"`
	RunnersOK     int           `json:"runners_verified"`
	Reregistered  []string      `json:"reregistered,omitempty"` // profiles GitLab did not know after the restore
	RestoredFiles []string      `json:"restored_files"`
	Took          time.Duration `json:"took"`
}

// ConfigSaver writes a changed config (the restored runner profiles) where the caller keeps it.
type ConfigSaver func(config.Config) error

// Restore puts a backup back onto the stack: it needs the GitLab version that made the backup
// (the stack is brought up first if it is not), checks every checksum, takes a safety backup,
// restores GitLab's backup, the secrets, host keys and runner records, and converges.
func Restore(ctx context.Context, x *stack.Session, nameOrPath string, save ConfigSaver) (RestoreResult, error) {
	start := time.Now()
	cfg := x.Config()
	if _, err := os.Stat(filepath.Join(cfg.Stack.DataDir, stack.UpgradeStateFile)); err == nil {
		return RestoreResult{}, &stack.UpgradeInProgressError{File: filepath.Join(cfg.Stack.DataDir, stack.UpgradeStateFile)}
	}
	file, err := Resolve(cfg.BackupDir(), nameOrPath)
	if err != nil {
		return RestoreResult{}, err
	}
	x.Emit(events.Event{Kind: events.KindStep, Message: "check every file of " + filepath.Base(file) + " against its checksum"})
	m, err := Verify(file)
	if err != nil {
		return RestoreResult{}, err
	}
	out := RestoreResult{Name: m.Name, Version: m.GitLab.Version}
	if m.GitLab.Flavour != cfg.GitLab.Flavour {
		return out, &FlavourMismatchError{Backup: m.GitLab.Flavour, Running: cfg.GitLab.Flavour}
	}
	wantImage := ""
	if bv, err := upgradepath.Parse(m.GitLab.Version); err == nil {
		wantImage, _ = upgradepath.ImageFor(cfg.GitLab.Image, bv)
	}
	if v, ok := upgradepath.VersionFromImage(cfg.GitLab.Image); ok && v.String() != m.GitLab.Version {
		return out, &VersionMismatchError{Backup: m.GitLab.Version, Running: v.String(), Image: wantImage}
	}
	// An empty or stopped stack is brought up first: GitLab's restore runs inside GitLab.
	if _, err := x.Running(ctx, "gitlab"); err != nil {
		x.Emit(events.Event{Kind: events.KindStep, Message: "bring the stack up: GitLab's restore runs inside GitLab"})
		if _, err := x.Converge(ctx); err != nil {
			return out, fmt.Errorf("bring the stack up for the restore: %w", err)
		}
	}
	running, err := x.GitLabVersion(ctx)
	if err != nil {
		return out, fmt.Errorf("GitLab must be up and ready for a restore: %w", err)
	}
	if running.String() != m.GitLab.Version {
		return out, &VersionMismatchError{Backup: m.GitLab.Version, Running: running.String(), Image: wantImage}
	}

	// The stack as it is now, in case this restore is not what the user wanted.
	x.Emit(events.Event{Kind: events.KindStep, Message: "safety backup of the stack as it is now, before it is replaced"})
	safety, err := Create(ctx, x, KindPreRestore)
	if err != nil {
		return out, fmt.Errorf("the safety backup before the restore failed, so nothing was restored: %w", err)
	}
	out.SafetyBackup = safety.Name
	undo := fmt.Sprintf("; the stack as it was before is in backup %s (forgebox backup restore %s)", safety.Name, safety.Name)

	// GitLab's own backup, into GitLab's backup directory, owned as the directory is.
	hostBackups, err := x.HostPath("gitlab", gitlabBackupDir(cfg.GitLab.Flavour))
	if err != nil {
		return out, err
	}
	placed := ""
	defer func() {
		if placed != "" {
			os.Remove(placed)
		}
	}()
	var (
		secrets map[string]string
		files   = map[string][]byte{}
		modes   = map[string]os.FileMode{}
		backCfg config.Config
	)
	x.Emit(events.Event{Kind: events.KindStep, Message: "unpack the backup"})
	_, err = walkArchive(file, func(mem Member, r io.Reader) error {
		switch {
		case strings.HasPrefix(mem.Path, gitlabTarPrefix):
			p, err := placeFile(hostBackups, strings.TrimPrefix(mem.Path, gitlabTarPrefix), r)
			placed = p
			return err
		case mem.Path == MemberSecrets:
			b, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			secrets, err = readSecrets(b)
			return err
		case mem.Path == MemberConfig:
			b, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			backCfg, err = config.Parse(b)
			if err != nil {
				return fmt.Errorf("the backup's config: %w", err)
			}
			return nil
		case strings.HasPrefix(mem.Path, sshPrefix), mem.Path == MemberOmnibusJSON, mem.Path == MemberOmnibusRB:
			b, err := io.ReadAll(r)
			files[mem.Path], modes[mem.Path] = b, os.FileMode(mem.Mode)
			return err
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("unpack the backup: %w", err)
	}
	if secrets == nil {
		return out, &CorruptError{File: file, Reason: "it holds no secret store"}
	}
	if cfg.GitLab.Flavour == "omnibus" && files[MemberOmnibusJSON] == nil {
		return out, &CorruptError{File: file, Reason: "it holds no gitlab-secrets.json"}
	}

	// GitLab's restore, with its Rails processes stopped as its restore procedure says.
	if err := x.Stop(ctx, "runner"); err != nil {
		return out, err
	}
	for _, cmd := range stopRailsCommands(cfg.GitLab.Flavour) {
		res, err := x.Exec(ctx, "gitlab", "root", cmd)
		if err != nil || res.ExitCode != 0 {
			return out, fmt.Errorf("stop GitLab's %s before the restore: %v %s", strings.Join(cmd, " "), err, lastLines(res.Stderr, 3))
		}
	}
	user, cmd := gitlabCommand(cfg.GitLab.Flavour, "restore", m.GitLab.BackupID)
	x.Emit(events.Event{Kind: events.KindStep, Component: "gitlab", Message: "GitLab's restore: " + strings.Join(cmd, " ")})
	ectx, cancel := context.WithTimeout(ctx, GitLabBackupTimeout)
	res, err := x.Exec(ectx, "gitlab", user, cmd)
	cancel()
	if err != nil {
		return out, fmt.Errorf("run GitLab's restore: %w%s", err, undo)
	}
	if res.ExitCode != 0 {
		return out, fmt.Errorf("GitLab's restore failed (exit code %d): %s%s", res.ExitCode, lastLines(res.Stdout+"\n"+res.Stderr, 8), undo)
	}

	// The secrets that belong to the restored data.
	if err := restoreSecrets(x.Secrets(), secrets); err != nil {
		return out, fmt.Errorf("restore the secrets: %w%s", err, undo)
	}
	out.RestoredFiles = append(out.RestoredFiles, x.SecretsPath())
	restoredFiles, err := restoreFiles(x, cfg, files, modes)
	out.RestoredFiles = append(out.RestoredFiles, restoredFiles...)
	if err != nil {
		return out, fmt.Errorf("restore GitLab's files: %w%s", err, undo)
	}
	// The runner profiles: each runner record belongs to one; a profile the config lacks would
	// have its runner unregistered by the next up.
	if backCfg.Version != 0 && !slices.EqualFunc(backCfg.Runner.Profiles, cfg.Runner.Profiles, profileEqual) {
		cfg.Runner.Profiles = backCfg.Runner.Profiles
		cfg.Runner.Concurrent = backCfg.Runner.Concurrent
		if save != nil {
			if err := save(cfg); err != nil {
				return out, fmt.Errorf("save the restored runner profiles: %w%s", err, undo)
			}
		}
		x.SetConfig(cfg)
		x.Emit(events.Event{Kind: events.KindInfo, Message: fmt.Sprintf("runner profiles restored from the backup (%d)", len(cfg.Runner.Profiles))})
	}
	records, err := x.RunnerRecords()
	if err != nil {
		return out, err
	}
	out.Runners = len(records)

	// GitLab starts again with the restored secrets and host keys; the runner with its tokens.
	x.Emit(events.Event{Kind: events.KindStep, Component: "gitlab", Message: "restart GitLab with the restored secrets"})
	if err := x.Stop(ctx, "gitlab"); err != nil {
		return out, err
	}
	if _, err := x.Converge(ctx); err != nil {
		return out, fmt.Errorf("bring the stack up after the restore: %w%s", err, undo)
	}
	after, err := x.RunnerRecords()
	if err != nil {
		return out, err
	}
	for profile, r := range records {
		if a, ok := after[profile]; ok && a.ID != r.ID {
			out.Reregistered = append(out.Reregistered, profile)
		}
	}
	sort.Strings(out.Reregistered)
	known, err := x.VerifyRunners(ctx)
	if err != nil {
		return out, err
	}
	for _, ok := range known {
		if ok {
			out.RunnersOK++
		}
	}
	out.Took = time.Since(start)
	if len(out.Reregistered) > 0 {
		x.Emit(events.Event{Kind: events.KindInfo, Component: "runner", Message: "GitLab did not know the restored token of runner profile(s) " + strings.Join(out.Reregistered, ", ") + "; they were registered again"})
	}
	x.Emit(events.Event{Kind: events.KindInfo, Message: fmt.Sprintf("restored %s (GitLab %s): %d of %d runners verified with their restored tokens, in %s; safety backup %s",
		m.Name, m.GitLab.Version, out.RunnersOK, out.Runners, out.Took.Round(100*time.Millisecond), safety.Name)})
	return out, nil
}

func profileEqual(a, b config.Profile) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// stopRailsCommands stop GitLab's processes that hold database connections (as root).
func stopRailsCommands(flavour string) [][]string {
	if flavour == "omnibus" {
		return [][]string{{"gitlab-ctl", "stop", "puma"}, {"gitlab-ctl", "stop", "sidekiq"}}
	}
	// sameersbn's execute_raketask does this before its rake tasks.
	return [][]string{{"supervisorctl", "stop", "gitlab:*"}}
}

// placeFile writes r into dir/name (temp file, then rename), mode 0600 and owned like dir, so
// GitLab's backup user can read it.
func placeFile(dir, name string, r io.Reader) (string, error) {
	if name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("bad file name %q in the backup", name)
	}
	f, err := os.CreateTemp(dir, ".forgebox-restore-*")
	if err != nil {
		return "", fmt.Errorf("write into GitLab's backup directory: %w%s", err, stack.DiskAdvice(err))
	}
	tmp := f.Name()
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Close()
	} else {
		f.Close()
	}
	if fi, serr := os.Stat(dir); err == nil && serr == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			err = os.Chown(tmp, int(st.Uid), int(st.Gid))
		}
	}
	final := filepath.Join(dir, name)
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("write GitLab's backup into %s: %w%s", dir, err, stack.DiskAdvice(err))
	}
	return final, nil
}

// restoreSecrets makes the secret store the backup's, except the PostgreSQL passwords, which
// belong to the data directory this stack runs on (the restored GitLab data lives in the
// database, not in those). Runner records not in the backup go: GitLab's restored runners
// table does not have them.
func restoreSecrets(store stack.SecretStore, backup map[string]string) error {
	for _, name := range store.Names() {
		if strings.HasPrefix(name, "runner/") {
			if _, ok := backup[name]; !ok {
				if err := store.Delete(name); err != nil {
					return err
				}
			}
		}
	}
	names := make([]string, 0, len(backup))
	for n := range backup {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if isPostgresSecret(n) {
			continue
		}
		if cur, ok := store.Get(n); ok && cur == backup[n] {
			continue
		}
		if err := store.Set(n, backup[n]); err != nil {
			return err
		}
	}
	return nil
}

// restoreFiles writes the SSH host keys and Omnibus's /etc/gitlab files to where GitLab reads
// them, atomically, with their modes.
func restoreFiles(x *stack.Session, cfg config.Config, files map[string][]byte, modes map[string]os.FileMode) ([]string, error) {
	keyDir, err := x.HostPath("gitlab", sshHostKeyDir(cfg.GitLab.Flavour))
	if err != nil {
		return nil, err
	}
	etc := ""
	if cfg.GitLab.Flavour == "omnibus" {
		if etc, err = x.HostPath("gitlab", "/etc/gitlab"); err != nil {
			return nil, err
		}
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var done []string
	for _, p := range paths {
		var dest string
		switch {
		case strings.HasPrefix(p, sshPrefix):
			dest = filepath.Join(keyDir, filepath.Base(p))
		case p == MemberOmnibusJSON && etc != "":
			dest = filepath.Join(etc, "gitlab-secrets.json")
		case p == MemberOmnibusRB && etc != "":
			dest = filepath.Join(etc, "gitlab.rb")
		default:
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return done, err
		}
		mode := modes[p] & 0o777
		if mode == 0 {
			mode = 0o600
		}
		if err := config.WriteFileAtomic(dest, files[p], mode); err != nil {
			return done, err
		}
		done = append(done, dest)
	}
	return done, nil
}
