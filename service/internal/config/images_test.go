package config

import (
	"errors"
	"strings"
	"testing"
)

// TestDefaultTOMLMatchesImageTable: default.toml (what `forgebox config default` prints and what
// runs when no config file exists) starts on the table's row for its flavour on amd64.
func TestDefaultTOMLMatchesImageTable(t *testing.T) {
	d := Default()
	row, ok := DefaultImages(d.GitLab.Flavour, "amd64")
	if !ok {
		t.Fatalf("no table row for default.toml's flavour %q on amd64", d.GitLab.Flavour)
	}
	if d.GitLab.Flavour != DefaultFlavour("amd64") {
		t.Errorf("default.toml flavour %q, table's amd64 default %q", d.GitLab.Flavour, DefaultFlavour("amd64"))
	}
	for key, pair := range map[string][2]string{
		"gitlab.image":   {d.GitLab.Image, row.GitLab},
		"runner.image":   {d.Runner.Image, row.Runner},
		"postgres.image": {d.Postgres.Image, row.Postgres},
	} {
		if pair[0] != pair[1] {
			t.Errorf("default.toml %s = %q, table says %q", key, pair[0], pair[1])
		}
	}
	// The printed file is the embedded one, comments included, and parses to the same.
	c, err := Parse(DefaultTOML())
	if err != nil || c.GitLab.Image != row.GitLab || c.Runner.Image != row.Runner {
		t.Errorf("DefaultTOML parses to %q/%q (%v), table says %q/%q", c.GitLab.Image, c.Runner.Image, err, row.GitLab, row.Runner)
	}
}

// TestImageTableVersions: both flavours on the same GitLab minor, the runner of that minor, and
// PostgreSQL 17 (GitLab 19's minimum).
func TestImageTableVersions(t *testing.T) {
	for _, r := range DefaultImageTable() {
		if _, err := Parse([]byte("version = 1\n[gitlab]\nflavour = \"" + r.Flavour + "\"\nimage = \"" + r.GitLab + "\"\n[runner]\nimage = \"" + r.Runner + "\"\n[postgres]\nimage = \"" + r.Postgres + "\"\n")); err != nil {
			t.Errorf("%s/%s: %v", r.Flavour, r.Arch, err)
		}
		minor := "19.2."
		if !strings.Contains(r.GitLab, ":"+minor) || !strings.Contains(r.Runner, ":alpine-v"+minor) {
			t.Errorf("%s/%s: GitLab %s and runner %s are not both on %sx", r.Flavour, r.Arch, r.GitLab, r.Runner, minor)
		}
		if !strings.HasPrefix(r.Postgres, "postgres:17") {
			t.Errorf("%s/%s: PostgreSQL %s, GitLab 19 needs 17", r.Flavour, r.Arch, r.Postgres)
		}
	}
	if FlavourImage("omnibus") != "gitlab/gitlab-ce:19.2.4-ce.0" || FlavourImage("sameersbn") != "sameersbn/gitlab:19.2.0" {
		t.Errorf("FlavourImage: %q, %q", FlavourImage("omnibus"), FlavourImage("sameersbn"))
	}
}

func TestDefaultFlavourPerArch(t *testing.T) {
	for arch, want := range map[string]string{"amd64": "sameersbn", "x86_64": "sameersbn", "arm64": "omnibus", "aarch64": "omnibus"} {
		if got := DefaultFlavour(arch); got != want {
			t.Errorf("DefaultFlavour(%q) = %q, want %q", arch, got, want)
		}
		c := DefaultFor(arch)
		if c.GitLab.Flavour != want {
			t.Errorf("DefaultFor(%q).GitLab.Flavour = %q, want %q", arch, c.GitLab.Flavour, want)
		}
		if want == "omnibus" && c.GitLab.Image != "gitlab/gitlab-ce:19.2.4-ce.0" {
			t.Errorf("DefaultFor(%q).GitLab.Image = %q", arch, c.GitLab.Image)
		}
		if err := CheckFlavourArch(c.GitLab.Flavour, c.GitLab.Image, arch, ""); err != nil {
			t.Errorf("the default for %s is refused there: %v", arch, err)
		}
		if err := Save(t.TempDir()+"/f.toml", c); err != nil {
			t.Errorf("DefaultFor(%q) does not validate: %v", arch, err)
		}
	}
}

func TestCheckFlavourArch(t *testing.T) {
	var ae *ArchError
	// sameersbn on arm64 without a local image: refused, naming omnibus.
	err := CheckFlavourArch("sameersbn", "sameersbn/gitlab:19.2.0", "arm64", "")
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), `gitlab.flavour = "omnibus"`) ||
		!strings.Contains(err.Error(), "gitlab/gitlab-ce:19.2.4-ce.0") || !strings.Contains(err.Error(), "amd64 only") {
		t.Errorf("sameersbn on arm64: %v", err)
	}
	// The local image decides when there is one: an amd64 image is refused with its platform...
	err = CheckFlavourArch("sameersbn", "my/gitlab:19.2.0", "aarch64", "amd64")
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "built for amd64") {
		t.Errorf("local amd64 sameersbn on arm64: %v", err)
	}
	// ...and a self-built arm64 one runs.
	if err := CheckFlavourArch("sameersbn", "my/gitlab:19.2.0", "arm64", "arm64"); err != nil {
		t.Errorf("local arm64 sameersbn on arm64: %v", err)
	}
	for _, ok := range [][4]string{
		{"sameersbn", "sameersbn/gitlab:19.2.0", "amd64", ""},
		{"omnibus", "gitlab/gitlab-ce:19.2.4-ce.0", "arm64", ""},
		{"omnibus", "gitlab/gitlab-ce:19.2.4-ce.0", "amd64", "amd64"},
	} {
		if err := CheckFlavourArch(ok[0], ok[1], ok[2], ok[3]); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
}
