// Package spkbuild assembles forgebox's Synology packages (SPKs): one per DSM arch, each a plain
// tar of INFO, package.tgz, the lifecycle scripts, conf/, the wizards, the icons and LICENSE.
// package.tgz holds the forgebox binary, the DSM app-window files, the port-config file, the
// controller's compose project and the controller image, written here with go-containerregistry.
//
// Everything comes from the repository: spk/info.toml is the one source of truth for the
// package's identity, and conf/, spk/compose/, spk/wizard/, scripts/ and ui/dsm/ hold the
// templates and files (see spk/README.md). Builds are reproducible: entries are sorted, owned
// by root, and stamped with one modification time.
package spkbuild

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
)

// Spec is spk/info.toml: who the package is, for INFO, conf/ and the compose project.
type Spec struct {
	Package            string            `toml:"package"`
	Version            string            `toml:"version"`
	Beta               bool              `toml:"beta"`
	DisplayName        string            `toml:"displayname"`
	Maintainer         string            `toml:"maintainer"`
	MaintainerURL      string            `toml:"maintainer_url"`
	SupportURL         string            `toml:"support_url"`
	OSMinVer           string            `toml:"os_min_ver"`
	InstallDepPackages string            `toml:"install_dep_packages"`
	UserName           string            `toml:"username"`
	GroupName          string            `toml:"groupname"`
	Share              string            `toml:"share"`
	Description        map[string]string `toml:"description"`
	Controller         struct {
		Image     string `toml:"image"`
		Container string `toml:"container"`
		Port      int    `toml:"port"`
	} `toml:"controller"`
	UI struct {
		Dir string `toml:"dir"`
		App string `toml:"app"`
	} `toml:"ui"`
	GitLab struct {
		HTTPPort int `toml:"http_port"`
		SSHPort  int `toml:"ssh_port"`
	} `toml:"gitlab"`
}

// SpecFile is the source of truth's path inside the repository.
const SpecFile = "spk/info.toml"

