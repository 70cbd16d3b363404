//go:build linux

package dsm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	"github.com/goccy/go-yaml"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/spkbuild"
	"github.com/forgebox/forgebox/service/internal/spkbuild/spktest"
	"github.com/forgebox/forgebox/service/internal/testenv"
)

// The installation test treats the built SPK as DSM does, on a scratch root laid out like a
// NAS: /var/packages/forgebox with its target, var, etc, home, tmp and shares links into
// /volume1. It runs the package's own scripts as a non-root package user with the SYNOPKG_*
// environment and the wizards' answers, plays Container Manager's docker-project worker on the
// real engine (load the preload image, create and start the compose project's container), and
// calls index.cgi as a real CGI process with stand-ins of DSM's authentication tools. What it
// cannot be is DSM itself: Package Center's checks, the real workers, DSM's nginx.

// testPkgUser is the package user of the test: DSM would create "forgebox"; a name of its own
// keeps the test from touching a real one.
const testPkgUser = "forgebox-test-pkg"

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("FORGEBOX_REQUIRE_ENGINE") == "1" {
		t.Fatal("the installation test runs as root: it creates the package user and runs the scripts as that user")
	}
	t.Skip("the installation test runs as root (creates a package user); run ./build.sh test")
}

// packageUser returns the test's package user, creating it (a system user with its own group
// and no login) when this machine does not have it yet.
func packageUser(t *testing.T) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup(testPkgUser)
	if err != nil {
		out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", testPkgUser).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "already exists") {
			t.Fatalf("useradd %s: %v: %s", testPkgUser, err, out)
		}
		if u, err = user.Lookup(testPkgUser); err != nil {
			t.Fatal(err)
		}
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// nas is the scratch NAS: its directories, the package user, the engine, and the stand-ins.
type nas struct {
	t        *testing.T
	ctx      context.Context
	root     string // the scratch "/"
	pkgRoot  string // <root>/var/packages/forgebox
	volume   string // <root>/volume1
	serviceD string // <root>/usr/local/etc/service.d (port-config's destination)
	uid, gid int
	docker   *client.Client

	id        string // unique to this run: names the container and the stack
	port      int    // the controller's published loopback port
	container string // the controller container's name (forgebox-controller on a NAS)
	standins  map[string]string
	standLog  string
	message   string // SYNOPKG_TEMP_LOGFILE
	running   bool
	version   string // installed version
}

func newNAS(t *testing.T, docker *client.Client) *nas {
	t.Helper()
	uid, gid := packageUser(t)
	root, err := os.MkdirTemp("", "forgebox-nas-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(root, 0o755) // the package user walks through it, as through / on a NAS
	n := &nas{t: t, ctx: context.Background(), root: root, uid: uid, gid: gid, docker: docker,
		pkgRoot: filepath.Join(root, "var/packages", PackageName), volume: filepath.Join(root, "volume1"),
		serviceD: filepath.Join(root, "usr/local/etc/service.d"), id: "fbt-" + randomHex(4), port: freePort(t)}
	n.container = n.id + "-controller"
	t.Cleanup(func() {
		n.removeContainer()
		os.RemoveAll(root)
	})
	tools := filepath.Join(root, "usr/syno/standins")
	n.mkdir(tools, 0o755, false)
	n.standins = writeStandins(t, tools)
	n.standLog = filepath.Join(root, "standin.log")
	n.message = filepath.Join(root, "message")
	for _, f := range []string{n.standLog, n.message} {
		os.WriteFile(f, nil, 0o666)
		os.Chmod(f, 0o666)
	}
	n.mkdir(n.serviceD, 0o755, false)
	return n
}

// mkdir makes a directory, owned by the package user when owned is set (DSM's FHS dirs are).
func (n *nas) mkdir(p string, mode os.FileMode, owned bool) {
	n.t.Helper()
	if err := os.MkdirAll(p, mode); err != nil {
		n.t.Fatal(err)
	}
	os.Chmod(p, mode)
	if owned {
		os.Chown(p, n.uid, n.gid)
	}
}

func (n *nas) chownR(p string) {
	n.t.Helper()
	if out, err := exec.Command("chown", "-hR", fmt.Sprintf("%d:%d", n.uid, n.gid), p).CombinedOutput(); err != nil {
		n.t.Fatalf("chown: %v: %s", err, out)
	}
}

// env is what DSM exports to a script (guide: Script Environment Variables), plus the test's
// pointers to the scratch root, the stand-ins and the remapped controller port.
func (n *nas) env(status string, extra map[string]string) []string {
	vars := map[string]string{
		"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": filepath.Join(n.pkgRoot, "home"), "LANG": "C.UTF-8",
		"SYNOPKG_PKGNAME": PackageName, "SYNOPKG_PKGVER": n.version,
		"SYNOPKG_PKGDEST": filepath.Join(n.pkgRoot, "target"), "SYNOPKG_PKGDEST_VOL": n.volume,
		"SYNOPKG_PKGVAR": filepath.Join(n.pkgRoot, "var"), "SYNOPKG_PKGTMP": filepath.Join(n.pkgRoot, "tmp"),
		"SYNOPKG_PKGHOME": filepath.Join(n.pkgRoot, "home"), "SYNOPKG_PKG_STATUS": status,
		"SYNOPKG_TEMP_LOGFILE": n.message, "SYNOPKG_DSM_LANGUAGE": "enu", "SYNOPKG_DSM_ARCH": "geminilake",
		"SYNOPKG_DSM_VERSION_MAJOR": "7", "SYNOPKG_DSM_VERSION_MINOR": "2", "SYNOPKG_DSM_VERSION_BUILD": "72806",
		"SYNOPKG_USERNAME": "admin",
		EnvPkgRoot:         n.pkgRoot, EnvControllerURL: fmt.Sprintf("http://127.0.0.1:%d", n.port),
		EnvServiceTool: n.standins["servicetool"], EnvPkgHelper: n.standins["synopkghelper"], "STANDIN_LOG": n.standLog,
		EnvStopWait: "60s",
	}
	for k, v := range extra {
		vars[k] = v
	}
	var out []string
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	return out
}

// script runs one of the package's scripts as DSM does: as the package user, with its
// environment; it returns the exit code and the message for the user.
func (n *nas) script(name, arg, status string, extra map[string]string) (int, string) {
	n.t.Helper()
	os.Truncate(n.message, 0)
	path := filepath.Join(n.pkgRoot, "scripts", name)
	if dir, ok := extra["__scripts"]; ok { // the new package's scripts, during an upgrade
		path = filepath.Join(dir, name)
		delete(extra, "__scripts")
	}
	args := []string{}
	if arg != "" {
		args = append(args, arg)
	}
	ctx, cancel := context.WithTimeout(n.ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = n.env(status, extra)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(n.uid), Gid: uint32(n.gid), Groups: []uint32{}}}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	began := time.Now()
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		n.t.Fatalf("%s %s: %v", name, arg, err)
	}
	msg, _ := os.ReadFile(n.message)
	n.t.Logf("%s %s (%s): exit %d in %v\n%s%s", name, arg, status, code, time.Since(began).Round(time.Millisecond),
		indent("log", stderr.String()), indent("message", string(msg)))
	return code, string(msg)
}

