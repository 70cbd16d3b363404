package main

// GitLab's own backup and restore, as the images run them:
//
//	sameersbn: docker exec --user git <c> bundle exec rake gitlab:backup:create [SKIP=db] RAILS_ENV=production
//	           docker exec --user git <c> bundle exec rake gitlab:backup:restore BACKUP=<id> force=yes [SKIP=db] [GITLAB_ASSUME_YES=1] RAILS_ENV=production
//	           (docs/gitlab-contract.md §1.7), into /home/git/data/backups
//	Omnibus:   docker exec <c> gitlab-backup create [SKIP=db]
//	           docker exec <c> gitlab-backup restore BACKUP=<id> force=yes [SKIP=db] [GITLAB_ASSUME_YES=1]   (§2.4), /var/opt/gitlab/backups
//
// Rake takes VAR=value arguments as environment variables, which is how GitLab's backup tasks
// read BACKUP, force, SKIP and GITLAB_ASSUME_YES (gitlabhq lib/backup/options.rb
// extract_from_env!; lib/gitlab/task_helpers.rb); the stand-in also reads GITLAB_ASSUME_YES from
// its environment.
//
// The archive is a real tar named <epoch>_<YYYY_MM_DD>_<version>_gitlab_backup.tar, mode 0600,
// holding backup_information.yml (the GitLab version that made it, and `:skipped:` the tasks
// SKIP left out, as lib/backup/manager.rb build_backup_information writes) and, unless SKIP
// names db, db/database.json.gz: every table of the database as JSON rows.
//
// Rules (each from upstream, see docs/gitlab-contract.md §1.7, §2.4, §3.1 and §4.6):
//   - The database dump runs the image's bundled pg_dump, which refuses a newer server
//     (pgclient.go).
//   - A restore refuses a backup of another GitLab version with GitLab's own words.
//   - A restore refuses while puma or sidekiq still run: GitLab's restore procedure stops both
//     first (doc/administration/backup_restore/restore_gitlab.md; the database task's
//     pre_restore_warning says "Be sure to stop Puma, Sidekiq, and any other process").
//   - A restore asks for confirmation unless force=yes (lib/backup/targets/database.rb).
//   - A restore skips the tasks the backup's `:skipped:` or SKIP names
//     (lib/backup/options.rb update_from_backup_information!).
//   - The database is loaded table by table and, as psql does without ON_ERROR_STOP, a table
//     that fails is an error line and the load goes on; the errors are printed between
//     "------ BEGIN ERRORS -----" and "------ END ERRORS -------", and then GitLab asks
//     "Do you want to continue (yes/no)?" unless GITLAB_ASSUME_YES is set; a closed standard
//     input ends the task with exit code 1 (lib/backup/targets/database.rb restore;
//     lib/backup/tasks/database.rb post_restore_warning; lib/backup/restore/process.rb;
//     lib/gitlab/task_helpers.rb ask_to_continue and prompt).

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func backupDir(flavour string) string {
	if flavour == flavourOmnibus {
		return "/var/opt/gitlab/backups"
	}
	return "/home/git/data/backups"
}

// backupID is what GitLab calls a backup: <epoch>_<YYYY_MM_DD>_<version>.
var backupIDPattern = regexp.MustCompile(`^[0-9]+_[0-9]{4}_[0-9]{2}_[0-9]{2}_[0-9]+\.[0-9]+\.[0-9]+(-[a-z]+)?$`)

// rakeArgs splits `task KEY=VALUE ...` the way rake reads its command line.
func rakeArgs(args []string) (tasks []string, vars map[string]string) {
	vars = map[string]string{}
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok && k != "" {
			vars[k] = v
			continue
		}
		tasks = append(tasks, a)
	}
	return tasks, vars
}

// runRake is `bundle exec rake <task> [VARS]` in the sameersbn image (as git, in
// /home/git/gitlab); only the backup tasks are emulated.
func runRake(args []string) int {
	if u, err := user.Current(); err != nil || u.Username != "git" {
		return execFail("bundle exec rake must run as user git (docker exec --user git): the sameersbn image's Rails runs as git")
	}
	if wd, _ := os.Getwd(); wd != sameersbnWorkdir {
		return execFail("Could not locate Gemfile or .bundle/ directory (working directory %s, not %s)", wd, sameersbnWorkdir)
	}
	tasks, vars := rakeArgs(args)
	if vars["RAILS_ENV"] != "production" {
		return execFail("RAILS_ENV=production is missing: rake would use the development environment, which the image does not configure")
	}
	delete(vars, "RAILS_ENV")
	if len(tasks) != 1 {
		return execFail("the stand-in's rake runs exactly one task (got %s)", clipArgs(tasks))
	}
	return runBackupTask(strings.TrimPrefix(tasks[0], "gitlab:backup:"), tasks[0], vars, flavourSameersbn)
}

