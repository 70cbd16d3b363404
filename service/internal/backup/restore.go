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
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/msg"
	"github.com/forgebox/forgebox/service/internal/stack"
	"github.com/forgebox/forgebox/service/internal/upgradepath"
)

func jsonDecoder(r io.Reader) *json.Decoder { return json.NewDecoder(r) }

// VersionMismatchError refuses a restore onto another GitLab version, saying which to install.
type VersionMismatchError struct {
	Backup, Running string
	Image           string // the image that runs the backup's version, when it can be named
}

func (e *VersionMismatchError) Error() string { return e.Msg().String() }

// Msg is the refusal as a message code.
func (e *VersionMismatchError) Msg() msg.Msg {
	install := msg.New("restore.installVersion", "version", e.Backup)
	if e.Image != "" {
		install = msg.New("restore.installImage", "version", e.Backup, "image", msg.Q(e.Image))
	}
	b, errB := upgradepath.Parse(e.Backup)
	r, errR := upgradepath.Parse(e.Running)
	switch {
	case e.Running == "":
		return msg.New("restore.versionNotUp", "backup", e.Backup, "install", install)
	case errB == nil && errR == nil && b.Less(r):
		return msg.New("restore.versionOlder", "backup", e.Backup, "running", e.Running, "install", install)
	}
	return msg.New("restore.versionOther", "backup", e.Backup, "running", e.Running, "install", install)
}

// FlavourMismatchError refuses a restore across image flavours forgebox cannot carry secrets
// between (sameersbn and omnibus it can: xflavour.go).
type FlavourMismatchError struct{ Backup, Running string }

func (e *FlavourMismatchError) Error() string { return e.Msg().String() }

// Msg is the refusal as a message code.
func (e *FlavourMismatchError) Msg() msg.Msg {
	return msg.New("restore.flavour", "backup", e.Backup, "running", e.Running, "want", msg.Q(e.Backup))
}

// RestoreResult is what a restore did.
type RestoreResult struct {
	Name          string        `json:"name"`
	Version       string        `json:"gitlab_version"`
	FromFlavour   string        `json:"from_flavour,omitempty"` // set when the backup came from the other image flavour
	SafetyBackup  string        `json:"safety_backup,omitempty"`
	Runners       int           `json:"runners"`
	RunnersOK     int           `json:"runners_verified"`
	Reregistered  []string      `json:"reregistered,omitempty"` // profiles GitLab did not know after the restore
	RestoredFiles []string      `json:"restored_files"`
	GitLabErrors  string        `json:"gitlab_errors,omitempty"` // the errors GitLab's restore listed (BEGIN ERRORS)
	Took          time.Duration `json:"took"`
}

// ConfigSaver writes a changed config (the restored runner profiles) where the caller keeps it.
type ConfigSaver func(config.Config) error

// PostgresTooOldError refuses a restore of a database dumped from a newer PostgreSQL major.
type PostgresTooOldError struct{ Backup, Running int }

func (e *PostgresTooOldError) Error() string { return e.Msg().String() }

// Msg is the refusal as a message code.
func (e *PostgresTooOldError) Msg() msg.Msg {
	return msg.New("restore.postgresTooOld", "backup", e.Backup, "running", e.Running)
}

// unpacked is what a restore takes from the archive before it changes anything.
type unpacked struct {
	secrets   map[string]string
	files     map[string][]byte
	modes     map[string]os.FileMode
	backCfg   config.Config
	gitlabTar string // placed in GitLab's backup directory
	dump      string // placed in PostgreSQL's work directory (format 2)
}

