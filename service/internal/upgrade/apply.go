package upgrade

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/forgebox/forgebox/service/internal/backup"
	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/msg"
	"github.com/forgebox/forgebox/service/internal/pgupgrade"
	"github.com/forgebox/forgebox/service/internal/stack"
	"github.com/forgebox/forgebox/service/internal/upgrade/testhook"
	"github.com/forgebox/forgebox/service/internal/upgradepath"
)

// Options for Apply.
type Options struct {
	To            string                    // target version; "" is the table's latest (or the target in progress)
	PostgresImage string                    // the PostgreSQL image to move to, when a hop needs one; "" derives it
	SaveConfig    func(config.Config) error // persists the config with each hop's images
	// MigrationsDeadline bounds each wait for batched background migrations (default 24 h: on
	// big instances they run for hours).
	MigrationsDeadline time.Duration
	// BootDeadline bounds GitLab's boot after a switch, migrations included (default 2 h).
	BootDeadline time.Duration
	Poll         time.Duration // how often migrations are asked (default 5 s)
}

// Result is what an apply did.
type Result struct {
	From     string        `json:"from"`
	To       string        `json:"to"`
	Hops     []Hop         `json:"hops"`
	Backups  []string      `json:"backups"`
	KeptDirs []string      `json:"kept_dirs,omitempty"`
	Took     time.Duration `json:"took"`
}

// InProgressError refuses a new target while another upgrade is half done.
type InProgressError struct{ Target, Want string }

func (e *InProgressError) Error() string {
	return fmt.Sprintf("an upgrade to GitLab %s is in progress: finish it first (forgebox upgrade apply, without --to %s)", e.Target, e.Want)
}

var stepOrder = []string{"", StepReady, StepPulled, StepBackedUp, StepPostgres, StepSwitched, StepConverged, StepMigrations}

