// Package dsm is forgebox's Synology DSM face.
//
//   - The package lifecycle: DSM runs the scripts in scripts/ as the package user with its
//     SYNOPKG_* environment and the wizards' answers; they call `forgebox dsm <action>`, which
//     lands in Run. postinst turns the install wizard's answers into the config file, checked
//     by the config package's own validation; start, stop and status talk to the controller,
//     the container that Container Manager runs from the package's compose project.
//   - index.cgi, the front of the DSM app window: the forgebox binary run as a CGI. It asks
//     DSM's authenticate.cgi who is logged in, lets only administrators through, and passes
//     the request to the controller with the shared front secret (Front).
//
// The package user cannot reach the Docker socket (DSM keeps it root-only), so nothing here
// talks to the engine: the controller does, from inside its container.
package dsm

import (
	"os"
	"path/filepath"
	"strings"
)

// The package's fixed names. They match spk/info.toml, whose values DSM bakes into paths and
// users at install time; changing them would make a different package.
const (
	PackageName    = "forgebox"
	ShareName      = "forgebox"
	ConfigFileName = "forgebox.toml"
	DataDirName    = "data"
	// GitLabShareDir is where GitLab's data was in the share before it moved to the var dir
	// (GitLabDirName); the delete choice of the uninstall wizard removes it, and leaves the
	// rest (backups) to the user.
	GitLabShareDir = "gitlab"
	// GitLabDirName is GitLab's live data in the var dir (@appdata): containers that chmod
	// inside a Synology shared folder get "Operation not permitted" (shared research
	// audit-spk.md finding 8), so only backups and exports go to the share.
	GitLabDirName = "gitlab"

	DefaultControllerURL = "http://127.0.0.1:8470"
	AdminGroup           = "administrators"
)

// DSM's tools, where DSM 7 has them.
const (
	DefaultAuthenticateCGI = "/usr/syno/synoman/webman/modules/authenticate.cgi"
	DefaultLoginCGI        = "/usr/syno/synoman/webman/login.cgi"
	DefaultIDTool          = "/usr/bin/id"
	DefaultServiceTool     = "/usr/syno/bin/servicetool"
	DefaultPkgHelper       = "/usr/syno/sbin/synopkghelper"
	DefaultMemInfo         = "/proc/meminfo"
)

// Environment variables that point forgebox at a scratch package root and at stand-ins of
// DSM's tools. They exist for tests only; on a NAS none is set and the defaults above apply.
// The three that swap the tools deciding who may use the app window (authenticate.cgi,
// login.cgi, id) are read only by a binary built with -tags forgebox_testhooks
// (authtools_testhooks.go); a release binary always uses DSM's own.
const (
	EnvPkgRoot         = "FORGEBOX_DSM_PKGROOT"
	EnvControllerURL   = "FORGEBOX_CONTROLLER_URL"
	EnvAuthenticateCGI = "FORGEBOX_DSM_AUTHENTICATE_CGI"
	EnvLoginCGI        = "FORGEBOX_DSM_LOGIN_CGI"
	EnvIDTool          = "FORGEBOX_DSM_ID"
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
	get := func(key, def string) string {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			return v
		}
		return def
	}
	root := filepath.Clean(get(EnvPkgRoot, "/var/packages/"+PackageName))
	e := Env{
		Getenv:          getenv,
		PkgRoot:         root,
		VarDir:          filepath.Join(root, "var"),
		ShareDir:        filepath.Join(root, "shares", ShareName),
		ControllerURL:   strings.TrimRight(get(EnvControllerURL, DefaultControllerURL), "/"),
		AuthenticateCGI: authTool(get, EnvAuthenticateCGI, DefaultAuthenticateCGI),
		LoginCGI:        authTool(get, EnvLoginCGI, DefaultLoginCGI),
		IDTool:          authTool(get, EnvIDTool, DefaultIDTool),
		ServiceTool:     get(EnvServiceTool, DefaultServiceTool),
		PkgHelper:       get(EnvPkgHelper, DefaultPkgHelper),
		MemInfo:         get(EnvMemInfo, DefaultMemInfo),
	}
	e.ConfigFile = filepath.Join(e.VarDir, ConfigFileName)
	e.DataDir = filepath.Join(e.VarDir, DataDirName)
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
