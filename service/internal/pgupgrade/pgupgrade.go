// Package pgupgrade moves the stack's PostgreSQL to a newer major by dump and restore into a NEW
// data directory (docs/gitlab-contract.md §7.2): GitLab and the runner are stopped, a second
// PostgreSQL container of the new image starts on an empty directory, the new server's pg_dump
// reads GitLab's database from the old server and pg_restore loads it, ANALYZE refreshes the
// planner's statistics, and every table is compared between the two servers (row count and a
// checksum of its ordered rows) before anything is switched. Then the old directory is renamed
// aside, where it stays until the user removes it, and the new one takes its place.
//
// Each phase is recorded by the caller (State), so a forgebox killed half way runs again
// safely: the copy is redone from the untouched old data, the rename pair is finished.
package pgupgrade

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/msg"
	"github.com/forgebox/forgebox/service/internal/pgprov"
	"github.com/forgebox/forgebox/service/internal/stack"
	"github.com/forgebox/forgebox/service/internal/upgrade/testhook"
)

// Phases of an upgrade, in order.
const (
	PhaseCopy = "copy" // dump, restore and compare into the new directory (redone from scratch on resume)
	PhaseSwap = "swap" // rename old aside, new into place, switch the image in the config
	PhaseDone = "done"
)

// State is what the caller persists between phases.
type State struct {
	Phase     string `json:"phase"`
	Image     string `json:"image"`      // the new PostgreSQL image
	FromMajor int    `json:"from_major"` // of the data being upgraded
	ToMajor   int    `json:"to_major"`   // what the new image runs, once seen
	NewDir    string `json:"new_dir"`    // built here, then renamed to the data directory
	OldDir    string `json:"old_dir"`    // where the old data directory is kept
}

// Options for one upgrade.
type Options struct {
	Image    string                    // the new PostgreSQL image
	MinMajor int                       // the major the walk needs at least
	Save     func(State) error         // persist the state after each phase
	SaveCfg  func(config.Config) error // persist the config with the new image
	Now      func() time.Time
}

// TableCheck is one table as both servers have it.
type TableCheck struct {
	Table    string `json:"table"`
	Rows     int64  `json:"rows"`
	Checksum string `json:"checksum"`
}

// Result is what the upgrade did.
type Result struct {
	From, To int
	OldDir   string       // kept, for the user to remove
	Tables   []TableCheck // the same on both servers
	Took     time.Duration
}

// upgradeContainer names the temporary PostgreSQL container.
func upgradeContainer(cfg config.Config) string { return cfg.Stack.Name + "-postgres-upgrade" }

// workDir is below the new data directory's mount, outside PGDATA: dump and password file.
const workDir = stack.PostgresMount + "/forgebox-upgrade"