func indent(label, s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	return "  " + label + ": " + strings.ReplaceAll(s, "\n", "\n    ") + "\n"
}

func (n *nas) mustScript(name, arg, status string, extra map[string]string) string {
	n.t.Helper()
	code, msg := n.script(name, arg, status, extra)
	if code != 0 {
		n.t.Fatalf("%s %s exited %d", name, arg, code)
	}
	return msg
}

// unpack extracts an SPK as DSM does, with tar: the SPK into a staging dir, and package.tgz
// into the payload dir (SYNOPKG_PKGINST_TEMP_DIR), owned by the package user (run-as package:
// DSM chowns the files to it).
func (n *nas) unpack(spk string) (stage, payload string) {
	n.t.Helper()
	stage = filepath.Join(n.volume, "@tmp", "pkginstall-"+randomHex(3))
	payload = filepath.Join(stage, "payload")
	n.mkdir(payload, 0o755, false)
	for _, c := range [][]string{{"tar", "-xf", spk, "-C", stage}, {"tar", "-xzf", filepath.Join(stage, "package.tgz"), "-C", payload}} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			n.t.Fatalf("%v: %v: %s", c, err, out)
		}
	}
	n.chownR(stage)
	return stage, payload
}

// fhs makes /var/packages/forgebox and its links as DSM does on installation; var, etc and
// home may exist from an earlier installation and are kept.
func (n *nas) fhs() {
	n.t.Helper()
	n.mkdir(n.pkgRoot, 0o755, false)
	for link, dir := range map[string]string{"target": "@appstore", "var": "@appdata", "etc": "@appconf", "tmp": "@apptemp", "home": "@apphome"} {
		real := filepath.Join(n.volume, dir, PackageName)
		mode := os.FileMode(0o755)
		if link == "home" {
			mode = 0o700
		}
		n.mkdir(real, mode, true)
		os.Remove(filepath.Join(n.pkgRoot, link))
		if err := os.Symlink(real, filepath.Join(n.pkgRoot, link)); err != nil {
			n.t.Fatal(err)
		}
	}
}

// placePackage moves the payload into target and the SPK's control files into
// /var/packages/forgebox, replacing what an older version left (target is replaced on upgrade).
func (n *nas) placePackage(stage, payload string) {
	n.t.Helper()
	target := filepath.Join(n.volume, "@appstore", PackageName)
	os.RemoveAll(target)
	if err := os.Rename(payload, target); err != nil {
		n.t.Fatal(err)
	}
	for _, name := range []string{"scripts", "conf", "WIZARD_UIFILES", "INFO"} {
		os.RemoveAll(filepath.Join(n.pkgRoot, name))
		if err := os.Rename(filepath.Join(stage, name), filepath.Join(n.pkgRoot, name)); err != nil {
			n.t.Fatal(err)
		}
	}
	os.RemoveAll(stage)
	info, _ := os.ReadFile(filepath.Join(n.pkgRoot, "INFO"))
	n.version = spktest.ParseINFO(string(info))["version"]
}

// whenPostinst plays the workers that run before postinst: port-config copies the .sc file
// (unless it is there), docker-project loads the preload image and creates the project.
func (n *nas) whenPostinst() {
	n.t.Helper()
	sc := filepath.Join(n.serviceD, PackageName+".sc")
	if _, err := os.Stat(sc); err != nil {
		b, err := os.ReadFile(filepath.Join(n.pkgRoot, "target/port_conf", PackageName+".sc"))
		if err != nil {
			n.t.Fatalf("port-config: %v", err)
		}
		os.WriteFile(sc, b, 0o644)
	}
	n.dockerProjectAcquire()
}

// portConfigUpdate plays synopkghelper's "update forgebox port-config", which the stand-in
// only records: copy the .sc again.
func (n *nas) portConfigUpdate() {
	b, err := os.ReadFile(filepath.Join(n.pkgRoot, "target/port_conf", PackageName+".sc"))
	if err == nil {
		os.WriteFile(filepath.Join(n.serviceD, PackageName+".sc"), b, 0o644)
	}
}

// The compose keys the emulation understands; strict decoding refuses any other, so a new key
// in spk/compose/compose.yaml cannot pass untested.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

// composeVolume is a long-syntax bind (Compose file spec: services.volumes).
type composeVolume struct {
	Type     string `yaml:"type"`
	Source   string `yaml:"source"`
	Target   string `yaml:"target"`
	ReadOnly bool   `yaml:"read_only"`
	Bind     struct {
		CreateHostPath bool `yaml:"create_host_path"`
	} `yaml:"bind"`
}

