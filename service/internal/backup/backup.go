// Package backup takes and restores forgebox backups: one .tar.gz per backup in the backup
// directory holding GitLab's database (dumped by the PostgreSQL container's own pg_dump, so no
// GitLab image's bundled client matters; database.go), GitLab's own backup of everything else
// (taken through Engine exec with the command each image documents, SKIP=db), forgebox's config, the whole secret store (GitLab's secrets, the runner records
// with their tokens, the admin token), the runner's config.toml, GitLab's SSH host keys and, for
// Omnibus, /etc/gitlab/gitlab-secrets.json and gitlab.rb, with a manifest (versions, sizes,
// sha256 of every member) first. Archives are written atomically with mode 0600; a backup that
// fails leaves nothing under a backup's name and says why.
//
// A restore needs a stack that runs the GitLab version that made the backup. It checks every
// checksum before it changes anything, takes a safety backup of the stack as it is, stops
// GitLab's processes and the runner, restores the database and then GitLab's backup, the
// secrets, host keys and runner records, and converges, so that runners keep working with their
// old tokens. Archives of format 1 hold the database inside GitLab's backup; GitLab restores it.
package backup

import (
	"github.com/docker/go-units"

	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/msg"
	"github.com/forgebox/forgebox/service/internal/stack"
)

// Result is what one backup produced.
type Result struct {
	Name     string        `json:"name"`
	File     string        `json:"file"`
	Size     int64         `json:"size"` // of the archive on disk
	Took     time.Duration `json:"took"`
	Manifest Manifest      `json:"manifest"`
	Pruned   []string      `json:"pruned,omitempty"` // scheduled backups deleted by backup.keep
}

// GitLabBackupTimeout bounds GitLab's own backup (large instances take hours).
var GitLabBackupTimeout = 6 * time.Hour

// gitlabCommand is the command line of GitLab's backup task in each image, and the user it runs
// as (docs/gitlab-contract.md §1.7 and §2.4). Rake takes VAR=value arguments as environment
// variables: BACKUP, force, SKIP and GITLAB_ASSUME_YES reach GitLab's task as ENV
// (docs/gitlab-contract.md §4.6). withDB is false for forgebox's own backups, whose database is
// dumped by PostgreSQL's own tools (SKIP=db), true for restoring a format-1 archive.
func gitlabCommand(flavour, action, id string, withDB bool) (user string, cmd []string) {
	var args []string
	if action == "restore" {
		// force=yes: GitLab asks for confirmation before it drops the tables otherwise.
		// GITLAB_ASSUME_YES=1: GitLab asks again after a restore that logged errors, and exec
		// has no standard input to answer from.
		args = []string{"BACKUP=" + id, "force=yes", "GITLAB_ASSUME_YES=1"}
	}
	if !withDB {
		args = append(args, "SKIP=db")
	}
	if flavour == "omnibus" {
		return "root", append([]string{"gitlab-backup", action}, args...)
	}
	return "git", append(append([]string{"bundle", "exec", "rake", "gitlab:backup:" + action}, args...), "RAILS_ENV=production")
}

// gitlabBackupDir is where each image writes its backups, inside the container.
func gitlabBackupDir(flavour string) string {
	if flavour == "omnibus" {
		return "/var/opt/gitlab/backups"
	}
	return "/home/git/data/backups"
}

// sshHostKeyDir is where each image keeps its SSH host keys, inside the container.
func sshHostKeyDir(flavour string) string {
	if flavour == "omnibus" {
		return "/etc/gitlab"
	}
	return "/home/git/data/ssh"
}

var (
	backupDoneLine = regexp.MustCompile(`Backup ([0-9]+_[0-9_]+_[0-9][0-9.]*[0-9](?:-[a-z]+)?) is done`)
	gitlabTarName  = regexp.MustCompile(`^([0-9]+_[0-9]{4}_[0-9]{2}_[0-9]{2}_[0-9][0-9.]*[0-9](?:-[a-z]+)?)_gitlab_backup\.tar$`)
)