// Apply walks the stack to the target, or resumes the walk in progress. The session holds the
// stack lock throughout.
func Apply(ctx context.Context, x *stack.Session, o Options) (Result, error) {
	start := time.Now()
	if o.MigrationsDeadline == 0 {
		o.MigrationsDeadline = 24 * time.Hour
	}
	if o.BootDeadline == 0 {
		o.BootDeadline = 2 * time.Hour
	}
	if o.Poll == 0 {
		o.Poll = 5 * time.Second
	}
	dataDir := x.Config().Stack.DataDir
	st, err := LoadState(dataDir)
	if err != nil {
		return Result{}, err
	}
	emit := func(kind events.Kind, component string, m msg.Msg) {
		x.Emit(events.Event{Kind: kind, Component: component}.With(m))
	}
	if st == nil {
		p, err := PlanFor(ctx, x, o.To, o.PostgresImage)
		if err != nil {
			return Result{}, err
		}
		st = &State{Format: 1, Target: p.To, From: p.From, StartedAt: time.Now().UTC().Truncate(time.Second), Hops: p.Hops}
		if err := saveState(dataDir, st); err != nil {
			return Result{}, err
		}
		emit(events.KindPlan, "", msg.New("upgrade.plan", "from", p.From, "to", p.To, "hops", hopCount(len(p.Hops)), "file", statePath(dataDir)))
		for i, h := range p.Hops {
			m := msg.New("upgrade.hop", "i", i+1, "version", h.Version, "gitlab", h.GitLabImage, "runner", h.RunnerImage)
			if h.Postgres != nil {
				m = msg.New("upgrade.hopPostgres", "i", i+1, "version", h.Version, "gitlab", h.GitLabImage, "runner", h.RunnerImage,
					"from", h.Postgres.From, "to", h.Postgres.To, "image", h.Postgres.Image)
			}
			emit(events.KindPlan, "", m)
		}
		for _, n := range p.Notes {
			emit(events.KindInfo, "", msg.New("upgrade.note", "note", msg.Raw(n)))
		}
	} else {
		if o.To != "" && o.To != st.Target {
			return Result{}, &InProgressError{Target: st.Target, Want: o.To}
		}
		cur := st.Hops[min(st.Current, len(st.Hops)-1)]
		emit(events.KindInfo, "", msg.New("upgrade.resuming", "target", st.Target, "i", st.Current+1, "n", len(st.Hops), "version", cur.Version, "step", stepMsg(st.Step)))
	}
	save := func() error { return saveState(dataDir, st) }

	for st.Current < len(st.Hops) {
		h := st.Hops[st.Current]
		n := msg.New("upgrade.hopName", "i", st.Current+1, "n", len(st.Hops), "version", h.Version)
		step := func(name string, fn func() error) error {
			if slices.Index(stepOrder, st.Step) >= slices.Index(stepOrder, name) {
				return nil
			}
			if err := fn(); err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
			st.Step = name
			if err := save(); err != nil {
				return err
			}
			testhook.After(name)
			return nil
		}
		if err := step(StepReady, func() error {
			emit(events.KindStep, "", msg.New("upgrade.checkReady", "hop", n))
			if _, err := x.ConvergeForUpgrade(ctx); err != nil {
				return err
			}
			return WaitMigrations(ctx, x, o.MigrationsDeadline, o.Poll)
		}); err != nil {
			return Result{}, err
		}
		if err := step(StepPulled, func() error { return pullImages(ctx, x, h) }); err != nil {
			return Result{}, err
		}
		if err := step(StepBackedUp, func() error {
			b, err := backup.Create(ctx, x, backup.KindPreUpgrade)
			if err != nil {
				return fmt.Errorf("the backup before the upgrade failed, so nothing was changed: %w", err)
			}
			st.Backups = append(st.Backups, b.Name)
			return nil
		}); err != nil {
			return Result{}, err
		}
		if err := step(StepPostgres, func() error {
			if h.Postgres == nil {
				return nil
			}
			ps := pgupgrade.State{}
			if st.Postgres != nil {
				ps = *st.Postgres
			}
			res, err := pgupgrade.Upgrade(ctx, x, ps, pgupgrade.Options{
				Image: h.Postgres.Image, MinMajor: h.Postgres.To, SaveCfg: o.SaveConfig,
				Save: func(s pgupgrade.State) error { st.Postgres = &s; return save() },
			})
			if err != nil {
				return fmt.Errorf("PostgreSQL %d -> %d: %w", h.Postgres.From, h.Postgres.To, err)
			}
			st.KeptDirs = append(st.KeptDirs, res.OldDir)
			st.Postgres = nil
			emit(events.KindStep, "", msg.New("upgrade.backOnPostgres", "hop", n, "major", res.To))
			_, err = x.ConvergeForUpgrade(ctx)
			return err
		}); err != nil {
			return Result{}, err
		}
		if err := step(StepSwitched, func() error {
			cfg := x.Config()
			emit(events.KindStep, "gitlab", msg.New("upgrade.switch", "hop", n, "gitlab", h.GitLabImage, "runner", h.RunnerImage))
			cfg.GitLab.Image, cfg.Runner.Image = h.GitLabImage, h.RunnerImage
			if err := o.SaveConfig(cfg); err != nil {
				return fmt.Errorf("save the config with the new images: %w", err)
			}
			x.SetConfig(cfg)
			return nil
		}); err != nil {
			return Result{}, err
		}
		if err := step(StepConverged, func() error { return convergeHop(ctx, x, h, o) }); err != nil {
			return Result{}, err
		}
		if err := step(StepMigrations, func() error { return WaitMigrations(ctx, x, o.MigrationsDeadline, o.Poll) }); err != nil {
			return Result{}, err
		}
		emit(events.KindInfo, "", msg.New("upgrade.hopDone", "hop", n))
		st.Current++
		st.Step = ""
		if err := save(); err != nil {
			return Result{}, err
		}
		testhook.After("hop")
	}
	if err := removeState(dataDir); err != nil {
		return Result{}, err
	}
	res := Result{From: st.From, To: st.Target, Hops: st.Hops, Backups: st.Backups, KeptDirs: st.KeptDirs, Took: time.Since(start)}
	emit(events.KindInfo, "", msg.New("upgrade.done", "to", st.Target, "from", st.From, "hops", hopCount(len(st.Hops)), "backups", strings.Join(st.Backups, ", ")))
	for _, d := range st.KeptDirs {
		emit(events.KindInfo, "postgres", msg.New("upgrade.keptDir", "dir", d))
	}
	return res, nil
}

// pullImages gets the hop's images onto the engine while GitLab still runs, so a failed or slow
// download never leaves the stack down.
func pullImages(ctx context.Context, x *stack.Session, h Hop) error {
	cfg := x.Config()
	images := []string{h.GitLabImage, h.RunnerImage}
	if h.Postgres != nil {
		images = append(images, h.Postgres.Image)
	}
	eng := x.Engine()
	for _, img := range images {
		id, err := eng.ImageID(ctx, img)
		if err != nil {
			return err
		}
		switch {
		case cfg.Stack.PullPolicy == "always" || (id == "" && cfg.Stack.PullPolicy == "missing"):
			x.Emit(events.Event{Kind: events.KindStep, Status: events.Working}.With(msg.New("upgrade.pull", "image", img)))
			// The stack's own pull path: mirrors, pull_via and resuming downloads, as `up` uses.
			if err := x.Pull(ctx, "", img); err != nil {
				return err
			}
		case id == "":
			return fmt.Errorf("image %s is not on this engine and stack.pull_policy is \"never\": load it (docker load) and run again", img)
		}
	}
	return nil
}

