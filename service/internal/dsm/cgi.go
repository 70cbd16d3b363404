package dsm

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/dsm/front"
)

// NewFront is index.cgi as the forgebox binary serves it (package front, plus the diagnostics
// report built in this process, and the config read directly for a hand-edited data_dir that
// prestart has not recorded yet).
func NewFront(env Env, getenv func(string) string) *front.Front {
	f := front.NewFront(env.Env, getenv)
	f.Report = report(env)
	f.DataDir = func() (string, error) {
		if dir, err := front.RecordedDataDir(env.VarDir); err != nil || dir != "" {
			return dir, err
		}
		c, err := config.Load(env.ConfigFile)
		if err != nil {
			return "", err
		}
		return c.Stack.DataDir, nil
	}
	return f
}

// ServeCGI answers the one request of this CGI process.
func ServeCGI(env Env) error { return front.Serve(NewFront(env, env.Getenv), os.Stdin, os.Stdout) }

// IsCGIRequest says whether this process was started as a CGI: by the name index.cgi (the hard
// link in the package's ui directory), or by a web server's CGI environment with no arguments.
func IsCGIRequest(args []string, getenv func(string) string) bool {
	if len(args) == 0 {
		return false
	}
	name := args[0]
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	return name == "index.cgi" || (getenv("GATEWAY_INTERFACE") != "" && len(args) == 1)
}

// recordDataDir tells index.cgi where the data dir is when the config names another than the
// package's (front.DataDirRecordName), and removes the record when it names the package's.
func recordDataDir(env Env, c config.Config) error {
	path := filepath.Join(env.VarDir, front.DataDirRecordName)
	if c.Stack.DataDir == "" || c.Stack.DataDir == env.DataDir {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	return config.WriteFileAtomic(path, []byte(c.Stack.DataDir+"\n"), 0o644)
}
