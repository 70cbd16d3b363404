package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/forgebox/forgebox/service/internal/dsm"
	"github.com/forgebox/forgebox/service/internal/engine"
)

// On a Synology NAS the package's ui/index.cgi is a hard link to this binary, and DSM's web
// server runs it as a CGI with no arguments: answer that one request and exit before the
// command-line parsing, which would only see a missing command.
func init() {
	if dsm.IsCGIRequest(os.Args, os.Getenv) {
		os.Exit(serveCGI())
	}
}

func serveCGI() int {
	if err := dsm.ServeCGI(dsm.LoadEnv(nil)); err != nil {
		fmt.Fprintln(os.Stderr, "forgebox cgi:", err)
		return 1
	}
	return 0
}

// dsmCmd runs a step of the DSM package lifecycle for the scripts in the package's scripts/
// directory: preinst, postinst, preupgrade, postupgrade, preuninst, postuninst, prestart,
// start, stop, status, and health (the controller container's health check). The exit code is
// the script's, which DSM reads (status: 0 running, 3 not running).
func (g *globals) dsmCmd(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("say one action: preinst, postinst, preupgrade, postupgrade, preuninst, postuninst, prestart, start, stop, status, health, or report")
	}
	if args[0] == "report" {
		// The diagnostics file for a support request: DSM facts, never a secret.
		return dsm.WriteReport(ctx, dsm.LoadEnv(nil), g.stdout)
	}
	dsm.ConnectImages = func(ctx context.Context) (dsm.ImageRemover, func(), error) {
		eng, err := engine.Connect(ctx)
		if err != nil {
			return nil, nil, err
		}
		return eng, func() { eng.Close() }, nil
	}
	if code := dsm.Run(ctx, args[0], dsm.LoadEnv(nil), g.stderr); code != 0 {
		os.Exit(code)
	}
	return nil
}

// cgiCmd serves one CGI request, like index.cgi; for web servers that run `forgebox cgi`.
func (g *globals) cgiCmd(args []string) error {
	if len(args) != 0 {
		return errors.New("cgi takes no arguments; the request comes in the CGI environment")
	}
	if code := serveCGI(); code != 0 {
		return silentError{errors.New("cgi failed")}
	}
	return nil
}