// convergeHop brings the hop's GitLab up; its first boot runs the database migrations, which may
// take longer than a normal boot, so a timed-out wait goes on up to BootDeadline.
func convergeHop(ctx context.Context, x *stack.Session, h Hop, o Options) error {
	_, err := x.ConvergeForUpgrade(ctx)
	if err != nil && errors.Is(err, engine.ErrHealthTimeout) {
		x.Emit(events.Event{Kind: events.KindWait, Status: events.Working, Component: "gitlab"}.With(msg.New("upgrade.migratingBoot", "version", h.Version, "limit", o.BootDeadline.String())))
		if werr := x.WaitGitLab(ctx, o.BootDeadline); werr != nil {
			return werr
		}
		_, err = x.ConvergeForUpgrade(ctx)
	}
	if err != nil {
		return err
	}
	v, err := x.GitLabVersion(ctx)
	if err != nil {
		return err
	}
	want, _ := upgradepath.Parse(h.Version)
	if v != want {
		return fmt.Errorf("after the switch to %s GitLab reports version %s, not %s", h.GitLabImage, v, h.Version)
	}
	x.Emit(events.Event{Kind: events.KindInfo, Status: events.Done, Component: "gitlab"}.With(msg.New("upgrade.version", "version", v.String())))
	return nil
}

// FailedMigrationError says a batched background migration failed: GitLab will not finish it
// alone, and the next hop must not start.
type FailedMigrationError struct{ Names []string }

func (e *FailedMigrationError) Error() string {
	return fmt.Sprintf("batched background migration(s) failed: %s; retry them in GitLab (Admin > Monitoring > Background migrations > Retry), wait until they finish, then run forgebox upgrade apply again", strings.Join(e.Names, ", "))
}

type pendingMigration struct {
	ID     int64
	Class  string
	Table  string
	Status int16
}

var statusNames = map[int16]string{0: "paused", 1: "active", 2: "aborted", 3: "finished", 4: "failed", 5: "finalizing", 6: "finalized"}

// WaitMigrations waits until GitLab's batched background migrations are finished
// (docs.gitlab.com/update/background_migrations; docs/gitlab-contract.md §7.2):
// SELECT ... FROM batched_background_migrations WHERE status NOT IN (3, 6) must return no row.
// A failed one stops the wait at once.
func WaitMigrations(ctx context.Context, x *stack.Session, deadline, poll time.Duration) error {
	t, err := x.PostgresTarget(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	cc, err := pgx.ParseConfig("sslmode=disable connect_timeout=10")
	if err != nil {
		return err
	}
	cc.Host, cc.Port, cc.User, cc.Password, cc.Database = t.Host, uint16(t.Port), t.Superuser, t.SuperPassword, t.Database
	start := time.Now()
	var reported time.Time
	for {
		pending, err := pendingMigrations(ctx, cc)
		if err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table: a GitLab without them
				x.Emit(events.Event{Kind: events.KindInfo, Status: events.Done, Component: "gitlab"}.With(msg.New("upgrade.noMigrationsTable")))
				return nil
			}
			if ctx.Err() != nil {
				return fmt.Errorf("batched background migrations still running after %s: %w", deadline, ctx.Err())
			}
			return fmt.Errorf("ask PostgreSQL about batched background migrations: %w", err)
		}
		var failed, names []string
		var each []msg.Msg
		for _, m := range pending {
			if m.Status == 4 {
				failed = append(failed, m.Class)
			}
			names = append(names, fmt.Sprintf("%s on %s (%s)", m.Class, m.Table, statusNames[m.Status]))
			each = append(each, msg.New("upgrade.migration", "class", m.Class, "table", m.Table, "status", msg.New("migration."+statusNames[m.Status])))
		}
		if len(failed) > 0 {
			return &FailedMigrationError{Names: failed}
		}
		if len(pending) == 0 {
			x.Emit(events.Event{Kind: events.KindInfo, Status: events.Done, Component: "gitlab"}.With(msg.New("upgrade.migrationsDone", "took", time.Since(start).Round(time.Second).String())))
			return nil
		}
		if time.Since(reported) >= 10*time.Second {
			reported = time.Now()
			x.Emit(events.Event{Kind: events.KindWait, Status: events.Working, Component: "gitlab"}.With(msg.New("upgrade.migrationsWait",
				"n", len(pending), "took", time.Since(start).Round(time.Second).String(), "each", each)))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d batched background migrations are still not finished after %s (%s): let GitLab finish them (Admin > Monitoring > Background migrations), then run forgebox upgrade apply again", len(pending), deadline, strings.Join(names, ", "))
		case <-time.After(poll):
		}
	}
}

func pendingMigrations(ctx context.Context, cc *pgx.ConnConfig) ([]pendingMigration, error) {
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT id, job_class_name, table_name, status FROM batched_background_migrations WHERE status NOT IN (3, 6) ORDER BY id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (pendingMigration, error) {
		var m pendingMigration
		err := r.Scan(&m.ID, &m.Class, &m.Table, &m.Status)
		return m, err
	})
}

// hopCount is "1 hop" or "N hops".
func hopCount(n int) msg.Msg {
	if n == 1 {
		return msg.New("upgrade.hops.one")
	}
	return msg.New("upgrade.hops.many", "n", n)
}

// stepMsg names the last step an interrupted upgrade finished, in the reader's language.
func stepMsg(step string) msg.Msg {
	if step == "" {
		return msg.New("upgrade.step.none")
	}
	return msg.New("upgrade.step." + step)
}