// Restore puts a backup back onto the stack: it needs the GitLab version that made the backup
// (the stack is brought up first if it is not), checks every checksum, takes a safety backup,
// restores the database and GitLab's backup, the secrets, host keys and runner records, and
// converges.
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
	x.Emit(events.Event{Kind: events.KindStep, Status: events.Working}.With(msg.New("restore.verify", "name", filepath.Base(file))))
	m, err := Verify(file)
	if err != nil {
		return RestoreResult{}, err
	}
	out := RestoreResult{Name: m.Name, Version: m.GitLab.Version}
	if err := checkRestorable(ctx, x, m); err != nil {
		return out, err
	}
	withDB := hasMember(m, MemberDatabase)
	serverMajor := 0
	if withDB {
		pg, err := postgresInfo(ctx, x)
		if err != nil {
			return out, err
		}
		serverMajor = pg.Major
		if m.Postgres.Major > pg.Major {
			return out, &PostgresTooOldError{Backup: m.Postgres.Major, Running: pg.Major}
		}
	} else {
		x.Emit(events.Event{Kind: events.KindInfo}.With(msg.New("restore.oldFormat", "name", m.Name, "format", m.Format)))
	}

	// The stack as it is now, in case this restore is not what the user wanted.
	x.Emit(events.Event{Kind: events.KindStep, Status: events.Working}.With(msg.New("restore.safety")))
	safety, err := Create(ctx, x, KindPreRestore)
	if err != nil {
		return out, fmt.Errorf("the safety backup before the restore failed, so nothing was restored: %w", err)
	}
	out.SafetyBackup = safety.Name
	undo := fmt.Sprintf("; the stack as it was before is in backup %s (forgebox backup restore %s)", safety.Name, safety.Name)

	var work *dbWork
	if withDB {
		if work, err = openDBWork(ctx, x); err != nil {
			return out, err
		}
		defer work.close()
	}
	x.Emit(events.Event{Kind: events.KindStep, Status: events.Working}.With(msg.New("restore.unpack")))
	u, err := unpack(x, cfg, m.GitLab.Flavour, file, work)
	if u.gitlabTar != "" {
		defer os.Remove(u.gitlabTar)
	}
	if err != nil {
		return out, err
	}
	if m.GitLab.Flavour != cfg.GitLab.Flavour {
		out.FromFlavour = m.GitLab.Flavour
		if err := carrySecrets(x, cfg, m.GitLab.Flavour, &u); err != nil {
			return out, err
		}
	}

	// GitLab's processes that use the database stop, and the runner, as GitLab's restore
	// procedure says; whatever happens next, they come back (or the error says what did not).
	if err := x.Stop(ctx, "runner"); err != nil {
		return out, bringBack(ctx, x, nil, err)
	}
	stopped, err := stopGitLab(ctx, x, cfg.GitLab.Flavour)
	if err != nil {
		return out, bringBack(ctx, x, stopped, err)
	}
	if withDB {
		x.Emit(events.Event{Kind: events.KindStep, Status: events.Working, Component: "postgres"}.With(msg.New("restore.database")))
		if err := restoreDatabase(ctx, x, work, u.dump, serverMajor); err != nil {
			return out, bringBack(ctx, x, stopped, fmt.Errorf("%w%s", err, undo))
		}
	}
	user, cmd := gitlabCommand(cfg.GitLab.Flavour, "restore", m.GitLab.BackupID, !withDB)
	x.Emit(events.Event{Kind: events.KindStep, Status: events.Working, Component: "gitlab"}.With(msg.New("restore.gitlab", "command", msg.Raw(strings.Join(cmd, " ")))))
	ectx, cancel := context.WithTimeout(ctx, GitLabBackupTimeout)
	res, err := x.Exec(ectx, "gitlab", user, cmd)
	cancel()
	if err != nil {
		return out, bringBack(ctx, x, stopped, fmt.Errorf("run GitLab's restore: %w%s", err, undo))
	}
	out.GitLabErrors = gitlabErrors(res.Stdout + "\n" + res.Stderr)
	if out.GitLabErrors != "" {
		x.Emit(events.Event{Kind: events.KindInfo, Status: events.Warning, Component: "gitlab"}.With(msg.New("restore.gitlabErrors", "errors", msg.Raw(out.GitLabErrors))))
	}
	if res.ExitCode != 0 {
		detail := stack.LastLines(res.Stdout+"\n"+res.Stderr, 8)
		if out.GitLabErrors != "" {
			detail = "its errors: " + out.GitLabErrors + "; last lines: " + detail
		}
		return out, bringBack(ctx, x, stopped, fmt.Errorf("GitLab's restore failed (exit code %d): %s%s", res.ExitCode, detail, undo))
	}

	if err := putBack(x, cfg, u, save, &out); err != nil {
		return out, bringBack(ctx, x, stopped, fmt.Errorf("%w%s", err, undo))
	}
	records, err := x.RunnerRecords()
	if err != nil {
		return out, bringBack(ctx, x, stopped, err)
	}
	out.Runners = len(records)

	// GitLab starts again with the restored secrets and host keys; the runner with its tokens.
	x.Emit(events.Event{Kind: events.KindStep, Status: events.Working, Component: "gitlab"}.With(msg.New("restore.restartGitLab")))
	if err := x.Stop(ctx, "gitlab"); err != nil {
		return out, bringBack(ctx, x, stopped, fmt.Errorf("restart GitLab after the restore: %w%s", err, undo))
	}
	if _, err := x.Converge(ctx); err != nil {
		// GitLab's container restarted, so its processes are no longer the ones stopped above.
		return out, bringBack(ctx, x, nil, fmt.Errorf("bring the stack up after the restore: %w%s", err, undo))
	}
	if err := checkRunners(ctx, x, records, &out); err != nil {
		return out, err
	}
	if out.FromFlavour != "" && len(out.Reregistered) > 0 {
		// After a switch, a rejected token means the carried secrets are not the data's.
		return out, switchedSecretsError(out.FromFlavour, cfg.GitLab.Flavour, out.Reregistered, safety.Name)
	}
	out.Took = time.Since(start)
	x.Emit(events.Event{Kind: events.KindInfo, Status: events.Done}.With(msg.New("restore.done", "name", m.Name, "version", m.GitLab.Version,
		"ok", out.RunnersOK, "n", out.Runners, "took", out.Took.Round(100*time.Millisecond).String(), "safety", safety.Name)))
	return out, nil
}

