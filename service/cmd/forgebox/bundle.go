package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/docker/go-units"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/forgebox/forgebox/service/internal/download"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/msg"
	"github.com/forgebox/forgebox/service/internal/stack"
)

const bundleUsage = `usage:
  forgebox bundle save [--arch amd64|arm64] [--cache DIR] FILE
      download every image the config needs (stack, runner, helper, every profile's image)
      for that architecture and write them to FILE, on any machine that reaches the registries
  forgebox bundle load FILE
      check every image in FILE against its digests and load them into the engine; after
      that, "up" needs no network`

func (g *globals) bundleCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(bundleUsage)
	}
	switch args[0] {
	case "save":
		return g.bundleSave(ctx, args[1:])
	case "load":
		return g.bundleLoad(ctx, args[1:])
	case "-h", "--help", "help":
		fmt.Fprintln(g.stdout, bundleUsage)
		return nil
	}
	return fmt.Errorf("unknown bundle action %q\n%s", args[0], bundleUsage)
}

func (g *globals) bundleSave(ctx context.Context, args []string) error {
	fs := newFlags("bundle save", g.stderr)
	arch := fs.String("arch", "amd64", "the architecture of the machine that will load it: amd64 or arm64")
	cacheDir := fs.String("cache", "", "where downloads are kept and resumed (default: the user's cache directory)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New(bundleUsage)
	}
	if *arch != "amd64" && *arch != "arm64" {
		return fmt.Errorf("--arch %q: say amd64 (x86_64 NAS) or arm64 (armv8 NAS)", *arch)
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	if *cacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("no cache directory: pass --cache DIR (%w)", err)
		}
		*cacheDir = filepath.Join(base, "forgebox", "images")
	}
	cache, err := download.OpenCache(*cacheDir)
	if err != nil {
		return err
	}
	f := &download.Fetcher{Cache: cache, Platform: v1.Platform{OS: "linux", Architecture: *arch}, Progress: g.downloadPrinter()}
	for _, m := range cfg.Stack.RegistryMirrors {
		mm, err := download.ParseMirror(m)
		if err != nil {
			return err
		}
		f.Mirrors = append(f.Mirrors, mm)
	}
	bm, err := f.SaveBundle(ctx, cfg.Images(), fs.Arg(0))
	if err != nil {
		return err
	}
	var total int64
	for _, b := range bm.Blobs {
		total += b.Size
	}
	fmt.Fprintf(g.stdout, "wrote %s: %d images for %s, %s\n", fs.Arg(0), len(bm.Images), bm.Platform, units.BytesSize(float64(total)))
	for _, im := range bm.Images {
		fmt.Fprintf(g.stdout, "  %s  %s\n", im.Ref, im.Manifest)
	}
	return nil
}

func (g *globals) bundleLoad(ctx context.Context, args []string) error {
	fs := newFlags("bundle load", g.stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New(bundleUsage)
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	eng, err := engine.Connect(ctx)
	if err != nil {
		return err
	}
	defer eng.Close()
	cache, err := download.OpenCache(stack.ImageCacheDir(cfg))
	if err != nil {
		return err
	}
	bm, err := download.LoadBundle(ctx, cache, eng, fs.Arg(0), func(m msg.Msg) { fmt.Fprintln(g.stdout, m) })
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "loaded %d images for %s from %s\n", len(bm.Images), bm.Platform, fs.Arg(0))
	return nil
}

// downloadPrinter prints a download's progress a line at a time, at most once a second per image.
func (g *globals) downloadPrinter() func(download.Progress) {
	last := map[string]time.Time{}
	return func(p download.Progress) {
		if p.Status == "downloading" && time.Since(last[p.Image]) < time.Second {
			return
		}
		last[p.Image] = time.Now()
		line := fmt.Sprintf("%s: %s %s of %s", p.Image, p.Status, units.BytesSize(float64(p.Current)), units.BytesSize(float64(p.Total)))
		if p.Rate > 0 {
			line += fmt.Sprintf(", %s/s", units.BytesSize(p.Rate))
		}
		if p.Left > 0 {
			line += fmt.Sprintf(", %s left", p.Left.Round(time.Second))
		}
		fmt.Fprintln(g.stdout, line)
	}
}
