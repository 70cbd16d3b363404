// Command spkbuild assembles forgebox's Synology packages from prebuilt binaries; build.sh runs
// it. The work is in service/internal/spkbuild.
//
//	spkbuild -build 42 -out dist -binary x86_64=dist/forgebox-linux-amd64 -binary armv8=dist/forgebox-linux-arm64
//	spkbuild -icons DIR      write the icons as PNG files, to look at them
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/forgebox/forgebox/service/internal/spkbuild"
)

type binaries map[string]string

func (b binaries) String() string { return fmt.Sprint(map[string]string(b)) }

func (b binaries) Set(v string) error {
	arch, path, ok := strings.Cut(v, "=")
	if !ok || arch == "" || path == "" {
		return fmt.Errorf("say ARCH=PATH, e.g. x86_64=dist/forgebox-linux-amd64")
	}
	if _, err := spkbuild.ArchByDSM(arch); err != nil {
		return err
	}
	b[arch] = path
	return nil
}

func main() {
	bins := binaries{}
	root := flag.String("root", ".", "the repository root")
	out := flag.String("out", "dist", "output directory")
	build := flag.Int("build", 0, "build number, appended to spk/info.toml's version; only ever grows")
	epoch := flag.String("mtime", os.Getenv("SOURCE_DATE_EPOCH"), "archive entry time, seconds since 1970 (default $SOURCE_DATE_EPOCH, else 0)")
	icons := flag.String("icons", "", "only write the icons into this directory")
	flag.Var(bins, "binary", "ARCH=PATH of a static linux forgebox binary (repeat per DSM arch)")
	cgis := binaries{}
	flag.Var(cgis, "cgi", "ARCH=PATH of the static linux forgebox-cgi binary, index.cgi (repeat per DSM arch; without it index.cgi is a hard link to the forgebox binary)")
	flag.Parse()

	if *icons != "" {
		if err := writeIcons(*icons); err != nil {
			fail(err)
		}
		return
	}
	if len(bins) == 0 {
		fail(fmt.Errorf("no -binary given"))
	}
	mtime := time.Unix(0, 0).UTC()
	if *epoch != "" {
		sec, err := strconv.ParseInt(*epoch, 10, 64)
		if err != nil {
			fail(fmt.Errorf("-mtime %q: %w", *epoch, err))
		}
		mtime = time.Unix(sec, 0).UTC()
	}
	for _, arch := range spkbuild.Arches {
		bin, ok := bins[arch.DSM]
		if !ok {
			continue
		}
		res, err := spkbuild.Build(spkbuild.Options{
			Root: *root, Arch: arch, Build: *build, Binary: bin, CGIBinary: cgis[arch.DSM], OutDir: *out, ModTime: mtime,
		})
		if err != nil {
			fail(err)
		}
		fmt.Printf("%-44s %6.1f MiB  (%d bytes, DSM arch %s, version %s)\n",
			res.Path, float64(res.Size)/(1<<20), res.Size, arch.DSM, res.Version)
	}
}

func writeIcons(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, size := range append([]int{512}, spkbuild.IconSizes...) {
		b, err := spkbuild.IconPNG(size)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("icon_%d.png", size)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "spkbuild:", err)
	os.Exit(1)
}
