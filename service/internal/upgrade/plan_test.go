package upgrade

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/upgradepath"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		os.WriteFile(path, []byte(got), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./service/internal/upgrade -run TestPlanGolden -update)", err)
	}
	if got != string(want) {
		t.Errorf("plan differs from %s\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// The multi-hop plan, as `forgebox upgrade plan` prints it, for the two image flavours.
func TestPlanGolden(t *testing.T) {
	cases := []struct {
		name, flavour, gitlab, runner, postgres, from, to, pgImage string
		pg                                                         int
	}{
		{"sameersbn-18.5.1-to-19.2.0", "sameersbn", "sameersbn/gitlab:18.5.1", "gitlab/gitlab-runner:alpine-v18.5.0", "postgres:16-alpine", "18.5.1", "19.2.0", "", 16},
		{"omnibus-16.11.10-to-19.2.4", "omnibus", "gitlab/gitlab-ce:16.11.10-ce.0", "gitlab/gitlab-runner:alpine-v16.11.0", "postgres:13-alpine", "16.11.10", "19.2.4", "", 13},
		{"omnibus-16.3.6-to-16.11.10", "omnibus", "gitlab/gitlab-ce:16.3.6-ce.0", "gitlab/gitlab-runner:alpine-v16.3.0", "postgres:13-alpine", "16.3.6", "16.11.10", "", 13},
		{"sameersbn-17.11.7-to-18.2.8-named-postgres", "sameersbn", "sameersbn/gitlab:17.11.7", "gitlab/gitlab-runner:alpine-v17.11.0", "postgres:15-alpine", "17.11.7", "18.2.8", "registry.nas.lan/postgres:17.6-alpine", 15},
		{"sameersbn-15.11.0-to-16.7.7", "sameersbn", "sameersbn/gitlab:15.11.0", "gitlab/gitlab-runner:alpine-v15.11.0", "postgres:13-alpine", "15.11.0", "16.7.7", "", 13},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.GitLab.Flavour, cfg.GitLab.Image, cfg.Runner.Image, cfg.Postgres.Image = c.flavour, c.gitlab, c.runner, c.postgres
			p, err := MakePlan(cfg, upgradepath.MustParse(c.from), c.pg, upgradepath.MustParse(c.to), c.pgImage)
			if err != nil {
				t.Fatal(err)
			}
			p.FromSource = "GitLab's API (/api/v4/version)"
			golden(t, c.name, p.String())

			// The hops are the flavour's stops after from and before to, then to.
			tab := upgradepath.LoadFor(c.flavour)
			var want []string
			for _, s := range tab.Stops {
				if upgradepath.MustParse(c.from).Less(s) && s.Less(upgradepath.MustParse(c.to)) {
					want = append(want, s.String())
				}
			}
			want = append(want, c.to)
			var got []string
			for _, h := range p.Hops {
				got = append(got, h.Version)
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("hops %v, want the stops table's %v", got, want)
			}
		})
	}
}

func TestPlanRefusals(t *testing.T) {
	cfg := config.Default()
	v := upgradepath.MustParse
	var down *upgradepath.DowngradeError
	if _, err := MakePlan(cfg, v("18.8.11"), 17, v("18.5.7"), ""); !errors.As(err, &down) {
		t.Errorf("downgrade: %v", err)
	}
	var cur *upgradepath.CurrentError
	if _, err := MakePlan(cfg, v("18.5.1"), 17, v("18.5.1"), ""); !errors.As(err, &cur) {
		t.Errorf("same version: %v", err)
	}
	cfg.GitLab.Image = "sameersbn/gitlab:latest"
	if _, err := MakePlan(cfg, v("18.5.1"), 17, v("18.8.11"), ""); err == nil || !strings.Contains(err.Error(), "holds no version") {
		t.Errorf("untagged image: %v", err)
	}
	cfg = config.Default()
	cfg.Postgres.Image = "postgres:latest"
	if _, err := MakePlan(cfg, v("18.11.7"), 16, v("19.2.0"), ""); err == nil || !strings.Contains(err.Error(), "--postgres-image") {
		t.Errorf("PostgreSQL image without a major: %v", err)
	}
	if _, err := MakePlan(config.Default(), v("17.11.7"), 15, v("18.2.8"), "postgres:18-alpine"); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("PostgreSQL too new for GitLab 18: %v", err)
	}
}

// flavourConfig is a config running GitLab v of flavour on PostgreSQL pg, with images named the
// way each flavour's repositories tag them.
func flavourConfig(flavour string, v upgradepath.Version, pg int) config.Config {
	cfg := config.Default()
	cfg.GitLab.Flavour = flavour
	cfg.GitLab.Image = "sameersbn/gitlab:" + v.String()
	if flavour == upgradepath.Omnibus {
		cfg.GitLab.Image = "gitlab/gitlab-ce:" + v.String() + "-ce.0"
	}
	cfg.Runner.Image = "gitlab/gitlab-runner:alpine-v" + upgradepath.RunnerVersionFor(v).String()
	cfg.Postgres.Image = fmt.Sprintf("postgres:%d-alpine", pg)
	return cfg
}

