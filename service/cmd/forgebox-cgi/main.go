// Command forgebox-cgi is the DSM app window's front, index.cgi in the Synology package: it
// answers one CGI request (service/internal/dsm.Front) and exits. DSM's web server starts it
// for every request of the app window, so it is its own small binary, without the Docker
// client, gin or pgx that the forgebox binary links: bench/README.md has the figures.
package main

import (
	"fmt"
	"os"

	"github.com/forgebox/forgebox/service/internal/dsm"
)

func main() {
	if err := dsm.ServeCGI(dsm.LoadEnv(nil)); err != nil {
		fmt.Fprintln(os.Stderr, "forgebox index.cgi:", err)
		os.Exit(1)
	}
}
