package spkbuild_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/spkbuild"
	"github.com/forgebox/forgebox/service/internal/spkbuild/spktest"
)

// buildSPK compiles forgebox for arch and packs it.
func buildSPK(t *testing.T, arch spkbuild.Arch, build int) (spkbuild.Result, string) {
	t.Helper()
	root := spktest.RepoRoot(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "forgebox-"+arch.GOARCH)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute) // two compiles on a busy machine
	defer cancel()
	if err := spkbuild.CompileBinary(ctx, root, arch, bin, "-s -w -X github.com/forgebox/forgebox/service/internal/buildinfo.Version=spkbuild-test"); err != nil {
		t.Fatal(err)
	}
	cgi := filepath.Join(dir, "forgebox-cgi-"+arch.GOARCH)
	if err := spkbuild.CompileCGI(ctx, root, arch, cgi, "-s -w -X github.com/forgebox/forgebox/service/internal/buildinfo.Version=spkbuild-test"); err != nil {
		t.Fatal(err)
	}
	res, err := spkbuild.Build(spkbuild.Options{Root: root, Arch: arch, Build: build, Binary: bin, CGIBinary: cgi, OutDir: dir, ModTime: time.Unix(1700000000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	return res, bin
}

// TestBuildArmv8 builds the 64-bit ARM package and checks what DSM would get: the SPK's
// entries, INFO and its checksum, that every binary in it (the payload's, the CGI's and the
// controller image's) is an aarch64 ELF, and that the image's config says linux/arm64 and runs
// the controller. x86_64 gets the same checks, and a real installation, in the dsm package.
func TestBuildArmv8(t *testing.T) {
	arch, _ := spkbuild.ArchByDSM("armv8")
	res, bin := buildSPK(t, arch, 42)
	if filepath.Base(res.Path) != "forgebox-0.1.0-0042-armv8.spk" {
		t.Errorf("file name %s", filepath.Base(res.Path))
	}
	spktest.CheckSPK(t, res.Path, arch)

	// The same input gives the same bytes.
	cgi := filepath.Join(filepath.Dir(bin), "forgebox-cgi-"+arch.GOARCH)
	again, err := spkbuild.Build(spkbuild.Options{Root: spktest.RepoRoot(t), Arch: arch, Build: 42, Binary: bin, CGIBinary: cgi, OutDir: t.TempDir(), ModTime: time.Unix(1700000000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(res.Path)
	b, _ := os.ReadFile(again.Path)
	if !bytes.Equal(a, b) {
		t.Error("two builds of the same input differ")
	}
	// A binary of the other arch is refused.
	if runtime.GOARCH == "amd64" {
		if _, err := spkbuild.Build(spkbuild.Options{Root: spktest.RepoRoot(t), Arch: spkbuild.Arches[0], Build: 42, Binary: bin, OutDir: t.TempDir()}); err == nil ||
			!strings.Contains(err.Error(), "EM_AARCH64") {
			t.Errorf("an arm64 binary was packed for x86_64: %v", err)
		}
	}
}