// Name is a backup's name: <stack>-<UTC time>-<GitLab version>-<kind>.
func Name(stackName string, at time.Time, version, kind string) string {
	return fmt.Sprintf("%s-%s-%s-%s", stackName, at.UTC().Format("20060102-150405Z"), version, kind)
}

// Create takes a backup of kind (manual, scheduled, pre-upgrade, pre-restore) of the running
// stack. GitLab must be up: its backup task runs inside its container.
func Create(ctx context.Context, x *stack.Session, kind string) (Result, error) {
	start := time.Now()
	cfg := x.Config()
	dir := cfg.BackupDir()
	x.Emit(events.Event{Kind: events.KindStep, ID: "backup", Status: events.Working}.With(msg.New("backup.start", "kind", msg.New("backup.kind."+string(kind)), "dir", dir)))
	if err := mkdirLikeParent(dir); err != nil {
		return Result{}, fmt.Errorf("create the backup directory %s: %w", dir, err)
	}
	for _, n := range removeStalePartials(dir) {
		x.Emit(events.Event{Kind: events.KindInfo, Status: events.Done}.With(msg.New("backup.stale", "name", n)))
	}
	version, err := x.GitLabVersion(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("GitLab must be up and ready for a backup: %w", err)
	}
	pg, err := postgresInfo(ctx, x)
	if err != nil {
		return Result{}, err
	}
	pg.Image = cfg.Postgres.Image

	// The database first, as GitLab's own backup does it, with PostgreSQL's own client.
	work, err := openDBWork(ctx, x)
	if err != nil {
		return Result{}, err
	}
	defer work.close()
	dump, client, err := dumpDatabase(ctx, x, work, pg.Major)
	if err != nil {
		return Result{}, err
	}
	pg.DumpClient = client
	x.Emit(events.Event{Kind: events.KindInfo, Status: events.Done, Component: "postgres"}.With(msg.New("backup.dumped")))

	// GitLab's own backup of everything else, inside its container.
	hostBackups, err := x.HostPath("gitlab", gitlabBackupDir(cfg.GitLab.Flavour))
	if err != nil {
		return Result{}, err
	}
	before := gitlabTars(hostBackups)
	user, cmd := gitlabCommand(cfg.GitLab.Flavour, "create", "", false)
	x.Emit(events.Event{Kind: events.KindInfo, Status: events.Working, Component: "gitlab"}.With(msg.New("backup.gitlab", "command", msg.Raw(strings.Join(cmd, " ")))))
	ectx, cancel := context.WithTimeout(ctx, GitLabBackupTimeout)
	res, err := x.Exec(ectx, "gitlab", user, cmd)
	cancel()
	if err != nil {
		return Result{}, fmt.Errorf("run GitLab's backup: %w", err)
	}
	id := ""
	if m := backupDoneLine.FindStringSubmatch(res.Stdout); m != nil {
		id = m[1]
	}
	if id == "" {
		// Not every version prints the same line: take the one new archive.
		for name := range gitlabTars(hostBackups) {
			if !before[name] {
				if id != "" {
					id = ""
					break
				}
				id = name
			}
		}
	}
	gitlabTar := filepath.Join(hostBackups, id+"_gitlab_backup.tar")
	if id != "" {
		defer os.Remove(gitlabTar) // its copy is in forgebox's archive (or the backup failed)
	}
	if res.ExitCode != 0 || id == "" {
		return Result{}, fmt.Errorf("GitLab's backup failed (exit code %d): %s", res.ExitCode, stack.LastLines(res.Stdout+"\n"+res.Stderr, 8))
	}
	if _, err := os.Stat(gitlabTar); err != nil {
		return Result{}, fmt.Errorf("GitLab reported backup %s, but %s is not there: %w", id, gitlabTar, err)
	}
	x.Emit(events.Event{Kind: events.KindInfo, Status: events.Done, Component: "gitlab"}.With(msg.New("backup.gitlabDone", "id", id)))

	members, runners, err := collect(x, cfg, gitlabTar, id)
	if err != nil {
		return Result{}, err
	}
	db, err := fileSource(MemberDatabase, fmt.Sprintf("GitLab's database %s (pg_dump custom format, %s)", stack.GitLabDatabase, client), dump)
	if err != nil {
		return Result{}, fmt.Errorf("read the database dump: %w", err)
	}
	members = append(members, db)
	now := time.Now()
	name := uniqueName(dir, Name(cfg.Stack.Name, now, version.String(), kind))
	m := Manifest{
		Format: FormatVersion, Name: name, Kind: kind, Stack: cfg.Stack.Name, CreatedAt: now.UTC().Truncate(time.Second),
		Forgebox: x.ForgeboxVersion(),
		GitLab:   GitLabInfo{Version: version.String(), Flavour: cfg.GitLab.Flavour, Image: cfg.GitLab.Image, BackupID: id},
		Runner:   RunnerInfo{Image: cfg.Runner.Image, Runners: runners},
		Postgres: pg,
	}
	x.Emit(events.Event{Kind: events.KindInfo, Status: events.Working}.With(msg.New("backup.writing", "name", name+Extension, "n", len(members))))
	file, size, err := writeArchive(dir, name, m, members)
	if err != nil {
		return Result{}, fmt.Errorf("write the backup: %w", err)
	}
	m, err = ReadManifest(file)
	if err != nil {
		return Result{}, err
	}
	out := Result{Name: name, File: file, Size: size, Manifest: m}
	if kind == KindScheduled {
		out.Pruned, err = Prune(dir, cfg.Stack.Name, cfg.Backup.Keep)
		for _, p := range out.Pruned {
			x.Emit(events.Event{Kind: events.KindInfo, Status: events.Done}.With(msg.New("backup.pruned", "name", p, "keep", cfg.Backup.Keep)))
		}
		if err != nil {
			x.Emit(events.Event{Kind: events.KindInfo, Status: events.Warning}.With(msg.New("backup.pruneFailed", "error", msg.Raw(err.Error()))))
		}
	}
	out.Took = time.Since(start)
	x.Emit(events.Event{Kind: events.KindInfo, Status: events.Done}.With(msg.New("backup.written", "name", name, "size", units.BytesSize(float64(size)), "version", version.String(), "took", out.Took.Round(100*time.Millisecond).String())))
	return out, nil
}

