package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/forgebox/forgebox/service/internal/api"
	"github.com/forgebox/forgebox/service/internal/buildinfo"
	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/dsm"
	"github.com/forgebox/forgebox/service/internal/engine"
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
		opts.Preflight = dsm.ShareCheck{VarDir: filepath.Dir(g.configPath), Log: g.log}.Preflight
		go g.removeOldControllerImages(ctx, os.Getenv(dsm.EnvControllerImage))
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

// removeOldControllerImages runs once when the controller starts on DSM: the images earlier
// package versions preloaded go, the controller's own stays. The engine may not answer at
// once; the controller tries for a few minutes, then leaves it to its next start.
func (g *globals) removeOldControllerImages(ctx context.Context, current string) {
	if current == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for {
		eng, err := engine.Connect(ctx)
		if err == nil {
			removed, err := dsm.RemoveOldControllerImages(ctx, imageStore{eng}, current, g.log)
			eng.Close()
			if err != nil {
				g.log.Warn("cannot list older controller images", "err", err)
			} else if len(removed) > 0 {
				g.log.Info("older controller images removed", "images", removed)
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Second):
		}
	}
}

// imageStore adapts engine.Client to dsm.ImageStore.
type imageStore struct{ eng *engine.Client }

func (s imageStore) ImageTags(ctx context.Context, repo, key, value string) ([]dsm.ImageTag, error) {
	tags, err := s.eng.ImageTags(ctx, repo, key, value)
	out := make([]dsm.ImageTag, len(tags))
	for i, t := range tags {
		out[i] = dsm.ImageTag{Ref: t.Ref, ID: t.ID}
	}
	return out, err
}

func (s imageStore) RemoveImageTag(ctx context.Context, ref string) error {
	return s.eng.RemoveImageTag(ctx, ref)
}
