// The runtime's GOMAXPROCS watcher (Go 1.25) is a goroutine, hence one more thread, for a
// process that lives a few milliseconds and never sees the CPU count change.
//go:debug updatemaxprocs=0

// Command forgebox-cgi is the DSM app window's front, index.cgi in the Synology package: it
// answers one CGI request (service/internal/dsm/front) and exits. DSM's web server starts it
// for every request of the app window, so it is its own small binary that links neither the
// Docker client, gin or pgx nor the config parser: bench/README.md has the figures.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/forgebox/forgebox/service/internal/dsm/front"
)

func main() {
	f := front.NewFront(front.LoadEnv(nil), os.Getenv)
	f.Report = reportByForgebox
	if err := front.Serve(f, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "forgebox index.cgi:", err)
		os.Exit(1)
	}
}

// reportByForgebox hands the diagnostics request, a rare one, to the forgebox binary beside
// this one in the package (target/bin/forgebox; index.cgi is target/ui/index.cgi), which
// answers it as index.cgi with the whole report: the same environment, so the same request and
// the same DSM check. It replaces this process, so nothing of this one's answer is written.
func reportByForgebox(w front.ResponseWriter, _ *front.Request, _ front.CGIFacts) {
	self, err := os.Executable()
	if err == nil {
		bin := filepath.Join(filepath.Dir(self), "..", "bin", "forgebox")
		err = syscall.Exec(bin, []string{"index.cgi"}, os.Environ())
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(500)
	fmt.Fprintf(w, `{"error":{"code":"report","message":%q}}`+"\n",
		"index.cgi cannot run forgebox for the diagnostics ("+err.Error()+"); run forgebox dsm report on the NAS instead.")
}
