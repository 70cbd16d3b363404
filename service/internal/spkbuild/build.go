package spkbuild

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Options say what to build.
type Options struct {
	Root   string // the repository: spk/, conf/, scripts/, ui/dsm/
	Arch   Arch   // the DSM family to build for
	Build  int    // build number, appended to spk/info.toml's version
	Binary string // the static linux forgebox binary for Arch (see CompileBinary)
	// CGIBinary is index.cgi, the small front binary for Arch (see CompileCGI); empty: a hard
	// link to Binary, which answers as index.cgi too, but starts several times slower.
	CGIBinary string
	OutDir    string    // where the .spk goes
	ModTime   time.Time // every archive entry's time; keeps builds reproducible
	CACerts   string    // CA bundle for the controller image; DefaultCACerts when empty
}

// Result is a built package.
type Result struct {
	Path    string
	Size    int64
	Version string
	Arch    Arch
	INFO    []byte
}

// FileName is the package's file name: <package>-<version>-<arch>.spk. DSM needs no particular
// name; this one sorts by version and says the arch.
func FileName(pkg, version string, arch Arch) string {
	return fmt.Sprintf("%s-%s-%s.spk", pkg, version, arch.DSM)
}

// Build assembles one SPK.
func Build(o Options) (Result, error) {
	spec, err := LoadSpec(o.Root)
	if err != nil {
		return Result{}, err
	}
	version, err := spec.PackageVersion(o.Build)
	if err != nil {
		return Result{}, err
	}
	if o.ModTime.IsZero() {
		o.ModTime = time.Unix(0, 0).UTC()
	}
	if err := checkBinary(o.Binary, o.Arch); err != nil {
		return Result{}, err
	}
	if o.CGIBinary != "" {
		if err := checkBinary(o.CGIBinary, o.Arch); err != nil {
			return Result{}, err
		}
	}
	v := NewValues(spec, version, o.Arch)

	payload, err := payloadTree(o, v)
	if err != nil {
		return Result{}, err
	}
	var pkgTgz bytes.Buffer
	if err := gzipTo(&pkgTgz, func(w io.Writer) error { return payload.write(w, o.ModTime, openFile) }); err != nil {
		return Result{}, fmt.Errorf("package.tgz: %w", err)
	}
	sum := md5.Sum(pkgTgz.Bytes())
	extractKB := (payload.payloadSize() + 1023) / 1024
	info, err := RenderINFO(spec, version, o.Arch, hex.EncodeToString(sum[:]), extractKB)
	if err != nil {
		return Result{}, err
	}

	spk := newTree()
	spk.file("INFO", 0o644, info)
	spk.file("package.tgz", 0o644, pkgTgz.Bytes())
	if err := addScripts(spk, o.Root); err != nil {
		return Result{}, err
	}
	for name, render := range map[string]func(string, Values) ([]byte, error){
		"conf/privilege": RenderPrivilege,
		"conf/resource":  RenderResource,
	} {
		b, err := render(o.Root, v)
		if err != nil {
			return Result{}, err
		}
		spk.file(name, 0o644, b)
	}
	langs, err := WizardLangs(o.Root)
	if err != nil {
		return Result{}, err
	}
	for _, wiz := range []string{"install_uifile", "uninstall_uifile"} {
		for _, lang := range langs {
			b, err := RenderWizard(o.Root, wiz, lang, v)
			if err != nil {
				return Result{}, err
			}
			name := "WIZARD_UIFILES/" + wiz
			if lang != "enu" {
				name += "_" + lang
			}
			spk.file(name, 0o644, b)
		}
	}
	for name, size := range map[string]int{"PACKAGE_ICON.PNG": 64, "PACKAGE_ICON_256.PNG": 256} {
		b, err := IconPNG(size)
		if err != nil {
			return Result{}, err
		}
		spk.file(name, 0o644, b)
	}
	license, err := os.ReadFile(filepath.Join(o.Root, "spk/LICENSE"))
	if err != nil {
		return Result{}, fmt.Errorf("read LICENSE: %w", err)
	}
	if len(license) >= 1<<20 {
		return Result{}, fmt.Errorf("spk/LICENSE is %d bytes; DSM wants less than 1 MB", len(license))
	}
	spk.file("LICENSE", 0o644, license)

	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return Result{}, err
	}
	out := filepath.Join(o.OutDir, FileName(spec.Package, version, o.Arch))
	tmp, err := os.CreateTemp(o.OutDir, ".spk-*")
	if err != nil {
		return Result{}, err
	}
	defer os.Remove(tmp.Name())
	if err := spk.write(tmp, o.ModTime, openFile, "INFO", "package.tgz"); err != nil {
		tmp.Close()
		return Result{}, fmt.Errorf("write %s: %w", out, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return Result{}, err
	}
	if err := tmp.Close(); err != nil {
		return Result{}, err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return Result{}, err
	}
	st, err := os.Stat(out)
	if err != nil {
		return Result{}, err
	}
	return Result{Path: out, Size: st.Size(), Version: version, Arch: o.Arch, INFO: info}, nil
}

func openFile(p string) (io.ReadCloser, error) { return os.Open(p) }

