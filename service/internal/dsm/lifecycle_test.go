package dsm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"

	"github.com/forgebox/forgebox/service/internal/dsm/front"
)

// scriptFixture is a package root with a target holding the port-config file, stand-ins of
// DSM's tools, and the SYNOPKG_* environment of a lifecycle script.
type scriptFixture struct {
	dir  string
	vars map[string]string
	log  string
}

func newScriptFixture(t *testing.T) *scriptFixture {
	t.Helper()
	dir := t.TempDir()
	st := writeStandins(t, dir)
	root := filepath.Join(dir, "var/packages/forgebox")
	target := filepath.Join(root, "target")
	os.MkdirAll(filepath.Join(target, "port_conf"), 0o755)
	os.WriteFile(filepath.Join(target, "port_conf/forgebox.sc"), []byte(
		"[forgebox-gitlab-http]\ntitle=\"GitLab (HTTP)\"\ndst.ports=\"30080/tcp\"\n\n[forgebox-gitlab-ssh]\ntitle=\"GitLab (SSH)\"\ndst.ports=\"30022/tcp\"\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "var"), 0o755)
	// DSM's data-share: the shared folder on a volume, linked from the package root.
	os.MkdirAll(filepath.Join(dir, "volume1/forgebox"), 0o755)
	os.MkdirAll(filepath.Join(root, "shares"), 0o755)
	os.Symlink(filepath.Join(dir, "volume1/forgebox"), filepath.Join(root, "shares/forgebox"))
	f := &scriptFixture{dir: dir, log: filepath.Join(dir, "standin.log")}
	t.Setenv("STANDIN_LOG", f.log) // the tools the scripts run inherit the process environment
	f.vars = map[string]string{
		EnvPkgRoot: root, EnvServiceTool: st["servicetool"], EnvPkgHelper: st["synopkghelper"],
		EnvMemInfo: memInfo(t, dir, 8), "STANDIN_LOG": f.log, EnvControllerURL: "http://127.0.0.1:" + strconv.Itoa(unusedPort(t)),
		"SYNOPKG_PKGNAME": "forgebox", "SYNOPKG_PKGDEST": target, "SYNOPKG_PKGVAR": filepath.Join(root, "var"),
		"SYNOPKG_TEMP_LOGFILE": filepath.Join(dir, "message"), "SYNOPKG_DSM_LANGUAGE": "enu",
		"SYNOPKG_PKG_STATUS": "INSTALL", "SYNOPKG_USERNAME": "admin",
		KeyHost: "nas.example", KeyHTTPPort: "30080", KeySSHPort: "30022", KeyFlavourSameersbn: "true",
		KeyFlavourOmnibus: "false", KeyMemorySmall: "true", KeyMemoryStandard: "false", KeyAdminEmail: "ops@example.com",
	}
	return f
}

// run runs an action as DSM would run the script, returning the exit code and the message DSM
// would show.
func (f *scriptFixture) run(t *testing.T, action string, extra map[string]string) (int, string) {
	t.Helper()
	vars := map[string]string{}
	for k, v := range f.vars {
		vars[k] = v
	}
	for k, v := range extra {
		vars[k] = v
	}
	os.Remove(vars["SYNOPKG_TEMP_LOGFILE"])
	var stderr bytes.Buffer
	code := Run(context.Background(), action, LoadEnv(func(k string) string { return vars[k] }), &stderr)
	msg, _ := os.ReadFile(vars["SYNOPKG_TEMP_LOGFILE"])
	t.Logf("%s: exit %d\nlog: %s\nmessage: %s", action, code, stderr.String(), msg)
	return code, string(msg)
}

func (f *scriptFixture) env() Env { return LoadEnv(func(k string) string { return f.vars[k] }) }

func TestPreinstChecksAnswers(t *testing.T) {
	f := newScriptFixture(t)
	if code, msg := f.run(t, "preinst", nil); code != 0 || msg != "" {
		t.Fatalf("good answers refused: %d %s", code, msg)
	}
	busy, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)
	for name, c := range map[string]struct {
		vars  map[string]string
		wants []string
	}{
		"DSM's port":          {map[string]string{KeyHTTPPort: "5000"}, []string{"HTTP port", "5000", "DSM HTTP"}},
		"not a number":        {map[string]string{KeySSHPort: "twenty-two"}, []string{"SSH port", "not a number"}},
		"same ports":          {map[string]string{KeySSHPort: "30080"}, []string{"SSH port", "30080"}},
		"localhost":           {map[string]string{KeyHost: "localhost"}, []string{"Host name", "localhost"}},
		"bad e-mail":          {map[string]string{KeyAdminEmail: "root@"}, []string{"Administrator e-mail"}},
		"registered port":     {map[string]string{KeyHTTPPort: "30443"}, []string{"30443", "stand-in-vpn"}},
		"port in use":         {map[string]string{KeySSHPort: busyPort}, []string{busyPort, "in use"}},
		"controller port":     {map[string]string{EnvControllerURL: "http://127.0.0.1:" + busyPort}, []string{busyPort, "controller needs it"}},
		"too little memory":   {map[string]string{EnvMemInfo: memInfo(t, t.TempDir(), 1.5)}, []string{"1.5 GB", "at least 2 GB"}},
		"Chinese, DSM's port": {map[string]string{KeyHTTPPort: "443", "SYNOPKG_DSM_LANGUAGE": "chs"}, []string{"无法以这些设置安装", "HTTP 端口"}},
		"bad mirror":          {map[string]string{KeyMirrors: "https://ok.example, ftp://mirror.example"}, []string{"Mirrors", "entry 2"}},
		"mirrors, Docker":     {map[string]string{KeyMirrors: "https://ok.example", KeyPullViaEngine: "true", KeyPullViaAuto: "false"}, []string{"Mirrors", "engine"}},
	} {
		t.Run(name, func(t *testing.T) {
			code, msg := f.run(t, "preinst", c.vars)
			if code == 0 {
				t.Fatal("accepted")
			}
			for _, w := range c.wants {
				if !strings.Contains(msg, w) {
					t.Errorf("message lacks %q:\n%s", w, msg)
				}
			}
		})
	}
	if code, _ := f.run(t, "preinst", map[string]string{EnvMemInfo: memInfo(t, t.TempDir(), 1.5), KeyLowMemoryOK: "true"}); code != 0 {
		t.Error("the user's insistence on a small NAS was ignored")
	}
	if _, err := os.Stat(f.env().ConfigFile); err == nil {
		t.Error("preinst wrote the config; it must change nothing")
	}
}

func TestPostinstWritesConfig(t *testing.T) {
	f := newScriptFixture(t)
	code, msg := f.run(t, "postinst", map[string]string{KeyHTTPPort: "31080", KeySSHPort: "31022", KeyFlavourOmnibus: "true",
		KeyFlavourSameersbn: "false", KeyMemoryStandard: "true", KeyMemorySmall: "false",
		KeyMirrors: "https://m1.example, registry.gitlab.com=https://m2.example", KeyPullViaForgebox: "true", KeyPullViaAuto: "false"})
	if code != 0 {
		t.Fatalf("postinst failed: %s", msg)
	}
	env := f.env()
	c, err := config.Load(env.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	if c.Stack.PullVia != "forgebox" || !slices.Equal(c.Stack.RegistryMirrors, []string{"https://m1.example", "registry.gitlab.com=https://m2.example"}) {
		t.Errorf("wizard's downloads answers: pull_via %q, mirrors %q", c.Stack.PullVia, c.Stack.RegistryMirrors)
	}
	if c.GitLab.Host != "nas.example" || c.GitLab.HTTPPort != 31080 || c.GitLab.SSHPort != 31022 ||
		c.GitLab.Flavour != "omnibus" || !strings.HasPrefix(c.GitLab.Image, "gitlab/gitlab-ce:") ||
		c.GitLab.Memory != "standard" || c.GitLab.AdminEmail != "ops@example.com" {
		t.Errorf("config.gitlab = %+v", c.GitLab)
	}
	if c.Stack.DataDir != env.DataDir || c.Stack.ShareDir != env.ShareDir || c.GitLabDir() != filepath.Join(env.VarDir, "gitlab") ||
		c.BackupDir() != filepath.Join(env.ShareDir, "backups") {
		t.Errorf("config paths %q %q %q %q, want GitLab's data in the var dir and backups in the share", c.Stack.DataDir, c.Stack.ShareDir, c.GitLabDir(), c.BackupDir())
	}
	if st, err := os.Stat(env.DataDir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("data dir: %v %v", st, err)
	}
	sc, _ := os.ReadFile(filepath.Join(env.TargetDir(), "port_conf/forgebox.sc"))
	if !strings.Contains(string(sc), `dst.ports="31080/tcp"`) || !strings.Contains(string(sc), `dst.ports="31022/tcp"`) {
		t.Errorf("port-config not rewritten:\n%s", sc)
	}
	log, _ := os.ReadFile(f.log)
	if !strings.Contains(string(log), "synopkghelper update forgebox port-config") {
		t.Errorf("DSM was not asked to re-read the port-config:\n%s", log)
	}
	if !strings.Contains(msg, "http://nas.example:31080") {
		t.Errorf("the message does not say where GitLab will be:\n%s", msg)
	}

	// An upgrade keeps the file as it is, byte for byte.
	before, _ := os.ReadFile(env.ConfigFile)
	if code, msg := f.run(t, "postinst", map[string]string{"SYNOPKG_PKG_STATUS": "UPGRADE", KeyHTTPPort: "32080"}); code != 0 {
		t.Fatalf("postinst on upgrade failed: %s", msg)
	}
	if after, _ := os.ReadFile(env.ConfigFile); !bytes.Equal(before, after) {
		t.Error("the upgrade changed the config")
	}
	// A re-installation over kept data keeps the rest and takes the new answers.
	c.Runner.Concurrent = 7
	config.Save(env.ConfigFile, c)
	code, msg = f.run(t, "postinst", map[string]string{KeyHTTPPort: "33080", KeyHost: ""})
	if code != 0 {
		t.Fatalf("re-install failed: %s", msg)
	}
	c2, _ := config.Load(env.ConfigFile)
	if c2.GitLab.HTTPPort != 33080 || c2.Runner.Concurrent != 7 || c2.GitLab.Host != "nas.example" {
		t.Errorf("re-install: port %d concurrent %d host %q", c2.GitLab.HTTPPort, c2.Runner.Concurrent, c2.GitLab.Host)
	}
	if !strings.Contains(msg, "earlier installation") {
		t.Errorf("the message does not say the old data is used:\n%s", msg)
	}
}

func TestPreupgradeRefusesBrokenConfig(t *testing.T) {
	f := newScriptFixture(t)
	os.WriteFile(f.env().ConfigFile, []byte("version = 1\n[gitlab]\nhttp_port = 5001\n"), 0o644)
	code, msg := f.run(t, "preupgrade", map[string]string{"SYNOPKG_PKG_STATUS": "UPGRADE"})
	if code == 0 || !strings.Contains(msg, "HTTP port") || !strings.Contains(msg, "5001") {
		t.Errorf("preupgrade: %d %s", code, msg)
	}
	os.Remove(f.env().ConfigFile)
	if code, _ := f.run(t, "preupgrade", map[string]string{"SYNOPKG_PKG_STATUS": "UPGRADE"}); code != 0 {
		t.Error("preupgrade refused a missing config")
	}
}

func TestPreuninstHonoursKeepData(t *testing.T) {
	f := newScriptFixture(t)
	env := f.env()
	seed := func() {
		os.MkdirAll(filepath.Join(env.DataDir, "postgres"), 0o700)
		os.WriteFile(filepath.Join(env.DataDir, "postgres/PG_VERSION"), []byte("17"), 0o600)
		os.WriteFile(env.ConfigFile, []byte("version = 1\n"), 0o644)
		os.MkdirAll(filepath.Join(env.ShareDir, "gitlab/data"), 0o755)
		os.MkdirAll(filepath.Join(env.ShareDir, "backups"), 0o755)
		os.WriteFile(filepath.Join(env.ShareDir, "backups/b.tar"), []byte("b"), 0o644)
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	seed()
	// An upgrade runs the old preuninst: never delete then, whatever the environment says.
	f.run(t, "preuninst", map[string]string{"SYNOPKG_PKG_STATUS": "UPGRADE", KeyDeleteData: "true"})
	code, msg := f.run(t, "preuninst", map[string]string{"SYNOPKG_PKG_STATUS": "UNINSTALL", KeyKeepData: "true", KeyDeleteData: "false"})
	if code != 0 || !exists(env.ConfigFile) || !exists(filepath.Join(env.DataDir, "postgres/PG_VERSION")) || !exists(filepath.Join(env.ShareDir, "gitlab")) {
		t.Fatalf("keep-data lost data (exit %d)", code)
	}
	if !strings.Contains(msg, env.VarDir) {
		t.Errorf("the message does not say where the data stays:\n%s", msg)
	}
	code, msg = f.run(t, "preuninst", map[string]string{"SYNOPKG_PKG_STATUS": "UNINSTALL", KeyKeepData: "false", KeyDeleteData: "true",
		"SYNOPKG_PKGVER": "0.1.0-0057"})
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if ents, _ := os.ReadDir(env.VarDir); len(ents) != 0 || exists(filepath.Join(env.ShareDir, "gitlab")) {
		t.Errorf("delete left %v in var, gitlab in share: %v", ents, exists(filepath.Join(env.ShareDir, "gitlab")))
	}
	if !exists(filepath.Join(env.ShareDir, "backups/b.tar")) || !exists(env.VarDir) {
		t.Error("delete removed the backups or the var dir itself")
	}
	if !strings.Contains(msg, "Shared Folder") {
		t.Errorf("the message does not say the share stays:\n%s", msg)
	}
	// The images stay (the package user cannot reach the engine): the message offers their removal.
	if def := config.Default(); !strings.Contains(msg, "sudo docker rmi "+def.GitLab.Image) || !strings.Contains(msg, def.Postgres.Image) ||
		!strings.Contains(msg, "forgebox/controller:0.1.0-0057") {
		t.Errorf("the message does not offer to remove the images:\n%s", msg)
	}
}

// fakeOps is a controller that accepts up and down and finishes each after a moment.
type fakeOps struct {
	mu     sync.Mutex
	secret string
	calls  []string
	users  []string
	state  map[string]string
	busy   int // answer 409 to this many POSTs first
}

func (c *fakeOps) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.URL.Path == "/healthz" {
		w.Write([]byte(`{"status":"ok"}`))
		return
	}
	if r.Header.Get(HeaderFrontSecret) != c.secret || r.Header.Get(HeaderCSRF) != "1" && r.Method == "POST" {
		w.WriteHeader(401)
		w.Write([]byte(`{"error":{"code":"unauthorized","message":"no"}}`))
		return
	}
	c.calls = append(c.calls, r.Method+" "+r.URL.Path)
	c.users = append(c.users, r.Header.Get(HeaderUser))
	switch {
	case r.Method == "POST":
		if c.busy > 0 {
			c.busy--
			w.WriteHeader(409)
			w.Write([]byte(`{"error":{"code":"busy","message":"up is running"}}`))
			return
		}
		id := strconv.Itoa(len(c.state) + 1)
		c.state[id] = "running"
		go func() {
			time.Sleep(300 * time.Millisecond)
			c.mu.Lock()
			c.state[id] = "succeeded"
			c.mu.Unlock()
		}()
		w.WriteHeader(202)
		json.NewEncoder(w).Encode(map[string]any{"operation": map[string]string{"id": id, "op": strings.TrimPrefix(r.URL.Path, "/api/v1/"), "state": "running"}})
	case strings.HasPrefix(r.URL.Path, "/api/v1/operations/"):
		id := strings.TrimPrefix(r.URL.Path, "/api/v1/operations/")
		json.NewEncoder(w).Encode(map[string]any{"operation": map[string]string{"id": id, "state": c.state[id]}})
	default:
		w.WriteHeader(404)
	}
}

func TestStartStopStatus(t *testing.T) {
	f := newScriptFixture(t)
	ctrl := &fakeOps{secret: "s3cret-s3cret-s3cret", state: map[string]string{}, busy: 1}
	srv := httptest.NewServer(ctrl)
	defer srv.Close()
	f.vars[EnvControllerURL] = srv.URL
	if code, msg := f.run(t, "postinst", nil); code != 0 {
		t.Fatal(msg)
	}
	os.WriteFile(filepath.Join(f.env().DataDir, "front.secret"), []byte(ctrl.secret+"\n"), 0o640)

	if code, _ := f.run(t, "status", nil); code != StatusNotRunning {
		t.Errorf("status %d before start, with the controller answering", code)
	}
	if code, _ := f.run(t, "start", map[string]string{"SYNOPKG_PKG_STATUS": "START"}); code != 0 {
		t.Errorf("start exit %d", code)
	}
	if code, _ := f.run(t, "status", nil); code != StatusRunning {
		t.Errorf("status %d after start", code)
	}
	if code, _ := f.run(t, "stop", map[string]string{"SYNOPKG_PKG_STATUS": "STOP"}); code != 0 {
		t.Errorf("stop exit %d", code)
	}
	if code, _ := f.run(t, "status", nil); code != StatusNotRunning {
		t.Errorf("status %d after stop", code)
	}
	ctrl.mu.Lock()
	calls, users := strings.Join(ctrl.calls, ","), ctrl.users
	ctrl.mu.Unlock()
	// start met "busy" once and gave up politely; stop asked for down and waited for it.
	if !strings.HasPrefix(calls, "POST /api/v1/up,POST /api/v1/down,GET /api/v1/operations/1") || !strings.HasSuffix(calls, "GET /api/v1/operations/1") {
		t.Errorf("controller calls: %s", calls)
	}
	if users[0] != "admin" {
		t.Errorf("the controller was told the user %q", users[0])
	}
	ctrl.mu.Lock()
	if ctrl.state["1"] != "succeeded" {
		t.Errorf("stop returned before down finished: %v", ctrl.state)
	}
	ctrl.mu.Unlock()

	srv.Close()
	began := time.Now()
	if code, _ := f.run(t, "start", map[string]string{EnvStartWait: "2s"}); code != 0 {
		t.Errorf("start without a controller exit %d, want 0 (with a log line)", code)
	}
	if code, _ := f.run(t, "status", nil); code != StatusRunning {
		t.Errorf("status %d after start, with the controller gone: DSM would stop the package", code)
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("start waited %v", d)
	}
	if code, _ := f.run(t, "stop", nil); code != 0 {
		t.Errorf("stop without a controller exit %d", code)
	}
}

// unusedPort is a loopback port nothing listens on at the moment.
func unusedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestRewritePorts(t *testing.T) {
	in := "[forgebox-gitlab-http]\r\ntitle=\"x\"\r\ndst.ports=\"30080/tcp\"\r\n[forgebox-gitlab-ssh]\ndst.ports=\"30022/tcp\"\n[other]\ndst.ports=\"1/tcp\"\n"
	want := "[forgebox-gitlab-http]\r\ntitle=\"x\"\r\ndst.ports=\"8080/tcp\"\r\n[forgebox-gitlab-ssh]\ndst.ports=\"2222/tcp\"\n[other]\ndst.ports=\"1/tcp\"\n"
	if got := string(RewritePorts([]byte(in), 8080, 2222)); got != want {
		t.Errorf("got %q", got)
	}
}

func TestInstallAnswers(t *testing.T) {
	a := InstallAnswers(func(k string) string {
		return map[string]string{KeyFlavourOmnibus: "true", KeyMemoryStandard: "false", KeyMemorySmall: "true", KeyHTTPPort: " 8080 "}[k]
	})
	if a.Flavour != "omnibus" || a.Memory != "small" || a.HTTPPort != "8080" || a.Host != "" {
		t.Errorf("%+v", a)
	}
	if img := FlavourImage("omnibus"); !strings.HasPrefix(img, "gitlab/gitlab-ce:") || !strings.HasSuffix(img, "-ce.0") {
		t.Errorf("omnibus image %q", img)
	}
}

// TestStatusAcrossControllerRestart: DSM polls status 20 times while the controller goes away
// and comes back on the same port; every answer is 0, because a non-zero one can make DSM stop
// the package, and stop takes GitLab down. The controller's absence shows in the status log.
func TestStatusAcrossControllerRestart(t *testing.T) {
	f := newScriptFixture(t)
	ctrl := &fakeOps{secret: "s3cret-s3cret-s3cret", state: map[string]string{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	srv := &http.Server{Handler: ctrl}
	go srv.Serve(l)
	f.vars[EnvControllerURL] = "http://" + addr
	if code, msg := f.run(t, "postinst", nil); code != 0 {
		t.Fatal(msg)
	}
	os.WriteFile(filepath.Join(f.env().DataDir, "front.secret"), []byte(ctrl.secret), 0o640)
	if code, _ := f.run(t, "start", map[string]string{"SYNOPKG_PKG_STATUS": "START"}); code != 0 {
		t.Fatalf("start exit %d", code)
	}
	var codes []int
	for i := range 20 {
		switch i {
		case 6: // the controller goes away (Container Manager restarts it)
			srv.Close()
		case 13: // and comes back where it was
			l, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			srv = &http.Server{Handler: ctrl}
			go srv.Serve(l)
			defer srv.Close()
		}
		code, _ := f.run(t, "status", nil)
		codes = append(codes, code)
	}
	for i, c := range codes {
		if c != StatusRunning {
			t.Errorf("status call %d answered %d; all: %v", i+1, c, codes)
		}
	}
	log, _ := os.ReadFile(f.env().StatusLog())
	if n := strings.Count(string(log), "status=0 controller=not answering"); n != 7 {
		t.Errorf("the status log shows the controller away %d times, want 7:\n%s", n, log)
	}
	if n := strings.Count(string(log), "status=0 controller=ok"); n != 13 {
		t.Errorf("the status log shows the controller answering %d times, want 13:\n%s", n, log)
	}
}

// TestUpgradePointsGitLabAtVar: the config of an earlier version (GitLab's data in the share)
// is pointed at the var dir on upgrade, and the message says the data moves; a share of the
// user's own choosing is left alone.
func TestUpgradePointsGitLabAtVar(t *testing.T) {
	f := newScriptFixture(t)
	env := f.env()
	old := config.Default()
	old.Stack.DataDir, old.Stack.ShareDir = env.DataDir, env.ShareDir
	if err := config.Save(env.ConfigFile, old); err != nil {
		t.Fatal(err)
	}
	if c, _ := config.Load(env.ConfigFile); c.GitLabDir() != filepath.Join(env.ShareDir, "gitlab") {
		t.Fatalf("an old config's GitLab data is at %s", c.GitLabDir())
	}
	code, msg := f.run(t, "postinst", map[string]string{"SYNOPKG_PKG_STATUS": "UPGRADE"})
	c, err := config.Load(env.ConfigFile)
	if code != 0 || err != nil || c.Stack.GitLabDir != env.GitLabDir || !strings.Contains(msg, "moves from "+filepath.Join(env.ShareDir, "gitlab")) {
		t.Errorf("upgrade: %d %v gitlab_dir %q: %s", code, err, c.Stack.GitLabDir, msg)
	}
	other := old
	other.Stack.ShareDir = filepath.Join(f.dir, "elsewhere")
	config.Save(env.ConfigFile, other)
	before, _ := os.ReadFile(env.ConfigFile)
	f.run(t, "postinst", map[string]string{"SYNOPKG_PKG_STATUS": "UPGRADE"})
	if after, _ := os.ReadFile(env.ConfigFile); !bytes.Equal(before, after) {
		t.Error("the upgrade moved GitLab's data off a share of the user's choosing")
	}
}

type fakeRemover struct {
	removed []string
	inUse   string
}

func (r *fakeRemover) RemoveImageTag(ctx context.Context, ref string) error {
	if ref == r.inUse {
		return fmt.Errorf("remove image %s: conflict: unable to remove repository reference (must force) - container abc is using it", ref)
	}
	r.removed = append(r.removed, ref)
	return nil
}

// Uninstalling with "delete data" and "remove images" removes the stack's images (never forced:
// one a container uses stays, and the message lists it with the command); without the tick, or
// without "delete data", none is touched; when the engine cannot be reached the message says so
// and lists them all.
func TestPreuninstRemovesImagesWhenAsked(t *testing.T) {
	f := newScriptFixture(t)
	def := config.Default()
	r := &fakeRemover{inUse: def.Redis.Image}
	reach := func(ctx context.Context) (ImageRemover, func(), error) { return r, func() {}, nil }
	old := ConnectImages
	t.Cleanup(func() { ConnectImages = old })
	ConnectImages = reach
	uninstall := map[string]string{"SYNOPKG_PKG_STATUS": "UNINSTALL", KeyKeepData: "false", KeyDeleteData: "true", "SYNOPKG_PKGVER": "0.1.0-0057"}

	f.run(t, "preuninst", map[string]string{"SYNOPKG_PKG_STATUS": "UNINSTALL", KeyKeepData: "true", KeyDeleteData: "false", KeyRemoveImages: "true"})
	f.run(t, "preuninst", uninstall)
	if len(r.removed) != 0 {
		t.Fatalf("images removed without both answers: %v", r.removed)
	}

	uninstall[KeyRemoveImages] = "true"
	code, msg := f.run(t, "preuninst", uninstall)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, im := range []string{def.GitLab.Image, def.Postgres.Image, def.Runner.Image, "forgebox/controller:0.1.0-0057"} {
		if !slices.Contains(r.removed, im) {
			t.Errorf("%s was not removed (removed %v)", im, r.removed)
		}
	}
	if slices.Contains(r.removed, def.Redis.Image) || !strings.Contains(msg, "sudo docker rmi "+def.Redis.Image) || strings.Contains(msg, "sudo docker rmi "+def.GitLab.Image) {
		t.Errorf("the image in use must stay and be the only one offered:\n%s", msg)
	}
	if !strings.Contains(msg, "were removed") {
		t.Errorf("the message does not say which images were removed:\n%s", msg)
	}

	ConnectImages = func(ctx context.Context) (ImageRemover, func(), error) {
		return nil, nil, errors.New("permission denied on /var/run/docker.sock")
	}
	code, msg = f.run(t, "preuninst", uninstall)
	if code != 0 || !strings.Contains(msg, "could not reach Docker") || !strings.Contains(msg, "sudo docker rmi "+def.GitLab.Image) {
		t.Errorf("unreachable engine: exit %d, message:\n%s", code, msg)
	}
}

// TestPrestartRecordsTheDataDir: a hand-edited data_dir reaches index.cgi through the record
// prestart writes (front.DataDirRecordName), and the record goes when the config names the
// package's data dir again; the small front then finds front.secret there.
func TestPrestartRecordsTheDataDir(t *testing.T) {
	f := newScriptFixture(t)
	if code, msg := f.run(t, "postinst", nil); code != 0 {
		t.Fatalf("postinst: %s", msg)
	}
	env := f.env()
	record := filepath.Join(env.VarDir, front.DataDirRecordName)
	if code, msg := f.run(t, "prestart", nil); code != 0 {
		t.Fatalf("prestart: %s", msg)
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Fatalf("a record with the default data dir: %v", err)
	}
	c, err := config.Load(env.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := filepath.Join(f.dir, "volume1", "elsewhere", "data")
	c.Stack.DataDir = elsewhere
	if err := config.Save(env.ConfigFile, c); err != nil {
		t.Fatal(err)
	}
	if code, msg := f.run(t, "prestart", nil); code != 0 {
		t.Fatalf("prestart with data_dir elsewhere: %s", msg)
	}
	if got, err := front.RecordedDataDir(env.VarDir); err != nil || got != elsewhere {
		t.Fatalf("recorded %q, %v; want %q", got, err, elsewhere)
	}
	c.Stack.DataDir = env.DataDir
	config.Save(env.ConfigFile, c)
	if code, msg := f.run(t, "prestart", nil); code != 0 {
		t.Fatalf("prestart back to the default: %s", msg)
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Errorf("the record stayed after data_dir went back to the default: %v", err)
	}
}