var (
	// DSM: "Each version number ... is only allowed to be number", delimited by . - or _.
	featureVersionPattern = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*$`)
	osVersionPattern      = regexp.MustCompile(`^[0-9]+\.[0-9]+-[0-9]+$`)
	packagePattern        = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	namePattern           = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
)

// LoadSpec reads spk/info.toml under root, strictly: an unknown key or a missing field is an
// error, so a typo cannot silently drop a line from INFO.
func LoadSpec(root string) (Spec, error) {
	path := filepath.Join(root, SpecFile)
	src, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("read package spec: %w", err)
	}
	var s Spec
	md, err := toml.Decode(string(src), &s)
	if err != nil {
		return Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return Spec{}, fmt.Errorf("%s: unknown keys: %s", path, strings.Join(keys, ", "))
	}
	if err := s.validate(); err != nil {
		return Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func (s Spec) validate() error {
	var errs []error
	need := func(key, v string) {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is missing", key))
		}
	}
	need("package", s.Package)
	need("version", s.Version)
	need("displayname", s.DisplayName)
	need("maintainer", s.Maintainer)
	need("os_min_ver", s.OSMinVer)
	need("install_dep_packages", s.InstallDepPackages)
	need("username", s.UserName)
	need("groupname", s.GroupName)
	need("share", s.Share)
	need("description.enu", s.Description["enu"])
	need("controller.image", s.Controller.Image)
	need("controller.container", s.Controller.Container)
	need("ui.dir", s.UI.Dir)
	need("ui.app", s.UI.App)
	if s.Package != "" && !packagePattern.MatchString(s.Package) {
		errs = append(errs, fmt.Errorf("package %q: use letters, digits, '.', '_' and '-' (DSM forbids : / > < | =)", s.Package))
	}
	if s.Version != "" && !featureVersionPattern.MatchString(s.Version) {
		errs = append(errs, fmt.Errorf("version %q: numbers delimited by '.', e.g. 1.2.3 (the build number is appended)", s.Version))
	}
	if s.OSMinVer != "" && !osVersionPattern.MatchString(s.OSMinVer) {
		errs = append(errs, fmt.Errorf("os_min_ver %q: DSM wants X.Y-Z, e.g. 7.2-69057", s.OSMinVer))
	}
	for key, v := range map[string]string{"username": s.UserName, "groupname": s.GroupName} {
		if v != "" && !namePattern.MatchString(v) {
			errs = append(errs, fmt.Errorf("%s %q: lowercase letters, digits, '-' and '_'", key, v))
		}
	}
	if s.Controller.Port < 1024 || s.Controller.Port > 65535 {
		errs = append(errs, fmt.Errorf("controller.port %d: use 1024 to 65535", s.Controller.Port))
	}
	for key, p := range map[string]int{"gitlab.http_port": s.GitLab.HTTPPort, "gitlab.ssh_port": s.GitLab.SSHPort} {
		if p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("%s %d is not a port", key, p))
		}
	}
	return errors.Join(errs...)
}

// maxVersionPart is DSM's limit for each number of a version: 2^31-1.
const maxVersionPart = 1<<31 - 1

// PackageVersion is the INFO version: the feature version and the build number, which grows
// with every build and is never reset ("1.2.3-0042").
func (s Spec) PackageVersion(build int) (string, error) {
	if build < 1 || build > maxVersionPart {
		return "", fmt.Errorf("build number %d: use 1 to %d", build, maxVersionPart)
	}
	for _, part := range strings.Split(s.Version, ".") {
		var n int64
		if _, err := fmt.Sscan(part, &n); err != nil || n > maxVersionPart {
			return "", fmt.Errorf("version %q: every part must be a number up to %d", s.Version, maxVersionPart)
		}
	}
	return fmt.Sprintf("%s-%04d", s.Version, build), nil
}

// Arch is one build target: its DSM arch (INFO), Go arch and OCI platform arch in one place.
type Arch struct {
	DSM       string   // the DSM family (Synology developer guide, Appendix A); names the SPK
	Platforms []string // the family's platforms, also listed in INFO arch
	GOARCH    string
	OCI       string // the controller image's config architecture
	ELF       string // debug/elf machine name, for checks
}

// Arches are the DSM families forgebox ships for: x86_64 and 64-bit ARM (armv8). DSM's family
// matching is not complete (Tailscale's x86_64 package was refused on a cedarview model,
// tailscale/tailscale#15462, though Appendix A puts cedarview under x86_64), so INFO lists
// the platforms as well, as SynoCommunity spksrc's DSM 7.2 toolchains do: the lists are
// spksrc's TC_ARCH of toolchain/syno-x64-7.2 and syno-aarch64-7.2 (HEAD 8a30d14; shared
// research audit-spk.md finding 4).
var Arches = []Arch{
	{DSM: "x86_64", GOARCH: "amd64", OCI: "amd64", ELF: "EM_X86_64", Platforms: []string{
		"apollolake", "avoton", "braswell", "broadwell", "broadwellnk", "broadwellnkv2", "broadwellntbap",
		"bromolow", "denverton", "epyc7002", "geminilake", "geminilakenk", "grantley", "icelaked", "kvmx64",
		"purley", "r1000", "r1000nk", "v1000", "v1000nk"}},
	{DSM: "armv8", GOARCH: "arm64", OCI: "arm64", ELF: "EM_AARCH64", Platforms: []string{
		"rtd1296", "rtd1619b", "armada37xx"}},
}

// INFOArch is INFO's arch value: the family, then its platforms, space-separated.
func (a Arch) INFOArch() string {
	return strings.Join(append([]string{a.DSM}, a.Platforms...), " ")
}

// ArchByDSM finds an arch by its DSM name.
func ArchByDSM(name string) (Arch, error) {
	for _, a := range Arches {
		if a.DSM == name {
			return a, nil
		}
	}
	names := make([]string, len(Arches))
	for i, a := range Arches {
		names[i] = a.DSM
	}
	return Arch{}, fmt.Errorf("unknown DSM arch %q: use %s", name, strings.Join(names, " or "))
}
