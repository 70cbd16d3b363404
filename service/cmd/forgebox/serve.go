package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"

	"github.com/forgebox/forgebox/service/internal/api"
	"github.com/forgebox/forgebox/service/internal/buildinfo"
	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/dsm"
)

// serveCmd runs the controller (`serve`), or prints its admin token (`token`).
func (g *globals) serveCmd(ctx context.Context, cmd string, args []string) error {
	if cmd == "token" {
		return g.tokenCmd(args)
	}
	fs := newFlags("serve", g.stderr)
	listen := fs.String("listen", api.DefaultListen, "address to listen on (host:port)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	opts := api.Options{Config: cfg, ConfigPath: g.configPath, Logger: g.log, Version: buildinfo.Version}
	// The Synology package's compose project says where the controller runs; elsewhere no
	// DSM check applies.
	if os.Getenv(dsm.EnvPlatform) == dsm.PlatformDSM {
		opts.Preflight = dsm.ShareCheck{VarDir: filepath.Dir(g.configPath)}.Check
	}
	srv, err := api.New(opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	fmt.Fprintf(g.stdout, "forgebox %s serving on http://%s/\n", buildinfo.Version, ln.Addr())
	fmt.Fprintf(g.stdout, "admin token in %s (print it with: forgebox token)\n", filepath.Join(cfg.Stack.DataDir, config.AdminTokenFile))
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !net.ParseIP(host).IsLoopback() {
		fmt.Fprintln(g.stderr, "forgebox serve: warning: listening beyond loopback, without TLS: put a TLS reverse proxy in front, or listen on 127.0.0.1")
	}
	return srv.Run(ctx, ln)
}

// tokenCmd prints the admin token (created when missing), or with --url a login link for a
// browser on this machine.
func (g *globals) tokenCmd(args []string) error {
	fs := newFlags("token", g.stderr)
	asURL := fs.Bool("url", false, "print a login link instead of the bare token")
	listen := fs.String("listen", api.DefaultListen, "the address forgebox serve listens on, for --url")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	tok, err := api.ReadAdminToken(cfg.Stack.DataDir, g.log)
	if err != nil {
		return err
	}
	if *asURL {
		fmt.Fprintf(g.stdout, "http://%s/login?token=%s\n", *listen, url.QueryEscape(tok))
		return nil
	}
	fmt.Fprintln(g.stdout, tok)
	return nil
}