// runGitlabBackup is Omnibus's `gitlab-backup create|restore [VARS]`, as root.
func runGitlabBackup(args []string) int {
	if _, ok := os.LookupEnv("GITLAB_OMNIBUS_CONFIG"); !ok {
		fmt.Fprintln(os.Stderr, `forgebox GitLab stand-in (sameersbn flavour): exec: "gitlab-backup": executable file not found in $PATH (the sameersbn image backs up with bundle exec rake gitlab:backup:create as user git)`)
		return 127
	}
	if os.Getuid() != 0 {
		return execFail("gitlab-backup must run as root in the Omnibus image (it switches to git itself)")
	}
	tasks, vars := rakeArgs(args)
	if len(tasks) != 1 {
		return execFail("usage: gitlab-backup create|restore [BACKUP=<id>] [force=yes] (got %s)", clipArgs(args))
	}
	return runBackupTask(tasks[0], "gitlab-backup "+tasks[0], vars, flavourOmnibus)
}

func runBackupTask(action, name string, vars map[string]string, flavour string) int {
	cfg, err := LoadConfig(osLookup)
	if err != nil {
		return execFail("the container's environment is invalid: %v", err)
	}
	if cfg.Flavour != flavour {
		return execFail("flavour mismatch")
	}
	for k := range vars {
		if k != "BACKUP" && k != "force" && k != "SKIP" && k != "GITLAB_ASSUME_YES" {
			return execFail("%s: the stand-in does not emulate %s=", name, k)
		}
	}
	skip, err := parseSkip(vars["SKIP"])
	if err != nil {
		return execFail("%s: %v", name, err)
	}
	delete(vars, "SKIP")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// Waits a little for the server, as the container's own start does: a loaded test machine
	// can time a login out once.
	conn, err := connectWithRetry(ctx, cfg, 30*time.Second, func(string, ...any) {})
	if err != nil {
		return execFail("%v", err)
	}
	defer conn.Close(context.Background())
	switch action {
	case "create":
		if len(vars) > 0 {
			return execFail("%s takes no BACKUP, force or GITLAB_ASSUME_YES", name)
		}
		return createBackup(ctx, conn, cfg, time.Now(), skip)
	case "restore":
		if v, ok := os.LookupEnv("GITLAB_ASSUME_YES"); ok {
			if _, set := vars["GITLAB_ASSUME_YES"]; !set {
				vars["GITLAB_ASSUME_YES"] = v
			}
		}
		return restoreBackup(ctx, conn, cfg, vars, skip)
	}
	return execFail("%s: the stand-in emulates only create and restore", name)
}

// skippable are the SKIP= values GitLab knows (lib/backup/manager.rb backup_tasks, plus tar and
// the remote upload of Backup::Options); the stand-in has data for db only.
var skippable = []string{"db", "repositories", "uploads", "builds", "artifacts", "pages", "lfs",
	"terraform_state", "registry", "packages", "ci_secure_files", "external_diffs", "tar", "remote"}

// parseSkip reads SKIP=a,b (as Backup::Options#extract_skippables! does).
func parseSkip(v string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(skippable, s) {
			return nil, fmt.Errorf("SKIP=%s: %q is not a backup task GitLab knows (%s)", v, s, strings.Join(skippable, ", "))
		}
		out[s] = true
	}
	return out, nil
}