func hasMember(m Manifest, p string) bool {
	return slices.ContainsFunc(m.Members, func(mem Member) bool { return mem.Path == p })
}

// checkRestorable refuses another GitLab version (GitLab restores only onto the version that
// made the backup, whichever image runs it), bringing an empty or stopped stack up first
// (GitLab's restore runs inside GitLab). Another flavour is carried over (xflavour.go).
func checkRestorable(ctx context.Context, x *stack.Session, m Manifest) error {
	cfg := x.Config()
	if m.GitLab.Flavour != cfg.GitLab.Flavour && !knownFlavour(m.GitLab.Flavour) {
		return &FlavourMismatchError{Backup: m.GitLab.Flavour, Running: cfg.GitLab.Flavour}
	}
	wantImage := ""
	if bv, err := upgradepath.Parse(m.GitLab.Version); err == nil {
		wantImage, _ = upgradepath.ImageFor(cfg.GitLab.Image, bv)
	}
	if v, ok := upgradepath.VersionFromImage(cfg.GitLab.Image); ok && v.String() != m.GitLab.Version {
		return &VersionMismatchError{Backup: m.GitLab.Version, Running: v.String(), Image: wantImage}
	}
	if _, err := x.Running(ctx, "gitlab"); err != nil {
		x.Emit(events.Event{Kind: events.KindStep, Status: events.Working}.With(msg.New("restore.bringUp")))
		if _, err := x.Converge(ctx); err != nil {
			return fmt.Errorf("bring the stack up for the restore: %w", err)
		}
	}
	running, err := x.GitLabVersion(ctx)
	if err != nil {
		return fmt.Errorf("GitLab must be up and ready for a restore: %w", err)
	}
	if running.String() != m.GitLab.Version {
		return &VersionMismatchError{Backup: m.GitLab.Version, Running: running.String(), Image: wantImage}
	}
	return nil
}

// unpack places GitLab's backup in GitLab's backup directory (owned as the directory is) and
// the database dump in PostgreSQL's work directory, and keeps the rest in memory.
func unpack(x *stack.Session, cfg config.Config, fromFlavour, file string, work *dbWork) (unpacked, error) {
	u := unpacked{files: map[string][]byte{}, modes: map[string]os.FileMode{}}
	hostBackups, err := x.HostPath("gitlab", gitlabBackupDir(cfg.GitLab.Flavour))
	if err != nil {
		return u, err
	}
	_, err = walkArchive(file, func(mem Member, r io.Reader) error {
		switch {
		case strings.HasPrefix(mem.Path, gitlabTarPrefix):
			p, err := placeFile(hostBackups, strings.TrimPrefix(mem.Path, gitlabTarPrefix), r)
			u.gitlabTar = p
			return err
		case mem.Path == MemberDatabase && work != nil:
			p, err := placeFile(work.host, filepath.Base(mem.Path), r)
			u.dump = p
			return err
		case mem.Path == MemberSecrets:
			b, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			u.secrets, err = readSecrets(b)
			return err
		case mem.Path == MemberConfig:
			b, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			u.backCfg, err = config.Parse(b)
			if err != nil {
				return fmt.Errorf("the backup's config: %w", err)
			}
			return nil
		case strings.HasPrefix(mem.Path, sshPrefix), mem.Path == MemberOmnibusJSON, mem.Path == MemberOmnibusRB:
			b, err := io.ReadAll(r)
			u.files[mem.Path], u.modes[mem.Path] = b, os.FileMode(mem.Mode)
			return err
		}
		return nil
	})
	if err != nil {
		return u, fmt.Errorf("unpack the backup: %w", err)
	}
	if u.secrets == nil {
		return u, &CorruptError{File: file, Reason: "it holds no secret store"}
	}
	if fromFlavour == "omnibus" && u.files[MemberOmnibusJSON] == nil {
		return u, &CorruptError{File: file, Reason: "it holds no gitlab-secrets.json"}
	}
	if work != nil && u.dump == "" {
		return u, &CorruptError{File: file, Reason: "it holds no database dump"}
	}
	return u, nil
}

