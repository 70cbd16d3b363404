package config

import (
	"fmt"
	"strings"
)

// ImageSet is the images a new install starts on for one GitLab flavour on one engine
// architecture.
type ImageSet struct {
	Flavour  string
	Arch     string // the engine's architecture as Docker reports it (Go names: amd64, arm64)
	GitLab   string
	Runner   string
	Postgres string
}

// Versions of the defaults, from the upstream sources (see docs/gitlab-contract.md §1.1, §2.1, §3.1 and §5.10):
//   - sameersbn/docker-gitlab: newest tag 19.2.0;
//   - omnibus-gitlab: newest 19.2 tag 19.2.4+ce.0, published as gitlab/gitlab-ce:19.2.4-ce.0
//     (lib/gitlab/build/info/docker.rb turns '+' into '-');
//   - gitlab-runner: newest tag of the same minor v19.2.2, image tag alpine-v19.2.2;
//   - PostgreSQL 17: the minimum of GitLab 19 (omnibus 19.2.4+ce.0
//     files/gitlab-cookbooks/postgresql/recipes/bin.rb), and the client both images ship
//     (omnibus config/software/postgresql.rb default_version 17.10; sameersbn 19.2.0 Dockerfile
//     postgresql-client-17).
const (
	defaultSameersbnImage = "sameersbn/gitlab:19.2.0"
	defaultOmnibusImage   = "gitlab/gitlab-ce:19.2.4-ce.0"
	defaultRunnerImage    = "gitlab/gitlab-runner:alpine-v19.2.2"
	defaultPostgresImage  = "postgres:17-alpine"
)

// defaultImages is the one table of default images. sameersbn/gitlab has no arm64 row: its build
// downloads the amd64 Go toolchain (assets/build/install.sh at 19.2.0) and its CI builds for one
// platform, while gitlab/gitlab-ce and gitlab/gitlab-runner publish arm64 too.
var defaultImages = []ImageSet{
	{Flavour: "sameersbn", Arch: "amd64", GitLab: defaultSameersbnImage, Runner: defaultRunnerImage, Postgres: defaultPostgresImage},
	{Flavour: "omnibus", Arch: "amd64", GitLab: defaultOmnibusImage, Runner: defaultRunnerImage, Postgres: defaultPostgresImage},
	{Flavour: "omnibus", Arch: "arm64", GitLab: defaultOmnibusImage, Runner: defaultRunnerImage, Postgres: defaultPostgresImage},
}

// DefaultImageTable returns a copy of the table, for documentation and tests.
func DefaultImageTable() []ImageSet { return append([]ImageSet(nil), defaultImages...) }

// NormalizeArch turns the spellings engines and kernels use into Go's: x86_64 -> amd64,
// aarch64 -> arm64.
func NormalizeArch(arch string) string {
	switch a := strings.ToLower(strings.TrimSpace(arch)); a {
	case "x86_64", "x86-64":
		return "amd64"
	case "aarch64", "arm64v8":
		return "arm64"
	default:
		return a
	}
}

// DefaultImages is the row of the table for flavour on arch, and whether there is one.
func DefaultImages(flavour, arch string) (ImageSet, bool) {
	arch = NormalizeArch(arch)
	for _, s := range defaultImages {
		if s.Flavour == flavour && s.Arch == arch {
			return s, true
		}
	}
	return ImageSet{}, false
}

// DefaultFlavour is the flavour a new install on an engine of arch starts with: sameersbn where
// its image runs, omnibus elsewhere (arm64).
func DefaultFlavour(arch string) string {
	if _, ok := DefaultImages("sameersbn", arch); ok {
		return "sameersbn"
	}
	return "omnibus"
}

// FlavourRunsOn reports whether the table has images of flavour for arch.
func FlavourRunsOn(flavour, arch string) bool {
	_, ok := DefaultImages(flavour, arch)
	return ok
}

// DefaultFor is the embedded defaults for an engine of arch: the default flavour there and its
// images. An arch the table does not know keeps the embedded defaults.
func DefaultFor(arch string) Config {
	c := Default()
	s, ok := DefaultImages(DefaultFlavour(arch), arch)
	if !ok {
		return c
	}
	c.GitLab.Flavour, c.GitLab.Image = s.Flavour, s.GitLab
	c.Runner.Image, c.Postgres.Image = s.Runner, s.Postgres
	return c
}

// FlavourImage is the default GitLab image of a flavour (on amd64, where both have one).
func FlavourImage(flavour string) string {
	if s, ok := DefaultImages(flavour, "amd64"); ok {
		return s.GitLab
	}
	return ""
}

// ArchError refuses a flavour whose image does not run on the engine's architecture.
type ArchError struct {
	Flavour, Image string
	EngineArch     string
	ImageArch      string // the local image's platform, when the engine has the image
}

func (e *ArchError) Error() string {
	why := fmt.Sprintf("%s is published for amd64 only", e.Image)
	if e.ImageArch != "" {
		why = fmt.Sprintf("the local image %s is built for %s", e.Image, e.ImageArch)
	}
	hint := ": use a GitLab image built for " + e.EngineArch
	if s, ok := DefaultImages(DefaultFlavour(e.EngineArch), e.EngineArch); ok {
		hint = fmt.Sprintf(": set gitlab.flavour = %q and gitlab.image = %q (GitLab's own image, which is published for %s)", s.Flavour, s.GitLab, e.EngineArch)
	}
	return fmt.Sprintf("gitlab.flavour %q cannot run on this %s Docker Engine (%s)%s", e.Flavour, e.EngineArch, why, hint)
}

// CheckFlavourArch refuses sameersbn on an engine its image is not built for. imageArch is the
// platform of the configured image when the engine has it ("" when it does not): a local image
// is judged by what it is, so a self-built arm64 sameersbn image is allowed; without one, the
// table decides.
func CheckFlavourArch(flavour, image, engineArch, imageArch string) error {
	engineArch = NormalizeArch(engineArch)
	if imageArch != "" {
		if NormalizeArch(imageArch) == engineArch || flavour != "sameersbn" {
			return nil
		}
		return &ArchError{Flavour: flavour, Image: image, EngineArch: engineArch, ImageArch: NormalizeArch(imageArch)}
	}
	if flavour != "sameersbn" || FlavourRunsOn(flavour, engineArch) {
		return nil
	}
	return &ArchError{Flavour: flavour, Image: image, EngineArch: engineArch}
}
