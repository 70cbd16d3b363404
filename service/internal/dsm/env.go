// Package dsm is forgebox's Synology DSM face.
//
//   - The package lifecycle: DSM runs the scripts in scripts/ as the package user with its
//     SYNOPKG_* environment and the wizards' answers; they call `forgebox dsm <action>`, which
//     lands in Run. postinst turns the install wizard's answers into the config file, checked
//     by the config package's own validation; start, stop and status talk to the controller,
//     the container that Container Manager runs from the package's compose project.
//   - index.cgi, the front of the DSM app window, is package front (service/internal/dsm/front),
//     which links none of this package: DSM starts it for every request of the window. This
//     package adds the diagnostics report to it (ServeCGI), for the forgebox binary run as
//     index.cgi.
//
// The package user cannot reach the Docker socket (DSM keeps it root-only), so nothing here
// talks to the engine: the controller does, from inside its container.
package dsm

import (
	"os"
	"path/filepath"

	"github.com/forgebox/forgebox/service/internal/dsm/front"
)

// The package's fixed names. They match spk/info.toml, whose values DSM bakes into paths and
// users at install time; changing them would make a different package.
const (
	PackageName    = front.PackageName
	ShareName      = "forgebox"
	ConfigFileName = "forgebox.toml"
	DataDirName    = front.DataDirName
	// GitLabShareDir is where GitLab's data was in the share before it moved to the var dir
	// (GitLabDirName); the delete choice of the uninstall wizard removes it, and leaves the
	// rest (backups) to the user.
	GitLabShareDir = "gitlab"
	// GitLabDirName is GitLab's live data in the var dir (@appdata): containers that chmod
	// inside a Synology shared folder get "Operation not permitted" (shared research
	// audit-spk.md finding 8), so only backups and exports go to the share.
	GitLabDirName = "gitlab"

	DefaultControllerURL = front.DefaultControllerURL
	AdminGroup           = front.AdminGroup
)

// DSM's tools, where DSM 7 has them.
const (
	DefaultAuthenticateCGI = front.DefaultAuthenticateCGI
	DefaultLoginCGI        = front.DefaultLoginCGI
	DefaultIDTool          = front.DefaultIDTool
	DefaultServiceTool     = "/usr/syno/bin/servicetool"
	DefaultPkgHelper       = "/usr/syno/sbin/synopkghelper"
	DefaultMemInfo         = "/proc/meminfo"
)

// Environment variables that point forgebox at a scratch package root and at stand-ins of
// DSM's tools. They exist for tests only; on a NAS none is set and the defaults above apply.
// The three that swap the tools deciding who may use the app window (authenticate.cgi,
// login.cgi, id) are read only by a binary built with -tags forgebox_testhooks
// (front.AuthTool); a release binary always uses DSM's own.
const (
	EnvPkgRoot         = front.EnvPkgRoot
	EnvControllerURL   = front.EnvControllerURL
	EnvAuthenticateCGI = front.EnvAuthenticateCGI
	EnvLoginCGI        = front.EnvLoginCGI
	EnvIDTool          = front.EnvIDTool
	EnvServiceTool     = "FORGEBOX_DSM_SERVICETOOL"
	EnvPkgHelper       = "FORGEBOX_DSM_SYNOPKGHELPER"
	EnvMemInfo         = "FORGEBOX_DSM_MEMINFO"
	EnvStartWait       = "FORGEBOX_DSM_START_WAIT" // a Go duration
	EnvStopWait        = "FORGEBOX_DSM_STOP_WAIT"
)

// Env is where things are on this NAS: index.cgi's part (front.Env: the package root, its var
// and data dirs, the controller's URL, DSM's tools that tell who is logged in) and the rest
// the lifecycle scripts use.
type Env struct {
	front.Env
	Getenv func(string) string

	ShareDir   string // the data share, through DSM's /var/packages/<pkg>/shares symlink
	ConfigFile string // <var>/forgebox.toml
	GitLabDir  string // <var>/gitlab: GitLab's live data (the config's gitlab_dir)

	ServiceTool string
	PkgHelper   string
	MemInfo     string
}

// LoadEnv reads the environment. The paths are the canonical /var/packages ones rather than
// SYNOPKG_PKGVAR's value, because the controller mounts exactly these paths into its container
// (spk/compose/compose.yaml): the config must name directories that exist there too.
func LoadEnv(getenv func(string) string) Env {
	if getenv == nil {
		getenv = os.Getenv
	}
	get := front.WithDefaults(getenv)
	e := Env{
		Env:         front.LoadEnv(getenv),
		Getenv:      getenv,
		ServiceTool: get(EnvServiceTool, DefaultServiceTool),
		PkgHelper:   get(EnvPkgHelper, DefaultPkgHelper),
		MemInfo:     get(EnvMemInfo, DefaultMemInfo),
	}
	e.ShareDir = filepath.Join(e.PkgRoot, "shares", ShareName)
	e.ConfigFile = filepath.Join(e.VarDir, ConfigFileName)
	e.GitLabDir = filepath.Join(e.VarDir, GitLabDirName)
	return e
}

// TargetDir is the installed payload: SYNOPKG_PKGDEST, else <root>/target.
func (e Env) TargetDir() string {
	if d := e.Getenv("SYNOPKG_PKGDEST"); d != "" {
		return d
	}
	return filepath.Join(e.PkgRoot, "target")
}