// MajorOfDataDir reads PG_VERSION of the stack's PostgreSQL data; 0 when there is none yet.
func MajorOfDataDir(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "pgdata", "PG_VERSION"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// Upgrade runs (or resumes, from st) the major upgrade. GitLab and the runner are left stopped
// and PostgreSQL runs the new image in the config: the caller converges.
func Upgrade(ctx context.Context, x *stack.Session, st State, o Options) (Result, error) {
	start := time.Now()
	if o.Now == nil {
		o.Now = time.Now
	}
	cfg := x.Config()
	data := x.PostgresDataDir()
	res := Result{}
	if st.Phase == "" {
		from, err := MajorOfDataDir(data)
		if err != nil {
			return res, fmt.Errorf("read the PostgreSQL version of %s: %w", data, err)
		}
		if from == 0 {
			return res, fmt.Errorf("no PostgreSQL data in %s: nothing to upgrade", data)
		}
		st = State{Phase: PhaseCopy, Image: o.Image, FromMajor: from,
			NewDir: filepath.Join(cfg.Stack.DataDir, "postgres-upgrade"),
			OldDir: filepath.Join(cfg.Stack.DataDir, fmt.Sprintf("postgres-%d-old-%s", from, o.Now().UTC().Format("20060102-150405")))}
		if err := o.Save(st); err != nil {
			return res, err
		}
	}
	res.From = st.FromMajor
	if st.Phase == PhaseCopy {
		tables, to, err := copyPhase(ctx, x, st, o)
		if err != nil {
			return res, err
		}
		res.Tables, st.ToMajor, st.Phase = tables, to, PhaseSwap
		if err := o.Save(st); err != nil {
			return res, err
		}
	}
	if st.Phase == PhaseSwap {
		if err := swapPhase(ctx, x, st, o); err != nil {
			return res, err
		}
		st.Phase = PhaseDone
		if err := o.Save(st); err != nil {
			return res, err
		}
	}
	res.To, res.OldDir, res.Took = st.ToMajor, st.OldDir, time.Since(start)
	x.Emit(events.Event{Kind: events.KindInfo, Status: events.Done, Component: "postgres"}.With(msg.New("pgupgrade.done", "from", res.From, "to", res.To, "took", res.Took.Round(time.Second).String(), "dir", res.OldDir)))
	return res, nil
}

func copyPhase(ctx context.Context, x *stack.Session, st State, o Options) ([]TableCheck, int, error) {
	cfg := x.Config()
	emit := func(kind events.Kind, m msg.Msg) {
		x.Emit(events.Event{Kind: kind, Status: events.Working, Component: "postgres"}.With(m))
	}
	emit(events.KindStep, msg.New("pgupgrade.copy", "from", st.FromMajor, "image", st.Image))
	// Nothing may write to GitLab's database while it is copied.
	for _, c := range []string{"runner", "gitlab"} {
		if err := x.Stop(ctx, c); err != nil {
			return nil, 0, err
		}
	}
	old, err := x.PostgresTarget(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("the stack's PostgreSQL must run for its upgrade: %w", err)
	}
	eng := x.Engine()
	if err := removeContainer(ctx, eng, cfg); err != nil {
		return nil, 0, err
	}
	// A directory left by an interrupted copy is forgebox's own partial copy: start over.
	if err := os.RemoveAll(st.NewDir); err != nil {
		return nil, 0, fmt.Errorf("remove the partial copy %s: %w", st.NewDir, err)
	}
	if err := checkSpace(x.PostgresDataDir(), cfg.Stack.DataDir); err != nil {
		return nil, 0, err
	}
	if err := os.MkdirAll(st.NewDir, 0o755); err != nil {
		return nil, 0, fmt.Errorf("create %s: %w", st.NewDir, err)
	}
	spec, err := x.PostgresSpec(upgradeContainer(cfg), st.Image, st.NewDir)
	if err != nil {
		return nil, 0, err
	}
	emit(events.KindInfo, msg.New("pgupgrade.startNew", "container", spec.Name, "image", st.Image, "dir", st.NewDir))
	id, err := eng.Create(ctx, spec)
	if err != nil {
		return nil, 0, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		eng.Stop(sctx, id, 60*time.Second)
		eng.Remove(sctx, id)
	}()
	if err := eng.Start(ctx, id); err != nil {
		return nil, 0, err
	}
	det, err := eng.WaitHealthy(ctx, id, engine.WaitOptions{Deadline: 5 * time.Minute})
	if err != nil {
		return nil, 0, fmt.Errorf("the new PostgreSQL did not start: %w", err)
	}
	ip := det.IPs[cfg.NetworkName()]
	if ip == "" {
		return nil, 0, fmt.Errorf("%s has no address on %s", spec.Name, cfg.NetworkName())
	}
	next := old
	next.Host = ip
	newConn, err := connectRetry(ctx, next.Host, next.Port, next.Superuser, next.SuperPassword, "postgres")
	if err != nil {
		return nil, 0, err
	}
	defer newConn.Close(context.Background())
	var num int
	if err := newConn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&num); err != nil {
		return nil, 0, err
	}
	to := num / 10000
	switch {
	case to <= st.FromMajor:
		return nil, 0, fmt.Errorf("image %s runs PostgreSQL %d, which is not newer than the %d of the data", st.Image, to, st.FromMajor)
	case o.MinMajor > 0 && to < o.MinMajor:
		return nil, 0, fmt.Errorf("image %s runs PostgreSQL %d, but the upgrade needs at least %d", st.Image, to, o.MinMajor)
	}
	// GitLab's role first: pg_restore gives it back its database and objects.
	role := pgx.Identifier{old.Role}.Sanitize()
	if _, err := newConn.Exec(ctx, "CREATE ROLE "+role+" LOGIN NOSUPERUSER CREATEDB NOCREATEROLE PASSWORD "+pgprov.QuoteLiteral(old.RolePassword)); err != nil {
		return nil, 0, fmt.Errorf("create role %s on the new server: %w", old.Role, err)
	}

	hostWork := filepath.Join(st.NewDir, filepath.Base(workDir))
	if err := os.MkdirAll(hostWork, 0o700); err != nil {
		return nil, 0, err
	}
	defer os.RemoveAll(hostWork) // the dump and the password file
	pass := fmt.Sprintf("%s:%d:*:%s:%s\n127.0.0.1:%d:*:%s:%s\n", old.Host, old.Port, old.Superuser, pgpassEscape(old.SuperPassword),
		old.Port, old.Superuser, pgpassEscape(old.SuperPassword))
	if err := os.WriteFile(filepath.Join(hostWork, "pgpass"), []byte(pass), 0o600); err != nil {
		return nil, 0, fmt.Errorf("write the password file: %w", err)
	}
	conninfo := func(host, db string) string {
		return fmt.Sprintf("host=%s port=%d user=%s dbname=%s passfile=%s/pgpass sslmode=disable", host, old.Port, old.Superuser, db, workDir)
	}
	// The newer pg_dump reads the older server: PostgreSQL's advice for major upgrades.
	emit(events.KindInfo, msg.New("pgupgrade.dump", "db", old.Database, "major", st.FromMajor))
	dumpStart := time.Now()
	if err := execOK(ctx, eng, id, []string{"pg_dump", "--format=custom", "--file=" + workDir + "/gitlab.dump", "--dbname=" + conninfo(old.Host, old.Database)}); err != nil {
		return nil, 0, fmt.Errorf("pg_dump: %w", err)
	}
	if fi, err := os.Stat(filepath.Join(hostWork, "gitlab.dump")); err == nil {
		emit(events.KindInfo, msg.New("pgupgrade.dumpWritten", "bytes", fi.Size(), "took", time.Since(dumpStart).Round(100*time.Millisecond).String()))
	}
	emit(events.KindInfo, msg.New("pgupgrade.restore", "major", to))
	if err := execOK(ctx, eng, id, []string{"pg_restore", "--create", "--exit-on-error", "--dbname=" + conninfo("127.0.0.1", "postgres"), workDir + "/gitlab.dump"}); err != nil {
		return nil, 0, fmt.Errorf("pg_restore: %w", err)
	}
	newDB, err := connectRetry(ctx, next.Host, next.Port, next.Superuser, next.SuperPassword, old.Database)
	if err != nil {
		return nil, 0, err
	}
	defer newDB.Close(context.Background())
	// A restored database has no planner statistics (omnibus-gitlab doc/settings/database.md).
	if _, err := newDB.Exec(ctx, "ANALYZE"); err != nil {
		return nil, 0, fmt.Errorf("ANALYZE the new database: %w", err)
	}
	// Every row, compared.
	emit(events.KindInfo, msg.New("pgupgrade.compare"))
	oldDB, err := connectRetry(ctx, old.Host, old.Port, old.Superuser, old.SuperPassword, old.Database)
	if err != nil {
		return nil, 0, err
	}
	defer oldDB.Close(context.Background())
	before, err := Checksums(ctx, oldDB)
	if err != nil {
		return nil, 0, fmt.Errorf("checksum the old database: %w", err)
	}
	after, err := Checksums(ctx, newDB)
	if err != nil {
		return nil, 0, fmt.Errorf("checksum the new database: %w", err)
	}
	if diff := Compare(before, after); diff != "" {
		return nil, 0, fmt.Errorf("the copy differs from the original (%s): nothing was switched; the stack still runs PostgreSQL %d", diff, st.FromMajor)
	}
	var rows int64
	for _, t := range after {
		rows += t.Rows
	}
	emit(events.KindInfo, msg.New("pgupgrade.same", "tables", len(after), "rows", rows, "from", st.FromMajor, "to", to))
	// Provisioning as forgebox does it (extensions, ownership), on the new server.
	target := old
	target.Host = next.Host
	if _, err := pgprov.Provision(ctx, target); err != nil {
		return nil, 0, fmt.Errorf("provision the new server: %w", err)
	}
	return after, to, nil
}