type composeService struct {
	Image         string            `yaml:"image"`
	PullPolicy    string            `yaml:"pull_policy"`
	ContainerName string            `yaml:"container_name"`
	Command       []string          `yaml:"command"`
	Environment   map[string]string `yaml:"environment"`
	Ports         []string          `yaml:"ports"`
	Volumes       []composeVolume   `yaml:"volumes"`
	Restart       string            `yaml:"restart"`
	Healthcheck   struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
}

// remap moves a NAS path into the scratch root.
func (n *nas) remap(p string) string {
	if rest, ok := strings.CutPrefix(p, "/var/packages/"+PackageName); ok {
		return n.pkgRoot + rest
	}
	return p
}

// dockerProjectAcquire is the docker-project worker's WHEN_POSTINST: docker load the
// preload-image named in conf/resource, then create the project from its compose.yaml. The
// container gets the paths remapped into the scratch root (on both sides, keeping "same path
// inside and out"), a free loopback port and a name of its own, so parallel runs do not clash.
func (n *nas) dockerProjectAcquire() {
	n.t.Helper()
	var res struct {
		DockerProject struct {
			PreloadImage string `json:"preload-image"`
			Projects     []struct{ Name, Path string }
		} `json:"docker-project"`
	}
	b, err := os.ReadFile(filepath.Join(n.pkgRoot, "conf/resource"))
	if err != nil || json.Unmarshal(b, &res) != nil || len(res.DockerProject.Projects) != 1 {
		n.t.Fatalf("conf/resource docker-project: %v %s", err, b)
	}
	target := filepath.Join(n.pkgRoot, "target")
	f, err := os.Open(filepath.Join(target, res.DockerProject.PreloadImage))
	if err != nil {
		n.t.Fatal(err)
	}
	loaded, err := n.docker.ImageLoad(n.ctx, f, client.ImageLoadWithQuiet(true))
	f.Close()
	if err != nil {
		n.t.Fatalf("docker load %s: %v", res.DockerProject.PreloadImage, err)
	}
	io.Copy(io.Discard, loaded.Body)
	loaded.Body.Close()

	src, err := os.ReadFile(filepath.Join(target, res.DockerProject.Projects[0].Path, "compose.yaml"))
	if err != nil {
		n.t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.UnmarshalWithOptions(src, &cf, yaml.Strict()); err != nil {
		n.t.Fatalf("compose.yaml: %v", err)
	}
	svc, ok := cf.Services["controller"]
	if !ok || len(cf.Services) != 1 {
		n.t.Fatalf("compose.yaml services: %v", cf.Services)
	}
	if svc.PullPolicy != "never" || svc.Restart != "unless-stopped" || svc.ContainerName != "forgebox-controller" {
		n.t.Errorf("compose: pull_policy %q restart %q container_name %q", svc.PullPolicy, svc.Restart, svc.ContainerName)
	}
	if _, err := n.docker.ImageInspect(n.ctx, svc.Image); err != nil {
		n.t.Fatalf("the compose image %s was not preloaded: %v", svc.Image, err)
	}
	var env []string
	for k, v := range svc.Environment {
		if k == "FORGEBOX_CONTROLLER_CONTAINER" {
			v = n.container
		}
		if k == EnvControllerImage {
			// On this shared engine, other runs' controller images are not "older": the
			// cleanup is tested on images of its own (TestRemoveOldControllerImages).
			v = ""
		}
		env = append(env, k+"="+n.remap(v))
	}
	// As Compose does: a bind with create_host_path goes to the Binds API (Docker makes a
	// missing source at start), any other to the Mounts API (a missing source is an error).
	var binds []string
	var mounts []mount.Mount
	for _, v := range svc.Volumes {
		if v.Type != "bind" || v.Source != v.Target {
			n.t.Errorf("volume %+v is not a bind at the same path inside", v)
		}
		src, dst := n.remap(v.Source), n.remap(v.Target)
		if v.Bind.CreateHostPath {
			b := src + ":" + dst
			if v.ReadOnly {
				b += ":ro"
			}
			binds = append(binds, b)
			continue
		}
		mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: src, Target: dst, ReadOnly: v.ReadOnly})
	}
	exposed, portBindings := nat.PortSet{}, nat.PortMap{}
	for _, p := range svc.Ports {
		parts := strings.Split(p, ":")
		if len(parts) != 3 || parts[0] != "127.0.0.1" {
			n.t.Fatalf("port %q is not published on loopback only", p)
		}
		cport := nat.Port(parts[2] + "/tcp")
		exposed[cport] = struct{}{}
		portBindings[cport] = []nat.PortBinding{{HostIP: "127.0.0.1", HostPort: strconv.Itoa(n.port)}}
	}
	dur := func(s string) time.Duration { d, _ := time.ParseDuration(s); return d }
	n.removeContainer() // force_recreate
	_, err = n.docker.ContainerCreate(n.ctx, &container.Config{
		Image: svc.Image, Cmd: svc.Command, Env: env, ExposedPorts: exposed,
		Labels: map[string]string{"com.docker.compose.project": PackageName, "io.forgebox-test.nas": n.id},
		Healthcheck: &container.HealthConfig{Test: svc.Healthcheck.Test, Interval: dur(svc.Healthcheck.Interval),
			Timeout: dur(svc.Healthcheck.Timeout), Retries: svc.Healthcheck.Retries, StartPeriod: dur(svc.Healthcheck.StartPeriod)},
	}, &container.HostConfig{
		Binds: binds, Mounts: mounts, PortBindings: portBindings,
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(svc.Restart)},
	}, nil, nil, n.container)
	if err != nil {
		n.t.Fatalf("create the controller container: %v", err)
	}
}

func (n *nas) removeContainer() {
	n.docker.ContainerRemove(context.Background(), n.container, container.RemoveOptions{Force: true})
}

// enable plays data-share (WHEN_ENABLE): the share is created on the first start, with a
// link under /var/packages/forgebox/shares, and never removed.
func (n *nas) enable() {
	n.t.Helper()
	share := filepath.Join(n.volume, ShareName)
	if _, err := os.Stat(share); err != nil {
		n.mkdir(share, 0o755, true)
	}
	n.mkdir(filepath.Join(n.pkgRoot, "shares"), 0o755, false)
	link := filepath.Join(n.pkgRoot, "shares", ShareName)
	os.Remove(link)
	if err := os.Symlink(share, link); err != nil {
		n.t.Fatal(err)
	}
}

