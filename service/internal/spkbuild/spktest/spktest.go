// Package spktest checks built SPKs the way DSM reads them, for the tests of spkbuild and of
// the dsm package's installation test.
package spktest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/spkbuild"
)

// CheckSPK checks a built SPK's contents for arch; the dsm install test uses it too.
func CheckSPK(t testing.TB, path string, arch spkbuild.Arch) map[string]string {
	t.Helper()
	files := ReadTar(t, mustOpen(t, path))
	var names []string
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	want := []string{"INFO", "LICENSE", "PACKAGE_ICON.PNG", "PACKAGE_ICON_256.PNG",
		"WIZARD_UIFILES/install_uifile", "WIZARD_UIFILES/install_uifile_chs",
		"WIZARD_UIFILES/uninstall_uifile", "WIZARD_UIFILES/uninstall_uifile_chs",
		"conf/privilege", "conf/resource", "package.tgz",
		"scripts/postinst", "scripts/postuninst", "scripts/postupgrade", "scripts/preinst",
		"scripts/preuninst", "scripts/preupgrade", "scripts/start-stop-status"}
	if !slices.Equal(names, want) {
		t.Errorf("SPK files:\n got %v\nwant %v", names, want)
	}
	info := ParseINFO(files["INFO"])
	sum := md5.Sum([]byte(files["package.tgz"]))
	if info["checksum"] != hex.EncodeToString(sum[:]) {
		t.Errorf("INFO checksum %s, package.tgz md5 %x", info["checksum"], sum)
	}
	if info["arch"] != arch.INFOArch() {
		t.Errorf("INFO arch %q, want %q", info["arch"], arch.INFOArch())
	}
	for _, k := range []string{"package", "version", "os_min_ver", "description", "maintainer", "arch"} {
		if info[k] == "" {
			t.Errorf("INFO lacks the required %s", k)
		}
	}
	for name, size := range map[string]int{"PACKAGE_ICON.PNG": 64, "PACKAGE_ICON_256.PNG": 256} {
		img, err := png.Decode(strings.NewReader(files[name]))
		if err != nil || img.Bounds().Dx() != size || img.Bounds().Dy() != size {
			t.Errorf("%s: %v, want %dx%d PNG", name, err, size, size)
		}
	}

	zr, err := gzip.NewReader(strings.NewReader(files["package.tgz"]))
	if err != nil {
		t.Fatal(err)
	}
	payload := ReadTar(t, zr)
	var total int64
	elves := 0
	for name, data := range payload {
		total += int64(len(data))
		if m, err := spkbuild.ELFMachine(strings.NewReader(data)); err == nil {
			elves++
			if m != arch.ELF {
				t.Errorf("%s is %s, want %s", name, m, arch.ELF)
			}
		}
	}
	if elves < 2 { // bin/forgebox and ui/index.cgi
		t.Errorf("%d ELF files in the payload, want bin/forgebox and ui/index.cgi", elves)
	}
	// index.cgi is the small front (forgebox-cgi), not the forgebox binary: DSM starts it
	// for every request of the app window.
	if cgi, bin := payload["ui/index.cgi"], payload["bin/forgebox"]; cgi == bin || len(cgi)*2 > len(bin) {
		t.Errorf("ui/index.cgi (%d bytes) is not the small front binary (bin/forgebox: %d bytes)", len(cgi), len(bin))
	}
	if kb := fmt.Sprint((total + 1023) / 1024); info["extractsize"] != kb {
		t.Errorf("INFO extractsize %s, payload %s KB", info["extractsize"], kb)
	}
	for _, want := range []string{"ui/config", "ui/forgebox.js", "ui/texts/enu/strings", "ui/texts/chs/strings",
		"compose/compose.yaml", "port_conf/forgebox.sc", spkbuild.ImageFile} {
		if _, ok := payload[want]; !ok {
			t.Errorf("payload lacks %s", want)
		}
	}
	for _, size := range spkbuild.IconSizes {
		name := fmt.Sprintf("ui/images/icon_%d.png", size)
		img, err := png.Decode(strings.NewReader(payload[name]))
		if err != nil || img.Bounds().Dx() != size {
			t.Errorf("%s: %v", name, err)
		}
	}
	checkImage(t, payload[spkbuild.ImageFile], arch, info["version"])
	return info
}

// checkImage reads the controller image tarball as docker load would: manifest.json, the
// config (arch, OS, entrypoint), and the layer's /forgebox, which must be an ELF of the arch.
func checkImage(t testing.TB, tgz string, arch spkbuild.Arch, version string) {
	t.Helper()
	zr, err := gzip.NewReader(strings.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	files := ReadTar(t, zr)
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal([]byte(files["manifest.json"]), &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("image manifest.json: %v %s", err, files["manifest.json"])
	}
	m := manifest[0]
	if len(m.RepoTags) != 1 || !strings.HasSuffix(m.RepoTags[0], "forgebox/controller:"+version) {
		t.Errorf("image tags %v, want forgebox/controller:%s", m.RepoTags, version)
	}
	var cfg struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
		Config       struct {
			Entrypoint []string `json:"Entrypoint"`
			Cmd        []string `json:"Cmd"`
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(files[m.Config]), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Architecture != arch.OCI || cfg.OS != "linux" {
		t.Errorf("image platform %s/%s, want linux/%s", cfg.OS, cfg.Architecture, arch.OCI)
	}
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/forgebox"}) || !slices.Equal(cfg.Config.Cmd, []string{"serve", "--listen", "0.0.0.0:8470"}) {
		t.Errorf("image runs %v %v", cfg.Config.Entrypoint, cfg.Config.Cmd)
	}
	if len(m.Layers) != 1 {
		t.Fatalf("image layers %v, want one", m.Layers)
	}
	lz, err := gzip.NewReader(strings.NewReader(files[m.Layers[0]]))
	if err != nil {
		t.Fatal(err)
	}
	layer := ReadTar(t, lz)
	if mach, err := spkbuild.ELFMachine(strings.NewReader(layer["forgebox"])); err != nil || mach != arch.ELF {
		t.Errorf("the image's /forgebox: %s %v, want %s", mach, err, arch.ELF)
	}
	if !strings.Contains(layer["etc/ssl/certs/ca-certificates.crt"], "BEGIN CERTIFICATE") {
		t.Error("the image has no CA certificates")
	}
}

func mustOpen(t testing.TB, path string) io.Reader {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

// ReadTar reads the regular files of a tar (hard links get their target's content).
func ReadTar(t testing.TB, r io.Reader) map[string]string {
	t.Helper()
	tr := tar.NewReader(r)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s is owned by %d:%d, want root", h.Name, h.Uid, h.Gid)
		}
		switch h.Typeflag {
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = string(b)
		case tar.TypeLink:
			target, ok := files[h.Linkname]
			if !ok {
				t.Errorf("hard link %s before its target %s", h.Name, h.Linkname)
			}
			files[h.Name] = target
		}
	}
}

// ParseINFO reads INFO's key="value" lines.
func ParseINFO(s string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if ok {
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out
}

// RepoRoot finds the repository from a test's working directory (its package directory).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, spkbuild.SpecFile)); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no %s above %s", spkbuild.SpecFile, dir)
		}
	}
}
