package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/stack"
)

// runnerCmd is `forgebox runner export-helm PROFILE [--output FILE] [--force]`: values for
// GitLab's gitlab-runner Helm chart, so a kubernetes profile's runner can live in the cluster.
// The file holds the runner's token: it is written 0600 and never printed.
func (g *globals) runnerCmd(args []string) error {
	if len(args) == 0 || args[0] != "export-helm" {
		return errors.New("say what to do: forgebox runner export-helm PROFILE [--output FILE] [--force]")
	}
	fs := newFlags("runner export-helm", g.stderr)
	out := fs.String("output", "", "file to write (default: PROFILE-values.yaml)")
	force := fs.Bool("force", false, "replace the file when it exists")
	var profile string
	rest := args[1:]
	if len(rest) > 0 && rest[0] != "" && rest[0][0] != '-' {
		profile, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if profile == "" && fs.NArg() == 1 {
		profile = fs.Arg(0)
	} else if fs.NArg() > 0 || profile == "" {
		return errors.New("name one runner profile: forgebox runner export-helm PROFILE [--output FILE]")
	}
	cfg, secrets, err := g.loadConfigAndSecrets()
	if err != nil {
		return err
	}
	values, err := stack.HelmValues(cfg, secrets, profile)
	if err != nil {
		return err
	}
	path := *out
	if path == "" {
		path = profile + "-values.yaml"
	}
	if _, err := os.Stat(path); err == nil && !*force {
		return fmt.Errorf("%s exists: remove it or add --force", path)
	}
	if err := config.WriteFileAtomic(path, values, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	fmt.Fprintf(g.stdout, "wrote %s (mode 0600, holds runner %s's token): helm install gitlab-runner -f %s gitlab/gitlab-runner\n", path, profile, path)
	return nil
}