// start plays the package toggle: WHEN_ENABLE, WHEN_STARTUP (docker-project starts the
// project), then start-stop-status prestart and start.
func (n *nas) start(status string) {
	n.t.Helper()
	n.enable()
	if err := n.docker.ContainerStart(n.ctx, n.container, container.StartOptions{}); err != nil {
		n.t.Fatalf("start the controller: %v", err)
	}
	n.mustScript("start-stop-status", "prestart", status, nil)
	n.mustScript("start-stop-status", "start", status, nil)
	n.running = true
}

// stop plays the other way: start-stop-status prestop and stop, then WHEN_HALT.
func (n *nas) stop(status string) {
	n.t.Helper()
	n.mustScript("start-stop-status", "prestop", status, nil)
	n.mustScript("start-stop-status", "stop", status, nil)
	timeout := 30
	if err := n.docker.ContainerStop(n.ctx, n.container, container.StopOptions{Timeout: &timeout}); err != nil {
		n.t.Fatalf("stop the controller: %v", err)
	}
	n.running = false
}

func (n *nas) status() int {
	n.t.Helper()
	code, _ := n.script("start-stop-status", "status", "", nil)
	return code
}

// install: preinst, the files, WHEN_POSTINST, postinst (guide: scripts, Execution Order).
func (n *nas) install(spk string, answers map[string]string) string {
	n.t.Helper()
	stage, payload := n.unpack(spk)
	answers["SYNOPKG_PKGINST_TEMP_DIR"] = payload
	answers["__scripts"] = filepath.Join(stage, "scripts")
	n.mustScript("preinst", "", "INSTALL", answers)
	n.fhs()
	n.placePackage(stage, payload)
	n.whenPostinst()
	delete(answers, "SYNOPKG_PKGINST_TEMP_DIR")
	return n.mustScript("postinst", "", "INSTALL", answers)
}

// upgrade: old stop, new preupgrade, old preuninst and postuninst, new preinst and postinst,
// postupgrade, new start; docker-project deletes the old project and creates the new one.
func (n *nas) upgrade(spk string) string {
	n.t.Helper()
	old := n.version
	if n.running {
		n.stop("UPGRADE")
	}
	stage, payload := n.unpack(spk)
	newScripts := filepath.Join(stage, "scripts")
	n.mustScript("preupgrade", "", "UPGRADE", map[string]string{"__scripts": newScripts, "SYNOPKG_PKGINST_TEMP_DIR": payload, "SYNOPKG_OLD_PKGVER": old})
	n.mustScript("preuninst", "", "UPGRADE", nil)
	n.removeContainer() // WHEN_PREUNINST: docker-project deletes the project
	n.mustScript("postuninst", "", "UPGRADE", nil)
	n.mustScript("preinst", "", "UPGRADE", map[string]string{"__scripts": newScripts, "SYNOPKG_PKGINST_TEMP_DIR": payload})
	n.fhs()
	n.placePackage(stage, payload)
	n.whenPostinst()
	msg := n.mustScript("postinst", "", "UPGRADE", map[string]string{"SYNOPKG_OLD_PKGVER": old})
	msg += n.mustScript("postupgrade", "", "UPGRADE", map[string]string{"SYNOPKG_OLD_PKGVER": old})
	n.start("UPGRADE")
	return msg // what each step said
}

// uninstall: stop, preuninst, WHEN_PREUNINST (docker-project deletes the project),
// postuninst; then DSM removes target, tmp and /var/packages/forgebox, and keeps var, etc,
// home and the share.
func (n *nas) uninstall(answers map[string]string) string {
	n.t.Helper()
	if n.running {
		n.stop("UNINSTALL")
	}
	msg := n.mustScript("preuninst", "", "UNINSTALL", answers)
	n.removeContainer()
	n.mustScript("postuninst", "", "UNINSTALL", answers)
	os.Remove(filepath.Join(n.serviceD, PackageName+".sc")) // port-config's release
	os.RemoveAll(filepath.Join(n.volume, "@appstore", PackageName))
	os.RemoveAll(filepath.Join(n.volume, "@apptemp", PackageName))
	os.RemoveAll(n.pkgRoot)
	return msg
}

// cgiResponse is what a CGI printed: a status, headers and a body.
type cgiResponse struct {
	status int
	header textproto.MIMEHeader
	body   string
}

// cgi runs target/ui/index.cgi as DSM's web server would: the binary under that name, as the
// package user, with the CGI environment of one request, the body on stdin.
func (n *nas) cgi(method, pathInfo, query, cookie string, headers map[string]string, body string) cgiResponse {
	n.t.Helper()
	script := "/webman/3rdparty/forgebox/index.cgi"
	vars := map[string]string{
		"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1",
		"SERVER_SOFTWARE": "nginx", "SERVER_NAME": "nas.local", "SERVER_PORT": "5001", "HTTPS": "on",
		"HTTP_HOST": "nas.local:5001", "REMOTE_ADDR": "192.0.2.10", "REMOTE_PORT": "50123",
		"REQUEST_METHOD": method, "SCRIPT_NAME": script, "PATH_INFO": pathInfo, "QUERY_STRING": query,
		"REQUEST_URI": script + pathInfo + map[bool]string{true: "?" + query}[query != ""],
		EnvPkgRoot:    n.pkgRoot, EnvControllerURL: fmt.Sprintf("http://127.0.0.1:%d", n.port),
		EnvAuthenticateCGI: n.standins["authenticate.cgi"], EnvLoginCGI: n.standins["login.cgi"], EnvIDTool: n.standins["id"],
	}
	if cookie != "" {
		vars["HTTP_COOKIE"] = cookie
	}
	for k, v := range headers {
		vars["HTTP_"+strings.ToUpper(strings.ReplaceAll(k, "-", "_"))] = v
	}
	if body != "" {
		vars["CONTENT_LENGTH"] = strconv.Itoa(len(body))
		vars["CONTENT_TYPE"] = "application/json"
	}
	var env []string
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	ctx, cancel := context.WithTimeout(n.ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(n.pkgRoot, "target/ui/index.cgi"))
	cmd.Env = env
	cmd.Dir = filepath.Join(n.pkgRoot, "target/ui")
	cmd.Stdin = strings.NewReader(body)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(n.uid), Gid: uint32(n.gid), Groups: []uint32{}}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		n.t.Fatalf("index.cgi %s %s: %v\n%s", method, pathInfo, err, stderr.String())
	}
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(out)))
	h, err := r.ReadMIMEHeader()
	if err != nil {
		n.t.Fatalf("index.cgi printed no CGI headers: %v\n%s", err, out)
	}
	rest, _ := io.ReadAll(r.R)
	resp := cgiResponse{status: 200, header: h, body: string(rest)}
	if s := h.Get("Status"); s != "" {
		resp.status, _ = strconv.Atoi(strings.Fields(s)[0])
	}
	return resp
}

