// Command forgebox-runner-standin is a contract stand-in for the gitlab/gitlab-runner image: a
// small test double, not GitLab Runner. It reads /etc/gitlab-runner/config.toml strictly, verifies
// each runner's token against GitLab, and for each runner starts one job container from the
// runner's image on its network that fetches from clone_url, proving the path a real job's
// clone takes. See ../README.md.
//
// The same binary is the fetch program copied into job containers: run as
// /forgebox-standin/fetch (or with the subcommand standin-fetch) it does that fetch.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

const defaultConfig = "/etc/gitlab-runner/config.toml"

func main() {
	if filepath.Base(os.Args[0]) == "fetch" {
		os.Exit(fetchMain(os.Args[1:]))
	}
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "standin-fetch" {
		os.Exit(fetchMain(args[1:]))
	}
	configPath, err := parseRunArgs(args)
	if err != nil {
		fmt.Fprintf(os.Stdout, "standin-runner: %v\n", err)
		os.Exit(1)
	}
	logf("forgebox GitLab Runner stand-in (a test double, not GitLab Runner) starting with %s", configPath)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	newDaemon(configPath).run(ctx, hup)
	logf("stopping")
}

// parseRunArgs accepts what the real image runs: `run` with the usual flags (the image's CMD is
// run --user=gitlab-runner --working-directory=/home/gitlab-runner); nothing else.
func parseRunArgs(args []string) (string, error) {
	config := defaultConfig
	if len(args) == 0 {
		return config, nil
	}
	if args[0] != "run" {
		return "", fmt.Errorf("command %q: the stand-in emulates only `gitlab-runner run`", args[0])
	}
	valued := map[string]bool{"--config": true, "-c": true, "--working-directory": true, "-d": true,
		"--user": true, "-u": true, "--service": true, "-n": true, "--listen-address": true}
	for i := 1; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		switch {
		case name == "--syslog":
			continue
		case !valued[name]:
			return "", fmt.Errorf("run: unknown flag %q", a)
		case !hasVal:
			if i+1 >= len(args) {
				return "", fmt.Errorf("run: flag %s needs a value", name)
			}
			i++
			val = args[i]
		}
		if name == "--config" || name == "-c" {
			config = val
		}
	}
	return config, nil
}
