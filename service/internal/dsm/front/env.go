// Package front is index.cgi, the DSM app window's front: DSM's web server starts it once per
// request of the window, so it is its own small program (service/cmd/forgebox-cgi). It asks
// DSM's authenticate.cgi and id who is logged in, lets only administrators through
// (remembering an administrator's session for the window's GETs), keeps the shape of its CGI
// environment for the diagnostics report, and passes the request on to the controller with
// the shared front secret.
//
// Its whole cost is its start, so it links little: neither the config parser (toml, image
// references), the Docker client, gin or pgx, nor the rest of package dsm (the lifecycle
// scripts, the wizard, the report), nor net/http (crypto/tls and HTTP/2 initialise at every
// start), net or net/textproto: the CGI request and answer (cgi.go, header.go) and the one
// exchange with the controller (proxy.go, dial.go) are written out, and a poll of the window
// allocates little and reads its small files with plain system calls (readfile.go), since
// on a small machine a page fault or a thread start is a measurable part of the request.
// Package dsm builds on it: the constants here are the
// package's, and the report comes in through Front.Report. TestFrontLinksLittle keeps it so;
// bench/README.md ("The DSM app window") has the figures.
package front

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/forgebox/forgebox/service/internal/secretfiles"
)

// The package's fixed names, as in spk/info.toml.
const (
	PackageName = "forgebox"
	DataDirName = "data" // <var>/data: the config's default data_dir

	DefaultControllerURL = "http://127.0.0.1:8470"
	AdminGroup           = "administrators"
)

// DSM's tools, where DSM 7 has them.
const (
	DefaultAuthenticateCGI = "/usr/syno/synoman/webman/modules/authenticate.cgi"
	DefaultLoginCGI        = "/usr/syno/synoman/webman/login.cgi"
	DefaultIDTool          = "/usr/bin/id"
)

// Environment variables for tests (package dsm has the rest). The three that swap the tools
// deciding who may use the app window are read only by a binary built with -tags
// forgebox_testhooks (authtools_testhooks.go); a release binary always uses DSM's own.
const (
	EnvPkgRoot         = "FORGEBOX_DSM_PKGROOT"
	EnvControllerURL   = "FORGEBOX_CONTROLLER_URL"
	EnvAuthenticateCGI = "FORGEBOX_DSM_AUTHENTICATE_CGI"
	EnvLoginCGI        = "FORGEBOX_DSM_LOGIN_CGI"
	EnvIDTool          = "FORGEBOX_DSM_ID"
)

// The controller's side of the contract (service/internal/api): headers the front sets.
const (
	HeaderFrontSecret = "X-Forgebox-Front-Secret"
	HeaderUser        = "X-Forgebox-User"
	HeaderLang        = "X-Forgebox-Lang"
)

// Files in the var dir that the front reads or writes.
const (
	CGIRecordName = "cgi.json" // the CGI environment's shape, as index.cgi last saw it on a request DSM checked
	// DataDirRecordName names the controller's data dir when the config's data_dir is not
	// <var>/data (a hand-edited config): prestart writes it from the loaded config, so that
	// index.cgi finds front.secret without parsing the config on every request.
	DataDirRecordName = "front-data-dir"
	StartedMarkerName = "started" // written by start, removed by stop
)

// ReportPath is the diagnostics report's route below index.cgi, served by the front itself.
const ReportPath = "/_dsm/report"

// AppPrefix is the app window's URL path: DSM links the package's ui directory to
// webman/3rdparty/<package>, and index.cgi is in it.
const AppPrefix = "/webman/3rdparty/" + PackageName + "/index.cgi"

// Env is where the front's things are on this NAS.
type Env struct {
	PkgRoot string // /var/packages/forgebox
	VarDir  string // its var
	DataDir string // <var>/data, the config's default data_dir

	ControllerURL   string
	AuthenticateCGI string
	LoginCGI        string
	IDTool          string
}

// WithDefaults reads a variable from getenv (os.Getenv when nil), trimmed, or def when it is
// unset or blank.
func WithDefaults(getenv func(string) string) func(key, def string) string {
	if getenv == nil {
		getenv = os.Getenv
	}
	return func(key, def string) string {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			return v
		}
		return def
	}
}

// LoadEnv reads the environment (package dsm's LoadEnv says why the paths are the canonical
// /var/packages ones).
func LoadEnv(getenv func(string) string) Env {
	get := WithDefaults(getenv)
	root := filepath.Clean(get(EnvPkgRoot, "/var/packages/"+PackageName))
	e := Env{
		PkgRoot:         root,
		VarDir:          filepath.Join(root, "var"),
		ControllerURL:   strings.TrimRight(get(EnvControllerURL, DefaultControllerURL), "/"),
		AuthenticateCGI: AuthTool(get, EnvAuthenticateCGI, DefaultAuthenticateCGI),
		LoginCGI:        AuthTool(get, EnvLoginCGI, DefaultLoginCGI),
		IDTool:          AuthTool(get, EnvIDTool, DefaultIDTool),
	}
	e.DataDir = filepath.Join(e.VarDir, DataDirName)
	return e
}

// StartedMarker is the path of the marker the package's status answers from.
func (e Env) StartedMarker() string { return filepath.Join(e.VarDir, StartedMarkerName) }

// FrontSecret reads the shared secret the controller wrote into its data dir.
func FrontSecret(dataDir string) (string, error) {
	b, err := readSmall(filepath.Join(dataDir, secretfiles.FrontSecret))
	if err != nil {
		return "", fmt.Errorf("read the front secret: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("the front secret in %s is empty", dataDir)
	}
	return s, nil
}

// RecordedDataDir is the data dir prestart recorded (DataDirRecordName): "" with no error when
// there is no record, i.e. the config's data_dir is the default one.
func RecordedDataDir(varDir string) (string, error) {
	b, err := readSmall(filepath.Join(varDir, DataDirRecordName))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read where the data dir is: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