// editConfig changes the config as a user would in the app window, keeping it valid.
func (n *nas) editConfig(edit func(*config.Config)) {
	n.t.Helper()
	path := filepath.Join(n.pkgRoot, "var", ConfigFileName)
	c, err := config.Load(path)
	if err != nil {
		n.t.Fatal(err)
	}
	edit(&c)
	if err := config.Save(path, c); err != nil {
		n.t.Fatal(err)
	}
	os.Chown(path, n.uid, n.gid)
}

func (n *nas) operations(t *testing.T) []Operation {
	t.Helper()
	resp := n.cgi("GET", "/api/v1/operations", "", "id=admin-session", nil, "")
	if resp.status != 200 {
		t.Fatalf("operations through the front: %d %s", resp.status, resp.body)
	}
	var ops struct {
		Operations []struct {
			Operation
			By string `json:"by"`
		} `json:"operations"`
	}
	if err := json.Unmarshal([]byte(resp.body), &ops); err != nil {
		t.Fatal(err)
	}
	var out []Operation
	for _, o := range ops.Operations {
		if o.By != "admin" {
			t.Errorf("operation %s %s by %q, want the DSM user admin", o.ID, o.Op, o.By)
		}
		out = append(out, o.Operation)
	}
	return out
}

// waitOps waits until no operation is running and returns them.
func (n *nas) waitOps(t *testing.T) []Operation {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ops := n.operations(t)
		running := false
		for _, o := range ops {
			running = running || o.State == "running"
		}
		if !running || time.Now().After(deadline) {
			return ops
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func hostArch(t *testing.T) spkbuild.Arch {
	for _, a := range spkbuild.Arches {
		if a.GOARCH == runtime.GOARCH {
			return a
		}
	}
	t.Skipf("no DSM package for %s", runtime.GOARCH)
	return spkbuild.Arch{}
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestInstallLikeDSM installs, runs, upgrades and uninstalls the package the way DSM does.
func TestInstallLikeDSM(t *testing.T) {
	requireRoot(t)
	eng := testenv.Engine(t)
	docker, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	arch := hostArch(t)
	root := spktest.RepoRoot(t)

	// Build the package twice, with two build numbers, as two releases; the numbers are
	// random so that parallel runs do not share image tags.
	began := time.Now()
	work := t.TempDir()
	bin := filepath.Join(work, "forgebox")
	// A test build: index.cgi must take the stand-ins of DSM's authentication tools from the
	// environment, which a release binary ignores.
	if err := spkbuild.CompileBinary(context.Background(), root, arch, bin,
		"-s -w -X github.com/forgebox/forgebox/service/internal/buildinfo.Version=install-test", testHooksTag); err != nil {
		t.Fatal(err)
	}
	cgi := filepath.Join(work, "forgebox-cgi")
	if err := spkbuild.CompileCGI(context.Background(), root, arch, cgi,
		"-s -w -X github.com/forgebox/forgebox/service/internal/buildinfo.Version=install-test", testHooksTag); err != nil {
		t.Fatal(err)
	}
	nb, _ := rand.Int(rand.Reader, big.NewInt(800000))
	build := 100000 + int(nb.Int64())
	var spks [2]spkbuild.Result
	for i := range spks {
		spks[i], err = spkbuild.Build(spkbuild.Options{Root: root, Arch: arch, Build: build + i, Binary: bin, CGIBinary: cgi,
			OutDir: filepath.Join(work, "dist"), ModTime: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, s := range spks {
			docker.ImageRemove(context.Background(), "forgebox/controller:"+s.Version, image.RemoveOptions{PruneChildren: true})
		}
	})
	t.Logf("built %s and %s in %v", filepath.Base(spks[0].Path), filepath.Base(spks[1].Path), time.Since(began).Round(time.Millisecond))

	// INFO and the checksum, as Package Center checks them, and the rest of the contents.
	info := spktest.CheckSPK(t, spks[0].Path, arch)
	for k, want := range map[string]string{
		"package": "forgebox", "version": spks[0].Version, "arch": arch.INFOArch(), "os_min_ver": "7.2-69057",
		"dsmuidir": "ui", "dsmappname": "SYNO.SDS.Forgebox.Application",
		"install_dep_packages": "ContainerManager>=20.10.23-1432", "displayname": "Forgebox",
	} {
		if info[k] != want {
			t.Errorf("INFO %s = %q, want %q", k, info[k], want)
		}
	}
	if info["description_chs"] == "" || info["maintainer"] == "" {
		t.Error("INFO lacks the Chinese description or the maintainer")
	}

	n := newNAS(t, docker)
	stackName := n.id
	t.Cleanup(func() { testenv.RemoveStack(t, eng, stackName, stackName+"-net") })
	answers := func(extra map[string]string) map[string]string {
		a := map[string]string{KeyHost: "nas.example", KeyHTTPPort: "31080", KeySSHPort: "31022",
			KeyFlavourSameersbn: "true", KeyFlavourOmnibus: "false", KeyMemorySmall: "true", KeyMemoryStandard: "false",
			KeyAdminEmail: "ops@example.com", KeyLowMemoryOK: "false"}
		for k, v := range extra {
			a[k] = v
		}
		return a
	}
	varDir := filepath.Join(n.volume, "@appdata", PackageName) // what DSM keeps: /var/packages/forgebox/var
	share := filepath.Join(n.volume, ShareName)

	t.Run("wizard answers DSM keeps for itself are refused", func(t *testing.T) {
		stage, payload := n.unpack(spks[0].Path)
		defer os.RemoveAll(stage)
		code, msg := n.script("preinst", "", "INSTALL", answers(map[string]string{KeyHTTPPort: "5001",
			"SYNOPKG_PKGINST_TEMP_DIR": payload, "__scripts": filepath.Join(stage, "scripts")}))
		if code == 0 || !strings.Contains(msg, "HTTP port") || !strings.Contains(msg, "5001") {
			t.Errorf("preinst accepted DSM's port: %d %q", code, msg)
		}
	})

	t.Run("install", func(t *testing.T) {
		msg := n.install(spks[0].Path, answers(nil))
		if !strings.Contains(msg, "http://nas.example:31080") {
			t.Errorf("postinst message: %q", msg)
		}
		cfgPath := filepath.Join(varDir, ConfigFileName)
		c, err := config.Load(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		if c.GitLab.Host != "nas.example" || c.GitLab.HTTPPort != 31080 || c.GitLab.SSHPort != 31022 || c.GitLab.AdminEmail != "ops@example.com" ||
			c.Stack.DataDir != filepath.Join(n.pkgRoot, "var/data") || c.Stack.ShareDir != filepath.Join(n.pkgRoot, "shares", ShareName) {
			t.Errorf("config from the wizard: %+v %+v", c.GitLab, c.Stack)
		}
		st, err := os.Stat(filepath.Join(varDir, "data"))
		if err != nil || st.Mode().Perm() != 0o700 || st.Sys().(*syscall.Stat_t).Uid != uint32(n.uid) {
			t.Errorf("data dir: %v, want 0700 owned by the package user", err)
		}
		if sc := readFile(t, filepath.Join(n.pkgRoot, "target/port_conf/forgebox.sc")); !strings.Contains(sc, `dst.ports="31080/tcp"`) ||
			!strings.Contains(sc, `dst.ports="31022/tcp"`) {
			t.Errorf("port-config file:\n%s", sc)
		}
		if !strings.Contains(readFile(t, n.standLog), "synopkghelper update forgebox port-config") {
			t.Error("postinst did not ask DSM to re-read the port-config")
		}
		n.portConfigUpdate()
		// The stack of this test: its own name, and images that are not on the engine with
		// pull_policy never, so that "up" fails at once instead of reaching for a registry.
		n.editConfig(func(c *config.Config) {
			c.Stack.Name = stackName
			c.Stack.PullPolicy = "never"
			c.Postgres.Image = "forgebox-test/absent-postgres:" + n.id
			c.Redis.Image = "forgebox-test/absent-redis:" + n.id
			c.GitLab.Image = "forgebox-test/absent-gitlab:" + n.id
		})
	})

	t.Run("start, status and the app window", func(t *testing.T) {
		if code := n.status(); code != StatusNotRunning {
			t.Errorf("status before start: %d, want 3", code)
		}
		n.enable()
		if err := n.docker.ContainerStart(n.ctx, n.container, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		n.running = true
		// The controller does not bring the stack up by itself: only start does.
		waitHealthy(t, n)
		if ops := n.operations(t); len(ops) != 0 {
			t.Errorf("the controller started operations on its own: %+v", ops)
		}
		n.mustScript("start-stop-status", "prestart", "START", nil)
		n.mustScript("start-stop-status", "start", "START", nil)
		if code := n.status(); code != StatusRunning {
			t.Errorf("status after start: %d, want 0", code)
		}
		ops := n.waitOps(t)
		// The stack's images are absent (pull_policy never), so up ends at once; how it ends is
		// the stack's business, that start asked for it is the package's.
		if len(ops) != 1 || ops[0].Op != "up" || ops[0].State == "running" {
			t.Errorf("start should have asked for up once: %+v", ops)
		} else {
			t.Logf("up ended %s: %s", ops[0].State, ops[0].Error)
		}
		// The compose health check runs inside the image, which has no shell.
		if code := n.exec(t, "/forgebox", "dsm", "health"); code != 0 {
			t.Errorf("the controller's health check exits %d inside its container", code)
		}
		// The front secret: written by the controller (root in its container) for the package user.
		st, err := os.Stat(filepath.Join(varDir, "data/front.secret"))
		if err != nil || st.Mode().Perm() != 0o640 || st.Sys().(*syscall.Stat_t).Uid != uint32(n.uid) {
			t.Errorf("front.secret: %v %v, want 0640 owned by the package user", st, err)
		}

		// index.cgi as the DSM web server runs it.
		resp := n.cgi("GET", "/api/v1/session", "lang=chs", "id=admin-session", map[string]string{"X-Syno-Token": "tok-admin"}, "")
		var sess struct{ Auth, User string }
		json.Unmarshal([]byte(resp.body), &sess)
		if resp.status != 200 || sess.Auth != "front" || sess.User != "admin" {
			t.Errorf("administrator: %d %s", resp.status, resp.body)
		}
		for who, cookie := range map[string]string{"non-administrator": "id=alice-session", "no session": ""} {
			resp := n.cgi("GET", "/api/v1/session", "", cookie, nil, "")
			var e struct{ Error struct{ Code string } }
			json.Unmarshal([]byte(resp.body), &e)
			if resp.status != http.StatusUnauthorized || e.Error.Code != "unauthorized" ||
				!strings.HasPrefix(resp.header.Get("Content-Type"), "application/json") {
				t.Errorf("%s: %d %s %s", who, resp.status, resp.header.Get("Content-Type"), resp.body)
			}
		}
		resp = n.cgi("GET", "", "lang=enu", "id=admin-session", nil, "")
		if resp.status != http.StatusFound || resp.header.Get("Location") != "/webman/3rdparty/forgebox/index.cgi/?lang=enu" {
			t.Errorf("index.cgi without a path: %d %q", resp.status, resp.header.Get("Location"))
		}
		resp = n.cgi("GET", "/", "", "id=admin-session", nil, "")
		if resp.status != 200 || !strings.Contains(resp.header.Get("Content-Type"), "text/html") {
			t.Errorf("the web app through the front: %d %s", resp.status, resp.header.Get("Content-Type"))
		}
		// A change from the browser carries the CSRF header; without it the controller says no.
		resp = n.cgi("POST", "/api/v1/restart", "", "id=admin-session", map[string]string{"Origin": "https://nas.local:5001", "Sec-Fetch-Site": "same-origin"}, "{}")
		if resp.status != http.StatusForbidden {
			t.Errorf("POST without X-Forgebox-CSRF: %d %s", resp.status, resp.body)
		}
		// The diagnostics, from the real index.cgi: its own uid, the share, no secret.
		resp = n.cgi("GET", ReportPath, "", "id=admin-session", nil, "")
		var rep Report
		if err := json.Unmarshal([]byte(resp.body), &rep); resp.status != 200 || err != nil || rep.CGI == nil ||
			rep.CGI.EffectiveUID != n.uid || !rep.Share.UnderVolume || rep.Controller != "answering" ||
			strings.Contains(resp.body, readFile(t, filepath.Join(varDir, "data/front.secret"))) {
			t.Errorf("diagnostics: %d %v %s", resp.status, err, resp.body)
		}
		// Last, since a restart forgets the controller's operations: DSM polls status 20
		// times while Container Manager restarts the controller, and every answer is 0 (a
		// non-zero one can make DSM stop the package, and GitLab with it).
		var codes []int
		for i := range 20 {
			switch i {
			case 5:
				timeout := 10
				if err := n.docker.ContainerStop(n.ctx, n.container, container.StopOptions{Timeout: &timeout}); err != nil {
					t.Fatal(err)
				}
			case 12:
				if err := n.docker.ContainerStart(n.ctx, n.container, container.StartOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			codes = append(codes, n.status())
		}
		for i, c := range codes {
			if c != StatusRunning {
				t.Errorf("status call %d across a controller restart: %d; all %v", i+1, c, codes)
			}
		}
		if log := readFile(t, filepath.Join(varDir, StatusLogName)); !strings.Contains(log, "controller=not answering") {
			t.Errorf("the status log does not show the controller away:\n%s", log)
		}
		waitHealthy(t, n)
	})

	t.Run("stop", func(t *testing.T) {
		n.mustScript("start-stop-status", "prestop", "STOP", nil)
		n.mustScript("start-stop-status", "stop", "STOP", nil)
		ops := n.operations(t)
		if len(ops) < 1 || ops[len(ops)-1].Op != "down" || ops[len(ops)-1].State != "succeeded" {
			t.Errorf("stop should have taken the stack down and waited: %+v", ops)
		}
		timeout := 30
		n.docker.ContainerStop(n.ctx, n.container, container.StopOptions{Timeout: &timeout}) // WHEN_HALT
		n.running = false
		if code := n.status(); code != StatusNotRunning {
			t.Errorf("status after stop: %d, want 3", code)
		}
		n.start("START")
	})

	// Data that must outlive upgrades and keep-data uninstalls.
	secret := readFile(t, filepath.Join(varDir, "data/front.secret"))
	os.WriteFile(filepath.Join(varDir, "data/marker"), []byte("kept"), 0o600)
	// As an earlier version left it: GitLab's data in the share, the config without gitlab_dir.
	n.editConfig(func(c *config.Config) { c.Stack.GitLabDir = "" })
	n.mkdir(filepath.Join(share, "gitlab/data"), 0o755, true)
	os.WriteFile(filepath.Join(share, "gitlab/data/repo"), []byte("kept"), 0o644)
	n.mkdir(filepath.Join(share, "backups"), 0o755, true)
	os.WriteFile(filepath.Join(share, "backups/1.tar"), []byte("backup"), 0o644)
	n.chownR(share)
	os.Chown(filepath.Join(share, "gitlab/data/repo"), 1000, 1000) // as GitLab's container writes it
	cfgBefore := readFile(t, filepath.Join(varDir, ConfigFileName))

	t.Run("upgrade keeps config, secrets and data", func(t *testing.T) {
		msg := n.upgrade(spks[1].Path)
		if !strings.Contains(msg, spks[0].Version) || !strings.Contains(msg, spks[1].Version) {
			t.Errorf("postupgrade message: %q", msg)
		}
		if n.version != spks[1].Version {
			t.Errorf("installed version %s", n.version)
		}
		// The one change: GitLab's data now belongs in the var dir.
		c, err := config.Load(filepath.Join(varDir, ConfigFileName))
		if err != nil || c.Stack.GitLabDir != filepath.Join(n.pkgRoot, "var/gitlab") {
			t.Errorf("upgraded config: %v gitlab_dir %q", err, c.Stack.GitLabDir)
		}
		c.Stack.GitLabDir = ""
		if b, _ := config.Encode(c); string(b) != cfgBefore {
			t.Error("the upgrade changed more of the config than gitlab_dir")
		}
		if !strings.Contains(msg, "moves from") {
			t.Errorf("the upgrade does not say GitLab's data moves: %q", msg)
		}
		waitHealthy(t, n)
		// start asked for up, and the controller moved the data before anything else.
		repo := filepath.Join(varDir, "gitlab/data/repo")
		var st syscall.Stat_t
		if err := syscall.Stat(repo, &st); err != nil || readFile(t, repo) != "kept" || st.Uid != 1000 {
			t.Errorf("GitLab's data did not move to the var dir: %v (owner %d)", err, st.Uid)
		}
		moved, _ := filepath.Glob(filepath.Join(share, "gitlab"+MovedSuffix+"*"))
		if len(moved) != 1 || exists(filepath.Join(share, "gitlab")) || readFile(t, filepath.Join(moved[0], "data/repo")) != "kept" {
			t.Errorf("the old folder: %v", moved)
		}
		if readFile(t, filepath.Join(varDir, "data/front.secret")) != secret || !exists(filepath.Join(varDir, "data/marker")) {
			t.Error("the upgrade lost the secret or data")
		}
		insp, err := docker.ContainerInspect(n.ctx, n.container)
		if err != nil || insp.Config.Image != "forgebox/controller:"+spks[1].Version || !insp.State.Running {
			t.Errorf("controller after the upgrade: %v %+v", err, insp.Config)
		}
		if resp := n.cgi("GET", "/api/v1/session", "", "id=admin-session", nil, ""); resp.status != 200 {
			t.Errorf("the front after the upgrade: %d %s", resp.status, resp.body)
		}
	})

	t.Run("uninstall keeping the data", func(t *testing.T) {
		msg := n.uninstall(map[string]string{KeyKeepData: "true", KeyDeleteData: "false"})
		if !strings.Contains(msg, "kept in "+varDir) {
			t.Errorf("the message does not name where the data stays (after /var/packages/forgebox is gone): %q", msg)
		}
		if exists(n.pkgRoot) || exists(filepath.Join(n.volume, "@appstore", PackageName)) {
			t.Error("the package's files are still there")
		}
		if _, err := docker.ContainerInspect(n.ctx, n.container); err == nil {
			t.Error("the controller container is still there")
		}
		for _, p := range []string{filepath.Join(varDir, ConfigFileName), filepath.Join(varDir, "data/marker"),
			filepath.Join(varDir, "data/front.secret"), filepath.Join(varDir, "gitlab/data/repo"), filepath.Join(share, "backups/1.tar")} {
			if !exists(p) {
				t.Errorf("keep-data lost %s", p)
			}
		}
	})

	t.Run("reinstall over the kept data", func(t *testing.T) {
		msg := n.install(spks[1].Path, answers(map[string]string{KeyHTTPPort: "32080", KeyHost: ""}))
		if !strings.Contains(msg, "earlier installation") {
			t.Errorf("postinst message: %q", msg)
		}
		c, err := config.Load(filepath.Join(varDir, ConfigFileName))
		if err != nil {
			t.Fatal(err)
		}
		if c.GitLab.HTTPPort != 32080 || c.Stack.Name != stackName || c.GitLab.Host != "nas.example" {
			t.Errorf("reinstalled config: port %d stack %q host %q", c.GitLab.HTTPPort, c.Stack.Name, c.GitLab.Host)
		}
		n.start("INSTALL")
		if readFile(t, filepath.Join(varDir, "data/front.secret")) != secret {
			t.Error("the secret changed")
		}
		if resp := n.cgi("GET", "/api/v1/session", "", "id=admin-session", nil, ""); resp.status != 200 {
			t.Errorf("the front after reinstalling: %d %s", resp.status, resp.body)
		}
	})

	t.Run("uninstall deleting the data", func(t *testing.T) {
		// A file a container wrote as another user, as PostgreSQL's would be: the package
		// user cannot delete it, and the message must say so and how.
		pg := filepath.Join(varDir, "data/postgres")
		os.MkdirAll(pg, 0o700)
		os.WriteFile(filepath.Join(pg, "PG_VERSION"), []byte("17"), 0o600)
		os.Chown(filepath.Join(pg, "PG_VERSION"), 70, 70)
		os.Chown(pg, 70, 70)
		msg := n.uninstall(map[string]string{KeyKeepData: "false", KeyDeleteData: "true"})
		if !strings.Contains(msg, "deleted") || !strings.Contains(msg, "Shared Folder") {
			t.Errorf("message: %q", msg)
		}
		if !strings.Contains(msg, filepath.Join(varDir, "data")) || !strings.Contains(msg, "sudo rm -rf") {
			t.Errorf("the message does not say what is left and how to remove it: %q", msg)
		}
		os.RemoveAll(pg) // what the administrator would do, as root
		os.Remove(filepath.Join(varDir, "data"))
		var left []string
		ents, _ := os.ReadDir(varDir)
		for _, e := range ents {
			left = append(left, e.Name())
		}
		if len(left) != 0 {
			t.Errorf("delete left %v in the var dir", left)
		}
		if moved, _ := filepath.Glob(filepath.Join(share, "gitlab*")); len(moved) != 0 {
			t.Error("delete left GitLab's data in the share")
		}
		if !exists(filepath.Join(share, "backups/1.tar")) {
			t.Error("delete removed the backups, or the shared folder, which DSM never removes")
		}
	})
}

// exec runs a command in the controller container, as Docker's health check does, and returns
// its exit code.
func (n *nas) exec(t *testing.T, cmd ...string) int {
	t.Helper()
	ex, err := n.docker.ContainerExecCreate(n.ctx, n.container, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	att, err := n.docker.ContainerExecAttach(n.ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(att.Reader)
	att.Close()
	for range 50 {
		insp, err := n.docker.ContainerExecInspect(n.ctx, ex.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !insp.Running {
			if insp.ExitCode != 0 {
				t.Logf("%v: %s", cmd, out)
			}
			return insp.ExitCode
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%v still running", cmd)
	return -1
}

func waitHealthy(t *testing.T, n *nas) {
	t.Helper()
	c := &Controller{BaseURL: fmt.Sprintf("http://127.0.0.1:%d", n.port), HTTP: &http.Client{Timeout: 3 * time.Second}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitHealthy(ctx); err != nil {
		logs, _ := n.docker.ContainerLogs(context.Background(), n.container, container.LogsOptions{ShowStdout: true, ShowStderr: true})
		var b bytes.Buffer
		if logs != nil {
			io.Copy(&b, logs)
			logs.Close()
		}
		t.Fatalf("the controller does not answer: %v\n%s", err, b.String())
	}
}
