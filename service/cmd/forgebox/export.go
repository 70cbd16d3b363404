package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/forgebox/forgebox/service/internal/buildinfo"
	"github.com/forgebox/forgebox/service/internal/compose"
	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/stack"
)

// exportCmd writes the configured stack in another tool's format; only Compose so far.
func (g *globals) exportCmd(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "secrets" {
		return g.exportSecrets(args[1:])
	}
	if len(args) == 0 || args[0] != "compose" {
		return errors.New("say what to export: forgebox export compose [--output DIR] [--force] [--subnet CIDR], or forgebox export secrets --format omnibus|helm [--output FILE]")
	}
	fs := newFlags("export compose", g.stderr)
	out := fs.String("output", ".", "directory to write compose.yaml, .env and postgres-init/ into")
	force := fs.Bool("force", false, "replace those files when they exist")
	subnet := fs.String("subnet", "", "the internal network's subnet (default: the existing internal network's, else "+compose.DefaultSubnet+")")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("export compose takes no arguments, only flags: %v", fs.Args())
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	host, err := stack.ResolveHost(cfg)
	if err != nil {
		return err
	}

	// The subnet of the network forgebox made, when the engine answers: GitLab's allowlist then
	// stays what it is. Without an engine the export still works, on the default subnet.
	var finder compose.NetworkFinder
	if *subnet == "" {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		eng, err := engine.Connect(cctx)
		cancel()
		if err != nil {
			fmt.Fprintf(g.stderr, "forgebox export: no Docker Engine to ask for the internal network's subnet (%v); using %s\n", err, compose.DefaultSubnet)
		} else {
			defer eng.Close()
			finder = eng
		}
	}
	sn, from, err := compose.ResolveSubnet(ctx, finder, cfg, *subnet)
	if err != nil {
		return err
	}

	// The export generates the secrets a stack that never ran lacks, exactly as `up` would, so
	// Compose and forgebox agree on them: that writes the secret store, so it takes the lock.
	lock, err := stack.TryLock(cfg.Stack.DataDir, "export compose")
	if err != nil {
		return err
	}
	defer lock.Unlock()
	secrets, err := config.OpenSecrets(cfg.Stack.DataDir)
	if err != nil {
		return err
	}
	source := "the embedded defaults"
	if _, err := os.Stat(g.configPath); err == nil {
		source = g.configPath
	}
	files, err := compose.Render(cfg, secrets, compose.Options{
		Version: buildinfo.Version, Env: stack.Env{Host: host, Subnet: sn}, Source: source,
	})
	if err != nil {
		return err
	}
	written, err := compose.Write(*out, files, *force)
	if err != nil {
		return err
	}
	for _, p := range written {
		fmt.Fprintf(g.stdout, "wrote %s\n", p)
	}
	fmt.Fprintf(g.stdout, "networks %s (subnet %s, from %s) and %s\n", cfg.NetworkName(), sn, from, cfg.JobsNetworkName())
	fmt.Fprintf(g.stdout, "%d secrets are in %s (mode 0600), none in %s\n", len(files.Vars), compose.EnvFile, compose.ComposeFile)
	fmt.Fprintf(g.stdout, "start it with: docker compose --project-directory %s up -d --wait\n", *out)
	return nil
}

// exportSecrets writes GitLab's Rails secrets for an Omnibus or Helm GitLab into a file, mode
// 0600; they are never printed.
func (g *globals) exportSecrets(args []string) error {
	fs := newFlags("export secrets", g.stderr)
	format := fs.String("format", "", "omnibus (gitlab-secrets.json) or helm (a Kubernetes Secret)")
	out := fs.String("output", "", "file to write (default: gitlab-secrets.json or rails-secret.yaml)")
	release := fs.String("release", "gitlab", "the GitLab chart's release name (helm)")
	force := fs.Bool("force", false, "replace the file when it exists")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("export secrets takes no arguments, only flags: %v", fs.Args())
	}
	cfg, secrets, err := g.loadConfigAndSecrets()
	if err != nil {
		return err
	}
	b, err := stack.ExportSecrets(cfg, secrets, *format, *release)
	if err != nil {
		return err
	}
	path := *out
	if path == "" {
		path = map[string]string{"omnibus": "gitlab-secrets.json", "helm": "rails-secret.yaml"}[*format]
	}
	if _, err := os.Stat(path); err == nil && !*force {
		return fmt.Errorf("%s exists: remove it or add --force", path)
	}
	if err := config.WriteFileAtomic(path, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	fmt.Fprintf(g.stdout, "wrote %s (mode 0600: GitLab's Rails secrets; see docs/scale-out.md for where it goes)\n", path)
	return nil
}