// payloadTree is what package.tgz holds, i.e. what DSM extracts to target:
//
//	bin/forgebox                the binary: scripts and index.cgi run it
//	ui/                         dsmuidir: config, forgebox.js, texts, icons, index.cgi
//	ui/index.cgi                the small front binary (forgebox-cgi), else a hard link to
//	                            bin/forgebox, which is CGI by that name
//	compose/compose.yaml        the controller's Container Manager project
//	controller-image.tar.gz     its image, preloaded by the docker-project worker
//	port_conf/<package>.sc      GitLab's ports for DSM's firewall (port-config worker)
func payloadTree(o Options, v Values) (*tree, error) {
	t := newTree()
	st, err := os.Stat(o.Binary)
	if err != nil {
		return nil, err
	}
	t.fileFrom(BinaryPath, 0o755, o.Binary, st.Size())

	uiSrc := filepath.Join(o.Root, "ui/dsm")
	err = filepath.WalkDir(uiSrc, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(uiSrc, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		t.file(path.Join(v.UI.Dir, filepath.ToSlash(rel)), 0o644, b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ui files: %w", err)
	}
	for _, size := range IconSizes {
		b, err := IconPNG(size)
		if err != nil {
			return nil, err
		}
		t.file(fmt.Sprintf("%s/images/icon_%d.png", v.UI.Dir, size), 0o644, b)
	}
	if o.CGIBinary != "" {
		st, err := os.Stat(o.CGIBinary)
		if err != nil {
			return nil, err
		}
		t.fileFrom(path.Join(v.UI.Dir, CGIPath), 0o755, o.CGIBinary, st.Size())
	} else {
		t.hardlink(path.Join(v.UI.Dir, CGIPath), BinaryPath)
	}

	compose, err := RenderCompose(o.Root, v)
	if err != nil {
		return nil, err
	}
	t.file(path.Join(ComposeDir, "compose.yaml"), 0o644, compose)
	sc, err := RenderPortConfig(o.Root, v)
	if err != nil {
		return nil, err
	}
	t.file("port_conf/"+v.Package+".sc", 0o644, sc)

	var img bytes.Buffer
	if err := WriteControllerImage(&img, ImageOptions{
		Ref: v.ControllerImage, Arch: o.Arch, Binary: o.Binary, CACerts: o.CACerts,
		Port: v.ControllerPort, Created: o.ModTime, Version: v.PackageVersion,
	}); err != nil {
		return nil, err
	}
	t.file(ImageFile, 0o644, img.Bytes())
	return t, nil
}

// addScripts adds scripts/*: executable, as DSM runs them directly.
func addScripts(t *tree, root string) error {
	dir := filepath.Join(root, "scripts")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("scripts: %w", err)
	}
	required := map[string]bool{"preinst": false, "postinst": false, "preuninst": false, "postuninst": false,
		"preupgrade": false, "postupgrade": false, "start-stop-status": false}
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		if !bytes.HasPrefix(b, []byte("#!/bin/sh\n")) {
			return fmt.Errorf("scripts/%s: DSM runs it directly; start it with #!/bin/sh", e.Name())
		}
		t.file("scripts/"+e.Name(), 0o755, b)
		if _, ok := required[e.Name()]; ok {
			required[e.Name()] = true
		}
	}
	for name, found := range required {
		if !found {
			return fmt.Errorf("scripts/%s is missing; DSM requires it", name)
		}
	}
	return nil
}

// RenderINFO writes INFO: key="value" lines in a fixed order. Required on DSM 7: package,
// version, os_min_ver, description, arch, maintainer (guide: INFO > Necessary Fields); the
// rest is optional (Optional Fields). checksum is the MD5 of package.tgz, which DSM 7 checks.
func RenderINFO(s Spec, version string, arch Arch, checksum string, extractKB int64) ([]byte, error) {
	type kv struct{ k, v string }
	fields := []kv{
		{"package", s.Package},
		{"version", version},
		{"os_min_ver", s.OSMinVer},
		{"arch", arch.INFOArch()},
		{"displayname", s.DisplayName},
		{"description", s.Description["enu"]},
	}
	for _, lang := range []string{"chs", "cht", "ger", "fre", "jpn", "krn"} {
		if d := s.Description[lang]; d != "" {
			fields = append(fields, kv{"description_" + lang, d})
		}
	}
	fields = append(fields,
		kv{"maintainer", s.Maintainer},
		kv{"maintainer_url", s.MaintainerURL},
		kv{"support_url", s.SupportURL},
		kv{"install_dep_packages", s.InstallDepPackages},
		kv{"dsmuidir", s.UI.Dir},
		kv{"dsmappname", s.UI.App},
	)
	if s.Beta {
		fields = append(fields, kv{"beta", "yes"})
	}
	fields = append(fields,
		kv{"checksum", checksum},
		kv{"extractsize", fmt.Sprint(extractKB)},
	)
	var b bytes.Buffer
	for _, f := range fields {
		if f.v == "" {
			continue
		}
		if strings.ContainsAny(f.v, "\"\\`$") || strings.ContainsFunc(f.v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, fmt.Errorf("INFO %s: %q holds a character INFO cannot carry (\" \\ ` $ or a control character)", f.k, f.v)
		}
		fmt.Fprintf(&b, "%s=\"%s\"\n", f.k, f.v)
	}
	return b.Bytes(), nil
}

// CompileBinary builds the static linux forgebox binary for arch into out, with the flags
// build.sh uses: CGO off, -trimpath, and ldflags (the version stamp). Tests may add build tags
// (forgebox_testhooks); a release is built with none.
func CompileBinary(ctx context.Context, root string, arch Arch, out, ldflags string, tags ...string) error {
	return compile(ctx, root, arch, out, ldflags, "./service/cmd/forgebox", tags)
}

// CompileCGI builds index.cgi, the small front binary, the same way.
func CompileCGI(ctx context.Context, root string, arch Arch, out, ldflags string, tags ...string) error {
	return compile(ctx, root, arch, out, ldflags, "./service/cmd/forgebox-cgi", tags)
}

func compile(ctx context.Context, root string, arch Arch, out, ldflags, pkg string, tags []string) error {
	args := []string{"build", "-trimpath", "-ldflags", ldflags}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "-o", out, pkg)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build for %s: %w\n%s", arch.DSM, err, b)
	}
	return nil
}
