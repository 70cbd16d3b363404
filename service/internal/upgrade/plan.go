// Package upgrade walks a stack's GitLab along GitLab's required upgrade stops (the table in
// upgradepath), one hop at a time: wait until batched background migrations are finished, pull
// the hop's images, back up, upgrade PostgreSQL first when the hop's GitLab needs a newer major,
// switch the GitLab and runner images together, converge, wait until GitLab is ready and its
// migrations are done, go on. Skipping a stop and downgrading are refused. Progress goes to the
// activity feed and into a state file in the data dir, so a forgebox killed half way resumes
// where it stopped.
package upgrade

import (
	"context"
	"fmt"
	"strings"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/pgupgrade"
	"github.com/forgebox/forgebox/service/internal/stack"
	"github.com/forgebox/forgebox/service/internal/upgradepath"
)

// Hop is one step of the walk.
type Hop struct {
	Version     string        `json:"version"`
	Stop        bool          `json:"stop"` // a required upgrade stop (else the target alone)
	GitLabImage string        `json:"gitlab_image"`
	RunnerImage string        `json:"runner_image"`
	Backup      BackupStep    `json:"backup"`             // the backup that comes first
	Postgres    *PostgresStep `json:"postgres,omitempty"` // a PostgreSQL major upgrade before this hop
}

// BackupStep is the backup a hop takes before it changes anything: GitLab as it runs then, on
// the PostgreSQL it runs on then. The database is dumped by the PostgreSQL container's own
// pg_dump (the backup package), so the dump's client is that image's major, never a GitLab
// image's bundled one.
type BackupStep struct {
	GitLab        string `json:"gitlab"`         // the GitLab version running
	Postgres      int    `json:"postgres_major"` // the server's major
	DumpImage     string `json:"dump_image"`     // the image whose pg_dump dumps the database
	DumpMajor     int    `json:"dump_major"`     // its major (0: the tag does not say)
	GitLabSkipsDB bool   `json:"gitlab_skips_db"`
}

// PostgresStep is a PostgreSQL major upgrade by dump and restore.
type PostgresStep struct {
	From  int    `json:"from"`
	To    int    `json:"to"`
	Image string `json:"image"`
}

// Plan is what `forgebox upgrade plan` shows and `apply` carries out.
type Plan struct {
	From       string   `json:"from"`
	FromSource string   `json:"from_source"` // where the running version was read
	To         string   `json:"to"`
	Flavour    string   `json:"flavour"`
	Postgres   int      `json:"postgres_major"`
	Hops       []Hop    `json:"hops"`
	Notes      []string `json:"notes,omitempty"`
	InProgress *State   `json:"in_progress,omitempty"`
}

// MakePlan is the walk from GitLab from on PostgreSQL pgMajor to to, with the images of each
// hop derived from the configured ones. pgImage names the PostgreSQL image to move to when the
// walk needs one ("" derives it). It is pure.
func MakePlan(cfg config.Config, from upgradepath.Version, pgMajor int, to upgradepath.Version, pgImage string) (Plan, error) {
	tab := upgradepath.LoadFor(cfg.GitLab.Flavour)
	p := Plan{From: from.String(), To: to.String(), Flavour: cfg.GitLab.Flavour, Postgres: pgMajor}
	walk, err := tab.Walk(from, to)
	if err != nil {
		return p, err
	}
	chosen := 0
	if pgImage != "" {
		m, ok := upgradepath.PostgresMajorFromImage(pgImage)
		if !ok {
			return p, fmt.Errorf("the tag of %s does not say its PostgreSQL major (e.g. postgres:17-alpine)", pgImage)
		}
		chosen = m
	}
	moves, notes, err := tab.PostgresMoves(walk, pgMajor, chosen)
	if err != nil {
		return p, err
	}
	p.Notes = append(p.Notes, notes...)
	stops := map[upgradepath.Version]bool{}
	for _, s := range tab.Stops {
		stops[s] = true
	}
	running, pgNow, pgNowImage := from, pgMajor, cfg.Postgres.Image
	for i, v := range walk {
		h := Hop{Version: v.String(), Stop: stops[v]}
		h.Backup = BackupStep{GitLab: running.String(), Postgres: pgNow, DumpImage: pgNowImage, GitLabSkipsDB: true}
		h.Backup.DumpMajor, _ = upgradepath.PostgresMajorFromImage(pgNowImage)
		if h.GitLabImage, err = upgradepath.ImageFor(cfg.GitLab.Image, v); err != nil {
			return p, fmt.Errorf("gitlab.image: %w", err)
		}
		if h.RunnerImage, err = upgradepath.ImageFor(cfg.Runner.Image, upgradepath.RunnerVersionFor(v)); err != nil {
			return p, fmt.Errorf("runner.image: %w", err)
		}
		for _, m := range moves {
			if m.BeforeHop != i {
				continue
			}
			img := pgImage
			if !m.Chosen {
				if img, err = upgradepath.PostgresImageFor(cfg.Postgres.Image, m.To); err != nil {
					return p, fmt.Errorf("postgres.image: %w", err)
				}
			}
			h.Postgres = &PostgresStep{From: m.From, To: m.To, Image: img}
			pgNow, pgNowImage = m.To, img
		}
		p.Hops = append(p.Hops, h)
		running = v
	}
	for _, c := range tab.ConditionalOn(from, to) {
		p.Notes = append(p.Notes, fmt.Sprintf("GitLab also lists %s as a stop for %s; forgebox does not stop there: if that is your instance, run `forgebox upgrade apply --to %s` first", c.Version, c.When, c.Version))
	}
	if pgImage != "" && len(moves) == 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("PostgreSQL %d already serves every hop: %s is not used", pgMajor, pgImage))
	}
	return p, nil
}