func swapPhase(ctx context.Context, x *stack.Session, st State, o Options) error {
	cfg := x.Config()
	data := x.PostgresDataDir()
	x.Emit(events.Event{Kind: events.KindStep, Status: events.Working, Component: "postgres"}.With(msg.New("pgupgrade.switch", "major", st.ToMajor, "data", data, "old", st.OldDir)))
	if err := removeContainer(ctx, x.Engine(), cfg); err != nil {
		return err
	}
	for _, c := range []string{"runner", "gitlab", "postgres"} {
		if err := x.Stop(ctx, c); err != nil {
			return err
		}
	}
	// Each rename is done once; a rerun finishes the pair.
	if exists(data) && !exists(st.OldDir) {
		if err := os.Rename(data, st.OldDir); err != nil {
			return fmt.Errorf("keep the old data directory as %s: %w", st.OldDir, err)
		}
	}
	testhook.After("pg-old-kept")
	if exists(st.NewDir) && !exists(data) {
		if err := os.Rename(st.NewDir, data); err != nil {
			return fmt.Errorf("put the new data directory in place: %w", err)
		}
	}
	if m, err := MajorOfDataDir(data); err != nil || m != st.ToMajor {
		return fmt.Errorf("after the switch %s holds PostgreSQL %d, not %d (%v): the old data is in %s", data, m, st.ToMajor, err, st.OldDir)
	}
	config.SyncDir(cfg.Stack.DataDir)
	if cfg.Postgres.Image != st.Image {
		cfg.Postgres.Image = st.Image
		if err := o.SaveCfg(cfg); err != nil {
			return fmt.Errorf("save postgres.image = %q: %w", st.Image, err)
		}
		x.SetConfig(cfg)
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// removeContainer removes a temporary container an earlier run left (by its name and labels).
func removeContainer(ctx context.Context, eng stack.Engine, cfg config.Config) error {
	list, err := eng.ListContainers(ctx, cfg.Stack.Name)
	if err != nil {
		return err
	}
	for _, c := range list {
		if c.Name == upgradeContainer(cfg) {
			if err := eng.Stop(ctx, c.ID, 60*time.Second); err != nil && !engine.IsNotFound(err) {
				return err
			}
			if err := eng.Remove(ctx, c.ID); err != nil && !engine.IsNotFound(err) {
				return err
			}
		}
	}
	return nil
}

// checkSpace wants twice the old data's size free: the dump and the new cluster.
func checkSpace(oldData, dir string) error {
	var size int64
	filepath.WalkDir(oldData, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				size += fi.Size()
			}
		}
		return nil
	})
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return nil
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if need := 2*size + 64<<20; free < need {
		return fmt.Errorf("the disk holding %s is too full for the PostgreSQL upgrade: it needs about %d MiB (a dump and a copy of the %d MiB data) and %d MiB are free; free space there and run again; nothing was changed",
			dir, need>>20, size>>20, free>>20)
	}
	return nil
}

