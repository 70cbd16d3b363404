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
	emit := func(kind events.Kind, component, format string, args ...any) {
		x.Emit(events.Event{Kind: kind, Component: component, Message: fmt.Sprintf(format, args...)})
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
		emit(events.KindPlan, "", "upgrade GitLab %s -> %s in %d %s (progress in %s)", p.From, p.To, len(p.Hops), plural(len(p.Hops), "hop", "hops"), statePath(dataDir))
		for i, h := range p.Hops {
			msg := fmt.Sprintf("hop %d: GitLab %s (%s, %s)", i+1, h.Version, h.GitLabImage, h.RunnerImage)
			if h.Postgres != nil {
				msg += fmt.Sprintf(", after PostgreSQL %d -> %d (%s)", h.Postgres.From, h.Postgres.To, h.Postgres.Image)
			}
			emit(events.KindPlan, "", "%s", msg)
		}
		for _, n := range p.Notes {
			emit(events.KindInfo, "", "note: %s", n)
		}
	} else {
		if o.To != "" && o.To != st.Target {
			return Result{}, &InProgressError{Target: st.Target, Want: o.To}
		}
		cur := st.Hops[min(st.Current, len(st.Hops)-1)]
		emit(events.KindInfo, "", "resuming the upgrade to GitLab %s: hop %d of %d (GitLab %s), last step done: %s", st.Target, st.Current+1, len(st.Hops), cur.Version, orNone(st.Step))
	}
	save := func() error { return saveState(dataDir, st) }

	for st.Current < len(st.Hops) {
		h := st.Hops[st.Current]
		n := fmt.Sprintf("hop %d/%d (GitLab %s)", st.Current+1, len(st.Hops), h.Version)
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
			emit(events.KindStep, "", "%s: check the stack is up and GitLab's background migrations are done", n)
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
			emit(events.KindStep, "", "%s: bring the stack back up on PostgreSQL %d before GitLab moves", n, res.To)
			_, err = x.ConvergeForUpgrade(ctx)
			return err
		}); err != nil {
			return Result{}, err
		}
		if err := step(StepSwitched, func() error {
			cfg := x.Config()
			emit(events.KindStep, "gitlab", "%s: switch GitLab to %s and the runner to %s", n, h.GitLabImage, h.RunnerImage)
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
		emit(events.KindInfo, "", "%s done", n)
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
	msg := fmt.Sprintf("GitLab is now %s (from %s, %d %s; backups before each hop: %s)", st.Target, st.From, len(st.Hops), plural(len(st.Hops), "hop", "hops"), strings.Join(st.Backups, ", "))
	for _, d := range st.KeptDirs {
		msg += fmt.Sprintf("; the old PostgreSQL data directory stays at %s: remove it when the upgraded stack works", d)
	}
	emit(events.KindInfo, "", "%s", msg)
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
			x.Emit(events.Event{Kind: events.KindStep, Message: "pull " + img})
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
		x.Emit(events.Event{Kind: events.KindWait, Component: "gitlab", Message: fmt.Sprintf("GitLab %s is still migrating its database; waiting up to %s", h.Version, o.BootDeadline)})
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
	x.Emit(events.Event{Kind: events.KindInfo, Component: "gitlab", Message: "GitLab reports version " + v.String()})
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
				x.Emit(events.Event{Kind: events.KindInfo, Component: "gitlab", Message: "GitLab's database has no batched_background_migrations table: nothing to wait for"})
				return nil
			}
			if ctx.Err() != nil {
				return fmt.Errorf("batched background migrations still running after %s: %w", deadline, ctx.Err())
			}
			return fmt.Errorf("ask PostgreSQL about batched background migrations: %w", err)
		}
		var failed, names []string
		for _, m := range pending {
			if m.Status == 4 {
				failed = append(failed, m.Class)
			}
			names = append(names, fmt.Sprintf("%s on %s (%s)", m.Class, m.Table, statusNames[m.Status]))
		}
		if len(failed) > 0 {
			return &FailedMigrationError{Names: failed}
		}
		if len(pending) == 0 {
			x.Emit(events.Event{Kind: events.KindInfo, Component: "gitlab", Message: fmt.Sprintf("batched background migrations are finished (waited %s)", time.Since(start).Round(time.Second))})
			return nil
		}
		if time.Since(reported) >= 10*time.Second {
			reported = time.Now()
			x.Emit(events.Event{Kind: events.KindWait, Component: "gitlab", Message: fmt.Sprintf("waiting for %d batched background %s (%s so far): %s",
				len(pending), plural(len(pending), "migration", "migrations"), time.Since(start).Round(time.Second), strings.Join(names, ", "))})
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
