package upgrade

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/upgrade/upgradepath"
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
		{"omnibus-16.11.10-to-19.2.0", "omnibus", "gitlab/gitlab-ce:16.11.10-ce.0", "gitlab/gitlab-runner:alpine-v16.11.0", "postgres:13-alpine", "16.11.10", "19.2.0", "", 13},
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

			// The hops are the table's stops after from and before to, then to.
			tab := upgradepath.Load()
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