func skipList(skip map[string]bool) string {
	var names []string
	for n := range skip {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

// backupInformation is backup_information.yml, the keys GitLab writes that matter here.
type backupInformation struct {
	GitLabVersion    string
	BackupCreatedAt  time.Time
	InstallationType string
	Skipped          map[string]bool
}

func (b backupInformation) yaml() []byte {
	return []byte(fmt.Sprintf("---\n:db_version: 0\n:backup_created_at: %s\n:gitlab_version: %s\n:tar_version: stand-in\n:installation_type: %s\n:skipped: '%s'\n:repositories_storages: ''\n:repositories_paths: ''\n:forgebox_standin: true\n",
		b.BackupCreatedAt.UTC().Format("2006-01-02 15:04:05 -0700"), b.GitLabVersion, b.InstallationType, skipList(b.Skipped)))
}

var yamlLine = regexp.MustCompile(`(?m)^:([a-z_]+): ?(.*)$`)

func parseBackupInformation(b []byte) (backupInformation, error) {
	var info backupInformation
	for _, m := range yamlLine.FindAllStringSubmatch(string(b), -1) {
		switch m[1] {
		case "gitlab_version":
			info.GitLabVersion = strings.Trim(m[2], `'"`)
		case "installation_type":
			info.InstallationType = m[2]
		case "backup_created_at":
			info.BackupCreatedAt, _ = time.Parse("2006-01-02 15:04:05 -0700", m[2])
		case "skipped":
			skip, err := parseSkip(strings.Trim(m[2], `'"`))
			if err != nil {
				return info, fmt.Errorf("backup_information.yml: %w", err)
			}
			info.Skipped = skip
		}
	}
	if info.GitLabVersion == "" {
		return info, errors.New("backup_information.yml has no gitlab_version")
	}
	return info, nil
}

// publicTables lists the database's tables (schema public), referenced tables before the
// tables that reference them.
func publicTables(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	rows, err = conn.Query(ctx, `SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c
		WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace`)
	if err != nil {
		return nil, err
	}
	deps := map[string][]string{}
	for rows.Next() {
		var from, to string
		if err := rows.Scan(&from, &to); err != nil {
			return nil, err
		}
		deps[from] = append(deps[from], to)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var ordered []string
	seen := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, d := range deps[n] {
			if slices.Contains(names, d) && d != n {
				visit(d)
			}
		}
		ordered = append(ordered, n)
	}
	for _, n := range names {
		visit(n)
	}
	return ordered, nil
}

// dumpDatabase is every public table as JSON rows, in primary-key order where there is an id.
func dumpDatabase(ctx context.Context, conn *pgx.Conn) (map[string]json.RawMessage, error) {
	tables, err := publicTables(ctx, conn)
	if err != nil {
		return nil, err
	}
	out := map[string]json.RawMessage{}
	for _, t := range tables {
		var hasID bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 AND column_name = 'id')`, t).Scan(&hasID); err != nil {
			return nil, err
		}
		order := ""
		if hasID {
			order = " ORDER BY t.id"
		}
		var rows []byte
		q := "SELECT coalesce(json_agg(t" + order + "), '[]')::text FROM " + pgx.Identifier{t}.Sanitize() + " t"
		if err := conn.QueryRow(ctx, q).Scan(&rows); err != nil {
			return nil, fmt.Errorf("dump %s: %w", t, err)
		}
		out[t] = rows
	}
	return out, nil
}

// writeBackupArchive writes the tar GitLab would: backup_information.yml, db/ (unless SKIP
// left the database out), repositories/.
func writeBackupArchive(w io.Writer, info backupInformation, tables map[string]json.RawMessage) error {
	type file struct {
		name string
		body []byte
	}
	files := []file{{"backup_information.yml", info.yaml()}}
	dirs := []string{"repositories/"}
	if !info.Skipped["db"] {
		var db bytes.Buffer
		gz := gzip.NewWriter(&db)
		if err := json.NewEncoder(gz).Encode(map[string]any{"tables": tables}); err != nil {
			return err
		}
		if err := gz.Close(); err != nil {
			return err
		}
		files = append(files, file{"db/database.json.gz", db.Bytes()})
		dirs = append([]string{"db/"}, dirs...)
	}
	tw := tar.NewWriter(w)
	mod := info.BackupCreatedAt
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o700, ModTime: mod}); err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o600, Size: int64(len(f.body)), ModTime: mod}); err != nil {
			return err
		}
		if _, err := tw.Write(f.body); err != nil {
			return err
		}
	}
	return tw.Close()
}

// readBackupArchive reads what writeBackupArchive wrote.
func readBackupArchive(r io.Reader) (backupInformation, map[string]json.RawMessage, error) {
	var (
		info    backupInformation
		infoOK  bool
		tables  map[string]json.RawMessage
		tr      = tar.NewReader(r)
		sawDump bool
	)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return info, nil, fmt.Errorf("the backup archive is damaged: %w", err)
		}
		switch h.Name {
		case "backup_information.yml":
			b, err := io.ReadAll(io.LimitReader(tr, 1<<20))
			if err != nil {
				return info, nil, err
			}
			if info, err = parseBackupInformation(b); err != nil {
				return info, nil, err
			}
			infoOK = true
		case "db/database.json.gz":
			gz, err := gzip.NewReader(tr)
			if err != nil {
				return info, nil, fmt.Errorf("db/database.json.gz: %w", err)
			}
			var doc struct {
				Tables map[string]json.RawMessage `json:"tables"`
			}
			if err := json.NewDecoder(gz).Decode(&doc); err != nil {
				return info, nil, fmt.Errorf("db/database.json.gz: %w", err)
			}
			tables, sawDump = doc.Tables, true
		}
	}
	if !infoOK {
		return info, nil, errors.New("the archive has no backup_information.yml: it is not a GitLab backup")
	}
	if !sawDump && !info.Skipped["db"] {
		return info, nil, errors.New("the archive has no database dump")
	}
	return info, tables, nil
}

func createBackup(ctx context.Context, conn *pgx.Conn, cfg Config, now time.Time, skip map[string]bool) int {
	id := fmt.Sprintf("%d_%s_%s", now.Unix(), now.UTC().Format("2006_01_02"), cfg.Version)
	dir := backupDir(cfg.Flavour)
	stamp := func(msg string) { fmt.Printf("%s -- %s\n", time.Now().UTC().Format("2006-01-02 15:04:05 UTC"), msg) }
	var tables map[string]json.RawMessage
	if skip["db"] {
		stamp("Dumping database ... [SKIPPED]")
	} else {
		stamp("Dumping database ... ")
		if err := checkDumpClient(ctx, conn, cfg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return execFail("Dumping database failed: Backup::DatabaseBackupError (the image's pg_dump could not dump the database)")
		}
		var err error
		if tables, err = dumpDatabase(ctx, conn); err != nil {
			return execFail("Dumping database failed: %v", err)
		}
		stamp(fmt.Sprintf("Dumping database ... done (%d tables)", len(tables)))
	}
	stamp("Dumping repositories ... [SKIPPED: the stand-in has no repositories]")
	final := filepath.Join(dir, id+"_gitlab_backup.tar")
	stamp("Creating backup archive: " + filepath.Base(final) + " ... ")
	f, err := os.CreateTemp(dir, ".tmp-backup-*")
	if err != nil {
		return execFail("Creating backup archive failed: %v", err)
	}
	tmp := f.Name()
	err = f.Chmod(0o600) // GITLAB_BACKUP_ARCHIVE_PERMISSIONS' default
	if err == nil {
		err = writeBackupArchive(f, backupInformation{GitLabVersion: cfg.Version, BackupCreatedAt: now, InstallationType: cfg.Flavour, Skipped: skip}, tables)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		os.Remove(tmp)
		return execFail("Creating backup archive failed: %v", err)
	}
	stamp("Creating backup archive: " + filepath.Base(final) + " ... done")
	stamp("Backup " + id + " is done.")
	return 0
}

func restoreBackup(ctx context.Context, conn *pgx.Conn, cfg Config, vars map[string]string, skip map[string]bool) int {
	id := vars["BACKUP"]
	if id == "" {
		return execFail("BACKUP=<id> is missing: say which backup in %s to restore (the stand-in does not offer the interactive choice)", backupDir(cfg.Flavour))
	}
	if !backupIDPattern.MatchString(id) {
		return execFail("BACKUP=%q is not a backup id like 1693000000_2023_08_25_16.3.0", id)
	}
	path := filepath.Join(backupDir(cfg.Flavour), id+"_gitlab_backup.tar")
	f, err := os.Open(path)
	if err != nil {
		return execFail("The backup file %s does not exist or cannot be read: %v", path, err)
	}
	defer f.Close()
	info, tables, err := readBackupArchive(f)
	if err != nil {
		return execFail("%v", err)
	}
	if info.GitLabVersion != cfg.Version {
		return execFail("GitLab version mismatch:\n  Your current GitLab version (%s) differs from the GitLab version in the backup!\n  Please switch to the following version and try again:\n  version: %s", cfg.Version, info.GitLabVersion)
	}
	var running []string
	for _, svc := range railsServices {
		if !serviceStopped(svc) {
			running = append(running, svc)
		}
	}
	if len(running) > 0 {
		how := "gitlab-ctl stop puma; gitlab-ctl stop sidekiq"
		if cfg.Flavour == flavourSameersbn {
			// [group:gitlab] is puma and gitlab-workhorse; [program:sidekiq] is in no group
			// (sameersbn/docker-gitlab assets/build/install.sh).
			how = "supervisorctl stop gitlab:*; supervisorctl stop sidekiq"
		}
		return execFail("%s still running: GitLab's restore procedure stops the processes connected to the database first (%s) (stand-in check)", strings.Join(running, " and "), how)
	}
	for k := range info.Skipped {
		skip[k] = true
	}
	fmt.Println("Unpacking backup ... done")
	if skip["db"] {
		fmt.Println("Restoring database ... [SKIPPED]")
	} else {
		if vars["force"] != "yes" {
			fmt.Println("Be sure to stop Puma, Sidekiq, and any other process that connects to the database before proceeding.")
			fmt.Println("Before restoring the database, we will remove all existing tables to avoid future upgrade problems.")
			if code, ok := askToContinue(vars); !ok {
				return code
			}
		}
		fmt.Println("Restoring database ... ")
		errs, err := loadDatabase(ctx, conn, tables)
		if err != nil {
			return execFail("Restoring database failed: %v", err)
		}
		if len(errs) > 0 {
			fmt.Fprintln(os.Stderr, strings.Join(errs, "\n"))
			fmt.Println("------ BEGIN ERRORS -----")
			fmt.Println(strings.Join(errs, "\n"))
			fmt.Println("------ END ERRORS -------")
		}
		fmt.Printf("Restoring database ... done (%d tables)\n", len(tables))
		if len(errs) > 0 {
			fmt.Println("There were errors in restoring the schema. This may cause issues if this results in missing indexes, constraints, or columns. Please record the errors above and contact GitLab Support if you have questions.")
			if code, ok := askToContinue(vars); !ok {
				return code
			}
		}
	}
	fmt.Println("Restoring repositories ... done (the stand-in has none)")
	fmt.Println("Restore task is done.")
	return 0
}

// askToContinue is Gitlab::TaskHelpers.ask_to_continue: nothing to ask when GITLAB_ASSUME_YES
// is true; else the question, read from standard input, where the end of input (docker exec
// without -i) makes `$stdin.gets.chomp` raise.
func askToContinue(vars map[string]string) (code int, ok bool) {
	switch strings.ToLower(vars["GITLAB_ASSUME_YES"]) {
	case "1", "true", "yes", "t", "y":
		return 0, true
	}
	fmt.Print("Do you want to continue (yes/no)? ")
	answer, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && answer == "" {
		fmt.Fprintln(os.Stderr, "rake aborted!\nNoMethodError: undefined method `chomp' for nil (standard input is closed; set GITLAB_ASSUME_YES=1 to restore without questions)")
		return 1, false
	}
	if strings.TrimSpace(answer) != "yes" {
		fmt.Println("Quitting...")
		return 1, false
	}
	return 0, true
}

// loadDatabase replaces every public table's rows with the dump's, in one transaction. A table
// whose rows do not load is an error line, and the load goes on, as psql goes on after an error
// (GitLab's restore feeds the dump to psql without ON_ERROR_STOP).
func loadDatabase(ctx context.Context, conn *pgx.Conn, tables map[string]json.RawMessage) ([]string, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	order, err := publicTables(ctx, conn)
	if err != nil {
		return nil, err
	}
	var missing []string
	for t := range tables {
		if !slices.Contains(order, t) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("the backup has tables this version does not: %s", strings.Join(missing, ", "))
	}
	if len(order) > 0 {
		quoted := make([]string, len(order))
		for i, t := range order {
			quoted[i] = pgx.Identifier{t}.Sanitize()
		}
		if _, err := tx.Exec(ctx, "TRUNCATE "+strings.Join(quoted, ", ")+" RESTART IDENTITY CASCADE"); err != nil {
			return nil, err
		}
	}
	var errs []string
	for _, t := range order {
		rows, ok := tables[t]
		if !ok {
			continue
		}
		id := pgx.Identifier{t}.Sanitize()
		if _, err := tx.Exec(ctx, "SAVEPOINT load_table"); err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+id+" SELECT * FROM json_populate_recordset(NULL::"+id+", $1::json)", string(rows)); err != nil {
			var pe *pgconn.PgError
			if !errors.As(err, &pe) {
				return nil, fmt.Errorf("load %s: %w", t, err)
			}
			errs = append(errs, "psql:/dev/stdin: ERROR:  "+pe.Message)
			if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT load_table"); err != nil {
				return nil, err
			}
			continue
		}
		// Sequences continue after the restored ids.
		var serial *string
		err := tx.QueryRow(ctx, `SELECT pg_get_serial_sequence($1, c.column_name) FROM information_schema.columns c
			WHERE c.table_schema = 'public' AND c.table_name = $1 AND c.column_name = 'id'`, t).Scan(&serial)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && serial == nil) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("find the sequence of %s: %w", t, err)
		}
		if _, err := tx.Exec(ctx, `SELECT setval($1::regclass, coalesce((SELECT max(id) FROM `+id+`), 1), (SELECT max(id) FROM `+id+`) IS NOT NULL)`, *serial); err != nil {
			return nil, fmt.Errorf("reset the sequence of %s: %w", t, err)
		}
	}
	return errs, tx.Commit(ctx)
}