// String is the plan as `forgebox upgrade plan` prints it.
func (p Plan) String() string {
	var b strings.Builder
	if p.InProgress != nil {
		s := p.InProgress
		fmt.Fprintf(&b, "An upgrade to GitLab %s is in progress: hop %d of %d (GitLab %s), last step done: %s.\n",
			s.Target, s.Current+1, len(s.Hops), s.Hops[min(s.Current, len(s.Hops)-1)].Version, orNone(s.Step))
		fmt.Fprintf(&b, "Run `forgebox upgrade apply` to finish it.\n\n")
	}
	fmt.Fprintf(&b, "GitLab %s -> %s (%s image), %d %s along GitLab's required upgrade stops.\n", p.From, p.To, p.Flavour, len(p.Hops), plural(len(p.Hops), "hop", "hops"))
	fmt.Fprintf(&b, "Running version read from %s; PostgreSQL %d.\n\n", p.FromSource, p.Postgres)
	for i, h := range p.Hops {
		what := "required stop"
		switch {
		case h.Stop && i == len(p.Hops)-1:
			what = "required stop, target"
		case !h.Stop:
			what = "target"
		}
		fmt.Fprintf(&b, "%d. GitLab %s (%s)\n", i+1, h.Version, what)
		if h.Postgres != nil {
			fmt.Fprintf(&b, "   first PostgreSQL %d -> %d (%s): dump and restore into a new data directory; the old one is kept\n", h.Postgres.From, h.Postgres.To, h.Postgres.Image)
		}
		fmt.Fprintf(&b, "   gitlab %s, runner %s\n", h.GitLabImage, h.RunnerImage)
	}
	fmt.Fprintf(&b, "\nEach hop: wait until batched background migrations are finished, pull the images, back up,\nswitch GitLab and the runner together, wait until GitLab is ready and its migrations are done.\n")
	fmt.Fprintf(&b, "Each backup dumps GitLab's database with the PostgreSQL container's own pg_dump (always the\nserver's major) and the rest with GitLab's backup (SKIP=db): no GitLab image's bundled\nPostgreSQL client limits when PostgreSQL moves.\n")
	if len(p.Notes) > 0 {
		fmt.Fprintf(&b, "\nNotes:\n")
		for _, n := range p.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func orNone(s string) string {
	if s == "" {
		return "none yet"
	}
	return s
}

// RunningVersion is the GitLab version the stack runs: GitLab's API when it answers, else the
// version GitLab last wrote into its data.
func RunningVersion(ctx context.Context, x *stack.Session) (upgradepath.Version, string, error) {
	if v, err := x.GitLabVersion(ctx); err == nil {
		return v, "GitLab's API (/api/v4/version)", nil
	}
	cfg := x.Config()
	v, ok, err := stack.GitLabDataVersion(cfg)
	if err != nil {
		return v, "", err
	}
	if ok {
		return v, "the version file in GitLab's data (GitLab is not running)", nil
	}
	return v, "", fmt.Errorf("no GitLab has run on this stack's data yet, so there is nothing to upgrade: set gitlab.image to the version you want and run forgebox up")
}

// Target is --to, or the newest version the stops table knows for flavour's images.
func Target(to, flavour string) (upgradepath.Version, error) {
	if to == "" {
		return upgradepath.LoadFor(flavour).Latest, nil
	}
	return upgradepath.Parse(to)
}

// PlanFor reads the running versions and makes the plan (to "" = latest). It changes nothing.
func PlanFor(ctx context.Context, x *stack.Session, to, pgImage string) (Plan, error) {
	cfg := x.Config()
	st, err := LoadState(cfg.Stack.DataDir)
	if err != nil {
		return Plan{}, err
	}
	from, source, err := RunningVersion(ctx, x)
	if err != nil {
		return Plan{}, err
	}
	pg, err := pgupgrade.MajorOfDataDir(x.PostgresDataDir())
	if err != nil {
		return Plan{}, err
	}
	target, err := Target(to, cfg.GitLab.Flavour)
	if err != nil {
		return Plan{}, err
	}
	if st != nil && to == "" {
		target, _ = upgradepath.Parse(st.Target)
	}
	p, err := MakePlan(cfg, from, pg, target, pgImage)
	p.FromSource = source
	p.InProgress = st
	if err != nil {
		if _, cur := err.(*upgradepath.CurrentError); cur && st != nil {
			return p, nil // the last hop is done; apply finishes the bookkeeping
		}
		return p, err
	}
	if v, ok := upgradepath.VersionFromImage(cfg.GitLab.Image); ok && v != from && st == nil {
		p.Notes = append(p.Notes, fmt.Sprintf("gitlab.image says %s but GitLab runs %s: the walk starts from the running version", v, from))
	}
	return p, nil
}