// Every walk between two stops (and from each stop to the newest release), both flavours,
// starting on each PostgreSQL major the first GitLab runs on: no hop's backup dumps the
// database with a client older than the server (the dump is the PostgreSQL container's own
// pg_dump, whose image the plan names; GitLab's backup skips the database), every GitLab runs on
// a PostgreSQL its major supports, and PostgreSQL never moves back.
func TestEveryStopPairBacksUpWithAClientAtLeastTheServer(t *testing.T) {
	pairs, hops := 0, 0
	for _, flavour := range upgradepath.Flavours {
		tab := upgradepath.LoadFor(flavour)
		targets := append(slices.Clone(tab.Stops), tab.Latest)
		for i, from := range tab.Stops {
			r, _ := tab.PostgresFor(from)
			pgs := []int{r.Min}
			if r.Max > r.Min {
				pgs = append(pgs, r.Max)
			}
			for _, to := range targets[i+1:] {
				if !from.Less(to) {
					continue
				}
				for _, pg := range pgs {
					name := fmt.Sprintf("%s %s -> %s on PostgreSQL %d", flavour, from, to, pg)
					p, err := MakePlan(flavourConfig(flavour, from, pg), from, pg, to, "")
					if err != nil {
						t.Errorf("%s: %v", name, err)
						continue
					}
					pairs++
					running, now := from.String(), pg
					for _, h := range p.Hops {
						hops++
						b := h.Backup
						if b.GitLab != running || b.Postgres != now {
							t.Errorf("%s, hop %s: the backup runs on GitLab %s and PostgreSQL %d, but they are %s and %d then", name, h.Version, b.GitLab, b.Postgres, running, now)
						}
						if !b.GitLabSkipsDB || b.DumpMajor < b.Postgres {
							t.Errorf("%s, hop %s: the database is dumped by %s (pg_dump %d, GitLab skips it: %v) from PostgreSQL %d", name, h.Version, b.DumpImage, b.DumpMajor, b.GitLabSkipsDB, b.Postgres)
						}
						if h.Postgres != nil {
							if h.Postgres.From != now || h.Postgres.To <= now {
								t.Errorf("%s, hop %s: PostgreSQL %d -> %d while it runs %d", name, h.Version, h.Postgres.From, h.Postgres.To, now)
							}
							if m, ok := upgradepath.PostgresMajorFromImage(h.Postgres.Image); !ok || m != h.Postgres.To {
								t.Errorf("%s, hop %s: PostgreSQL %d from image %s", name, h.Version, h.Postgres.To, h.Postgres.Image)
							}
							now = h.Postgres.To
						}
						v := upgradepath.MustParse(h.Version)
						if hr, _ := tab.PostgresFor(v); now < hr.Min || (hr.Max != 0 && now > hr.Max) {
							t.Errorf("%s: GitLab %s would run on PostgreSQL %d; it supports %d to %d", name, h.Version, now, hr.Min, hr.Max)
						}
						running = h.Version
					}
					if running != to.String() {
						t.Errorf("%s: the walk ends at %s", name, running)
					}
				}
			}
		}
	}
	t.Logf("%d walks, %d hops checked", pairs, hops)
	if pairs < 2*12*13/2 {
		t.Errorf("only %d walks checked", pairs)
	}
}

// The walk the audit found broken: on Omnibus, PostgreSQL 13 -> 16 before 17.3.7, whose image
// bundles pg_dump 14 only (omnibus-gitlab config/software/postgresql.rb at 17.3.7+ce.0), so the
// next hop's backup would have failed with GitLab's own dump. The plan now dumps it with the
// pg_dump of postgres:16.
func TestTheAuditsBrokenWalkDumpsWithPostgresOwnClient(t *testing.T) {
	from := upgradepath.MustParse("16.11.10")
	p, err := MakePlan(flavourConfig(upgradepath.Omnibus, from, 13), from, 13, upgradepath.LoadFor(upgradepath.Omnibus).Latest, "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Hops[0].Postgres == nil || p.Hops[0].Postgres.To != 16 || p.Hops[0].Version != "17.3.7" {
		t.Fatalf("first hop %+v", p.Hops[0])
	}
	b := p.Hops[1].Backup
	if b.GitLab != "17.3.7" || b.Postgres != 16 || b.DumpImage != "postgres:16-alpine" || b.DumpMajor != 16 || !b.GitLabSkipsDB {
		t.Errorf("the backup before 17.5.5: %+v", b)
	}
	if !strings.Contains(p.String(), "PostgreSQL container's own pg_dump") {
		t.Errorf("the plan does not say how the database is dumped:\n%s", p)
	}
}