// uniqueName appends -2, -3, ... when a backup of that name exists (two within a second).
func uniqueName(dir, name string) string {
	n := name
	for i := 2; ; i++ {
		if _, err := os.Lstat(filepath.Join(dir, n+Extension)); errors.Is(err, os.ErrNotExist) {
			return n
		}
		n = fmt.Sprintf("%s-%d", name, i)
	}
}

func gitlabTars(dir string) map[string]bool {
	out := map[string]bool{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if m := gitlabTarName.FindStringSubmatch(e.Name()); m != nil {
			out[m[1]] = true
		}
	}
	return out
}

// postgresInfo asks the running PostgreSQL its version.
func postgresInfo(ctx context.Context, x *stack.Session) (PostgresInfo, error) {
	t, err := x.PostgresTarget(ctx)
	if err != nil {
		return PostgresInfo{}, err
	}
	conn, err := connect(ctx, t.Host, t.Port, t.Superuser, t.SuperPassword, "postgres")
	if err != nil {
		return PostgresInfo{}, err
	}
	defer conn.Close(context.Background())
	var info PostgresInfo
	var num int
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('server_version_num')::int`).Scan(&info.Version, &num); err != nil {
		return info, fmt.Errorf("ask PostgreSQL its version: %w", err)
	}
	info.Major = num / 10000
	return info, nil
}

func connect(ctx context.Context, host string, port int, user, password, db string) (*pgx.Conn, error) {
	cc, err := pgx.ParseConfig("sslmode=disable connect_timeout=10")
	if err != nil {
		return nil, err
	}
	cc.Host, cc.Port, cc.User, cc.Password, cc.Database = host, uint16(port), user, password, db
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s as %s: %w", host, user, err)
	}
	return conn, nil
}

// collect lists the archive's members besides the manifest.
func collect(x *stack.Session, cfg config.Config, gitlabTar, id string) ([]source, int, error) {
	var out []source
	enc, err := config.Encode(cfg)
	if err != nil {
		return nil, 0, err
	}
	out = append(out, memSource(MemberConfig, "forgebox's config", 0o644, enc))

	secrets, err := os.ReadFile(x.SecretsPath())
	if err != nil {
		return nil, 0, fmt.Errorf("read the secret store: %w", err)
	}
	out = append(out, memSource(MemberSecrets, "the secret store: GitLab's secrets, runner tokens, the admin token, database passwords", 0o600, secrets))
	records, err := x.RunnerRecords()
	if err != nil {
		return nil, 0, err
	}
	if b, err := os.ReadFile(x.RunnerConfigPath()); err == nil {
		out = append(out, memSource(MemberRunnerConfig, "the runner's config.toml", 0o600, b))
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, 0, fmt.Errorf("read the runner's config.toml: %w", err)
	}

	s, err := fileSource(gitlabTarPrefix+filepath.Base(gitlabTar), "GitLab's backup "+id, gitlabTar)
	if err != nil {
		return nil, 0, fmt.Errorf("read GitLab's backup: %w", err)
	}
	out = append(out, s)

	keyDir, err := x.HostPath("gitlab", sshHostKeyDir(cfg.GitLab.Flavour))
	if err != nil {
		return nil, 0, err
	}
	ents, err := os.ReadDir(keyDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, 0, fmt.Errorf("read GitLab's SSH host keys: %w", err)
	}
	keys := 0
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), "ssh_host_") {
			continue
		}
		s, err := fileSource(sshPrefix+e.Name(), "SSH host key", filepath.Join(keyDir, e.Name()))
		if err != nil {
			return nil, 0, fmt.Errorf("read SSH host key: %w", err)
		}
		out = append(out, s)
		keys++
	}
	if keys == 0 {
		x.Emit(events.Event{Kind: events.KindInfo, Status: events.Warning, Component: "gitlab"}.With(msg.New("backup.noHostKeys", "dir", keyDir)))
	}
	if cfg.GitLab.Flavour == "omnibus" {
		etc, err := x.HostPath("gitlab", "/etc/gitlab")
		if err != nil {
			return nil, 0, err
		}
		s, err := fileSource(MemberOmnibusJSON, "/etc/gitlab/gitlab-secrets.json", filepath.Join(etc, "gitlab-secrets.json"))
		if err != nil {
			return nil, 0, fmt.Errorf("read /etc/gitlab/gitlab-secrets.json (GitLab's encryption keys; a backup without it cannot be restored): %w", err)
		}
		out = append(out, s)
		if s, err := fileSource(MemberOmnibusRB, "/etc/gitlab/gitlab.rb", filepath.Join(etc, "gitlab.rb")); err == nil {
			out = append(out, s)
		}
	}
	return out, len(records), nil
}

// Prune deletes the oldest scheduled backups of stackName in dir beyond keep; it never touches
// backups of another kind or another stack.
func Prune(dir, stackName string, keep int) ([]string, error) {
	list, err := List(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	n := 0
	for _, e := range list { // newest first
		if e.Manifest == nil || e.Manifest.Kind != KindScheduled || e.Manifest.Stack != stackName {
			continue
		}
		n++
		if n <= keep {
			continue
		}
		if err := os.Remove(e.File); err != nil {
			return removed, err
		}
		removed = append(removed, e.Name)
	}
	return removed, nil
}

// readSecrets parses a secret store file.
func readSecrets(b []byte) (map[string]string, error) {
	var m map[string]string
	dec := jsonDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, fmt.Errorf("the backup's secret store is damaged: %v", err)
	}
	return m, nil
}

// postgresSecrets belong to the PostgreSQL data the stack runs on, not to GitLab's backup: a
// restore keeps the stack's own.
var postgresSecrets = []string{config.SecretPostgresSuperuser, config.SecretPostgresGitLab}

func isPostgresSecret(name string) bool { return slices.Contains(postgresSecrets, name) }