func execOK(ctx context.Context, eng stack.Engine, id string, cmd []string) error {
	res, err := eng.Exec(ctx, id, "", cmd)
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("exit code %d: %s", res.ExitCode, stack.LastLines(res.Stderr+"\n"+res.Stdout, 8))
	}
	return nil
}

// pgpassEscape escapes ':' and '\' as the password file wants.
func pgpassEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(s)
}

func connectRetry(ctx context.Context, host string, port int, user, password, db string) (*pgx.Conn, error) {
	cc, err := pgx.ParseConfig("sslmode=disable connect_timeout=10")
	if err != nil {
		return nil, err
	}
	cc.Host, cc.Port, cc.User, cc.Password, cc.Database = host, uint16(port), user, password, db
	var last error
	for i := 0; i < 30; i++ {
		conn, err := pgx.ConnectConfig(ctx, cc)
		if err == nil {
			return conn, nil
		}
		last = err
		if pgprov.IsAuthError(err) || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Second)
	}
	return nil, fmt.Errorf("connect to PostgreSQL at %s as %s, database %s: %w", host, user, db, last)
}

// Checksums counts the rows of every table in the connected database (all schemas but the
// system ones) and hashes them: sha256 over the md5 of each row's text form, in sorted order, so
// the same rows give the same checksum on any PostgreSQL major. Rows stream from the server.
func Checksums(ctx context.Context, conn *pgx.Conn) ([]TableCheck, error) {
	rows, err := conn.Query(ctx, `SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
		WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND schemaname NOT LIKE 'pg_toast%' ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := make([]TableCheck, 0, len(tables))
	for _, t := range tables {
		h := sha256.New()
		var n int64
		rows, err := conn.Query(ctx, "SELECT md5(t::text) FROM "+t+" t ORDER BY 1")
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", t, err)
		}
		for rows.Next() {
			var md string
			if err := rows.Scan(&md); err != nil {
				rows.Close()
				return nil, err
			}
			h.Write([]byte(md))
			n++
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", t, err)
		}
		out = append(out, TableCheck{Table: t, Rows: n, Checksum: hex.EncodeToString(h.Sum(nil))})
	}
	return out, nil
}

// Compare says how two checksum lists differ, or "" when they do not.
func Compare(a, b []TableCheck) string {
	var diffs []string
	bm := map[string]TableCheck{}
	for _, t := range b {
		bm[t.Table] = t
	}
	for _, t := range a {
		u, ok := bm[t.Table]
		switch {
		case !ok:
			diffs = append(diffs, "table "+t.Table+" is missing")
		case u.Rows != t.Rows:
			diffs = append(diffs, fmt.Sprintf("%s has %d rows instead of %d", t.Table, u.Rows, t.Rows))
		case u.Checksum != t.Checksum:
			diffs = append(diffs, fmt.Sprintf("%s's rows differ", t.Table))
		}
		delete(bm, t.Table)
	}
	for name := range bm {
		diffs = append(diffs, "table "+name+" is new")
	}
	slices.Sort(diffs)
	return strings.Join(diffs, "; ")
}
