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

// Env is where things are on this NAS.
type Env struct {
	Getenv func(string) string

	PkgRoot    string // /var/packages/forgebox
	VarDir     string // its var: kept across upgrades and, unless asked, uninstalls
	ShareDir   string // the data share, through DSM's /var/packages/<pkg>/shares symlink
	ConfigFile string // <var>/forgebox.toml
	DataDir    string // <var>/data: PostgreSQL, Redis, secrets (the config's default data_dir)
	GitLabDir  string // <var>/gitlab: GitLab's live data (the config's gitlab_dir)

	ControllerURL   string
	AuthenticateCGI string
	LoginCGI        string
	IDTool          string
	ServiceTool     string
	PkgHelper       string
	MemInfo         string
}

// LoadEnv reads the environment. The paths are the canonical /var/packages ones rather than
// SYNOPKG_PKGVAR's value, because the controller mounts exactly these paths into its container
// (spk/compose/compose.yaml): the config must name directories that exist there too.
func LoadEnv(getenv func(string) string) Env {
	if getenv == nil {
		getenv = os.Getenv
	}
	get := front.WithDefaults(getenv)
	fe := front.LoadEnv(getenv)
	e := Env{
		Getenv:          getenv,
		PkgRoot:         fe.PkgRoot,
		VarDir:          fe.VarDir,
		ShareDir:        filepath.Join(fe.PkgRoot, "shares", ShareName),
		DataDir:         fe.DataDir,
		ControllerURL:   fe.ControllerURL,
		AuthenticateCGI: fe.AuthenticateCGI,
		LoginCGI:        fe.LoginCGI,
		IDTool:          fe.IDTool,
		ServiceTool:     get(EnvServiceTool, DefaultServiceTool),
		PkgHelper:       get(EnvPkgHelper, DefaultPkgHelper),
		MemInfo:         get(EnvMemInfo, DefaultMemInfo),
	}
	e.ConfigFile = filepath.Join(e.VarDir, ConfigFileName)
	e.GitLabDir = filepath.Join(e.VarDir, GitLabDirName)
	return e
}

// Front is the part of env that index.cgi uses.
func (e Env) Front() front.Env {
	return front.Env{PkgRoot: e.PkgRoot, VarDir: e.VarDir, DataDir: e.DataDir, ControllerURL: e.ControllerURL,
		AuthenticateCGI: e.AuthenticateCGI, LoginCGI: e.LoginCGI, IDTool: e.IDTool}
}

// TargetDir is the installed payload: SYNOPKG_PKGDEST, else <root>/target.
func (e Env) TargetDir() string {
	if d := e.Getenv("SYNOPKG_PKGDEST"); d != "" {
		return d
	}
	return filepath.Join(e.PkgRoot, "target")
}