// putBack restores the secrets, GitLab's files and the runner profiles.
func putBack(x *stack.Session, cfg config.Config, u unpacked, save ConfigSaver, out *RestoreResult) error {
	if err := restoreSecrets(x.Secrets(), u.secrets); err != nil {
		return fmt.Errorf("restore the secrets: %w", err)
	}
	out.RestoredFiles = append(out.RestoredFiles, x.SecretsPath())
	restoredFiles, err := restoreFiles(x, cfg, u.files, u.modes)
	out.RestoredFiles = append(out.RestoredFiles, restoredFiles...)
	if err != nil {
		return fmt.Errorf("restore GitLab's files: %w", err)
	}
	// The runner profiles: each runner record belongs to one; a profile the config lacks would
	// have its runner unregistered by the next up.
	if u.backCfg.Version != 0 && !slices.EqualFunc(u.backCfg.Runner.Profiles, cfg.Runner.Profiles, profileEqual) {
		cfg.Runner.Profiles = u.backCfg.Runner.Profiles
		cfg.Runner.Concurrent = u.backCfg.Runner.Concurrent
		if save != nil {
			if err := save(cfg); err != nil {
				return fmt.Errorf("save the restored runner profiles: %w", err)
			}
		}
		x.SetConfig(cfg)
		x.Emit(events.Event{Kind: events.KindInfo, Status: events.Done}.With(msg.New("restore.profiles", "n", len(cfg.Runner.Profiles))))
	}
	return nil
}

// checkRunners compares the runner records before and after the converge and verifies each.
func checkRunners(ctx context.Context, x *stack.Session, records map[string]stack.RunnerRecord, out *RestoreResult) error {
	after, err := x.RunnerRecords()
	if err != nil {
		return err
	}
	for profile, r := range records {
		if a, ok := after[profile]; ok && a.ID != r.ID {
			out.Reregistered = append(out.Reregistered, profile)
		}
	}
	sort.Strings(out.Reregistered)
	known, err := x.VerifyRunners(ctx)
	if err != nil {
		return err
	}
	for _, ok := range known {
		if ok {
			out.RunnersOK++
		}
	}
	if len(out.Reregistered) > 0 {
		x.Emit(events.Event{Kind: events.KindInfo, Status: events.Warning, Component: "runner"}.With(msg.New("restore.reregistered", "profiles", strings.Join(out.Reregistered, ", "))))
	}
	return nil
}

// gitlabErrors is the block GitLab's database restore prints between "------ BEGIN ERRORS -----"
// and "------ END ERRORS -------" (gitlabhq lib/backup/targets/database.rb): the psql errors it
// did not ignore. GitLab goes on after them; its post-restore warning asks whether to continue.
func gitlabErrors(out string) string {
	const begin, end = "BEGIN ERRORS", "END ERRORS"
	var lines []string
	in := false
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.Contains(l, begin):
			in = true
		case strings.Contains(l, end):
			in = false
		case in && strings.TrimSpace(l) != "":
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	return strings.Join(lines, " | ")
}

func profileEqual(a, b config.Profile) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// serviceCommand is one process manager command in the GitLab container (as root).
type serviceCommand struct {
	what  string   // what it stops, in words
	stop  []string // the command
	start []string // its inverse
}

// stopCommands stop GitLab's processes that use the database, as GitLab's restore procedure
// says ("Be sure to stop Puma, Sidekiq, and any other process that connects to the database").
// Omnibus: gitlab-ctl stop puma, sidekiq (GitLab's restore docs). sameersbn: its own
// execute_raketask stops gitlab_extensions:* and gitlab:* before a restore, but its [group:gitlab]
// is puma and gitlab-workhorse only; [program:sidekiq] is in no group and must be stopped by
// name (sameersbn/docker-gitlab assets/build/install.sh, assets/runtime/functions).
func stopCommands(flavour string) []serviceCommand {
	if flavour == "omnibus" {
		return []serviceCommand{
			{"puma", []string{"gitlab-ctl", "stop", "puma"}, []string{"gitlab-ctl", "start", "puma"}},
			{"sidekiq", []string{"gitlab-ctl", "stop", "sidekiq"}, []string{"gitlab-ctl", "start", "sidekiq"}},
		}
	}
	return []serviceCommand{
		{"sshd, nginx, mail_room and cron (gitlab_extensions)", []string{"supervisorctl", "stop", "gitlab_extensions:*"}, []string{"supervisorctl", "start", "gitlab_extensions:*"}},
		{"puma and gitlab-workhorse (gitlab)", []string{"supervisorctl", "stop", "gitlab:*"}, []string{"supervisorctl", "start", "gitlab:*"}},
		{"sidekiq", []string{"supervisorctl", "stop", "sidekiq"}, []string{"supervisorctl", "start", "sidekiq"}},
	}
}

// stopGitLab runs the stop commands; it returns the ones that ran (a failed one too: it may
// have stopped part of what it names).
func stopGitLab(ctx context.Context, x *stack.Session, flavour string) ([]serviceCommand, error) {
	var done []serviceCommand
	for _, c := range stopCommands(flavour) {
		done = append(done, c)
		res, err := x.Exec(ctx, "gitlab", "root", c.stop)
		if err == nil && res.ExitCode != 0 {
			err = fmt.Errorf("exit code %d: %s", res.ExitCode, stack.LastLines(res.Stdout+"\n"+res.Stderr, 3))
		}
		if err != nil {
			return done, fmt.Errorf("stop GitLab's %s before the restore (%s): %w", c.what, strings.Join(c.stop, " "), err)
		}
	}
	return done, nil
}

// restarter is what a failed restore needs to bring the stack back.
type restarter interface {
	Config() config.Config
	Emit(events.Event)
	Exec(ctx context.Context, component, user string, cmd []string) (engine.ExecResult, error)
	Converge(ctx context.Context) (stack.Plan, error)
	Running(ctx context.Context, name string) (engine.Detail, error)
}

// restoreComponents are the containers a failed restore checks it left running.
var restoreComponents = []string{"postgres", "redis", "gitlab", "runner"}

// bringBack is a failed restore's way out: GitLab's stopped processes start again (in reverse
// order) and the stack converges, which starts the runner. It returns cause, followed by exactly
// what it could not bring back (each stopped process whose start failed, each component not
// running afterwards) or by word that everything runs again.
func bringBack(ctx context.Context, x restarter, stopped []serviceCommand, cause error) error {
	// The restore's own context may be what ended it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Minute)
	defer cancel()
	x.Emit(events.Event{Kind: events.KindStep, Status: events.Warning}.With(msg.New("restore.bringBack")))
	var left []string
	for i := len(stopped) - 1; i >= 0; i-- {
		c := stopped[i]
		res, err := x.Exec(ctx, "gitlab", "root", c.start)
		if err == nil && res.ExitCode != 0 {
			err = fmt.Errorf("exit code %d", res.ExitCode)
		}
		if err != nil {
			left = append(left, fmt.Sprintf("GitLab's %s (%v; start it with: docker exec %s %s)", c.what, err, x.Config().Stack.Name+"-gitlab", strings.Join(c.start, " ")))
		}
	}
	var converge error
	if _, err := x.Converge(ctx); err != nil {
		converge = err
	}
	for _, name := range restoreComponents {
		if _, err := x.Running(ctx, name); err != nil {
			left = append(left, fmt.Sprintf("%s (%v)", name, err))
		}
	}
	switch {
	case len(left) > 0 && converge != nil:
		return fmt.Errorf("%w; left stopped: %s; the stack did not come up (%v): fix that, then run forgebox up", cause, strings.Join(left, "; "), converge)
	case len(left) > 0:
		return fmt.Errorf("%w; left stopped: %s", cause, strings.Join(left, "; "))
	case converge != nil:
		return fmt.Errorf("%w; every component runs, but bringing the stack back up said: %v (run forgebox up)", cause, converge)
	}
	return fmt.Errorf("%w; GitLab's processes and the runner run again", cause)
}

// placeFile writes r into dir/name (temp file, then rename), mode 0600 and owned like dir, so
// GitLab's backup user can read it.
func placeFile(dir, name string, r io.Reader) (string, error) {
	if name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("bad file name %q in the backup", name)
	}
	f, err := os.CreateTemp(dir, ".forgebox-restore-*")
	if err != nil {
		return "", fmt.Errorf("write into GitLab's backup directory: %w", err)
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
		return "", fmt.Errorf("write GitLab's backup into %s: %w", dir, err)
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
