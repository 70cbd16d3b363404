package main

// The end-to-end test of the two contract stand-ins on the real Docker Engine: PostgreSQL and
// Redis from the local test images, the GitLab stand-in in both flavours, the runner stand-in
// and its job container. Results here are results on stand-ins, not on GitLab.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/jackc/pgx/v5"
)

type e2eImages struct{ Postgres, Redis, GitLab, Runner string }

func requireEngine(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("FORGEBOX_REQUIRE_ENGINE") == "1" {
		t.Fatalf("%s (FORGEBOX_REQUIRE_ENGINE=1)", why)
	}
	t.Skipf("%s; run eval \"$(bash testimages/build.sh)\" first", why)
}

func e2eSetup(t *testing.T) (*client.Client, e2eImages) {
	im := e2eImages{
		Postgres: os.Getenv("FORGEBOX_TEST_POSTGRES_IMAGE"), Redis: os.Getenv("FORGEBOX_TEST_REDIS_IMAGE"),
		GitLab: os.Getenv("FORGEBOX_TEST_GITLAB_IMAGE"), Runner: os.Getenv("FORGEBOX_TEST_RUNNER_IMAGE"),
	}
	if im.Postgres == "" || im.Redis == "" || im.GitLab == "" || im.Runner == "" {
		requireEngine(t, "FORGEBOX_TEST_{POSTGRES,REDIS,GITLAB,RUNNER}_IMAGE are not all set")
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		requireEngine(t, "no Docker client: "+err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		requireEngine(t, "no Docker Engine: "+err.Error())
	}
	for _, ref := range []string{im.Postgres, im.Redis, im.GitLab, im.Runner} {
		if _, err := cli.ImageInspect(ctx, ref); err != nil {
			requireEngine(t, "image "+ref+" missing: "+err.Error())
		}
	}
	t.Cleanup(func() { cli.Close() })
	return cli, im
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// harness owns everything the test creates, all labelled io.forgebox.stack=<stack>.
type harness struct {
	t       *testing.T
	cli     *client.Client
	stack   string
	net     string
	subnet  netip.Prefix
	gateway netip.Addr
}

func (h *harness) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := h.cli.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", "io.forgebox.stack="+h.stack))})
	if err != nil {
		h.t.Logf("cleanup: %v", err)
	}
	for _, c := range list {
		if err := h.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			h.t.Logf("cleanup: %v", err)
		}
	}
	if err := h.cli.NetworkRemove(ctx, h.net); err != nil {
		h.t.Logf("cleanup: %v", err)
	}
}

func (h *harness) createNetwork(ctx context.Context) {
	h.t.Helper()
	if _, err := h.cli.NetworkCreate(ctx, h.net, network.CreateOptions{Driver: "bridge",
		Labels: map[string]string{"io.forgebox.stack": h.stack}}); err != nil {
		h.t.Fatal(err)
	}
	insp, err := h.cli.NetworkInspect(ctx, h.net, network.InspectOptions{})
	if err != nil || len(insp.IPAM.Config) == 0 {
		h.t.Fatalf("inspect network: %v %+v", err, insp.IPAM)
	}
	h.subnet = netip.MustParsePrefix(insp.IPAM.Config[0].Subnet)
	h.gateway = netip.MustParseAddr(insp.IPAM.Config[0].Gateway)
}

type spec struct {
	name, image, alias string
	env                []string
	binds              []string
	user               string
}

// start creates and starts a container on the test network; it returns its id and address.
func (h *harness) start(ctx context.Context, s spec) (string, string) {
	h.t.Helper()
	cfg := &container.Config{Image: s.image, Env: s.env, User: s.user,
		Labels: map[string]string{"io.forgebox.stack": h.stack}}
	hc := &container.HostConfig{Binds: s.binds}
	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{h.net: {}}}
	if s.alias != "" {
		nc.EndpointsConfig[h.net].Aliases = []string{s.alias}
	}
	c, err := h.cli.ContainerCreate(ctx, cfg, hc, nc, nil, h.stack+"-"+s.name)
	if err != nil {
		h.t.Fatalf("create %s: %v", s.name, err)
	}
	if err := h.cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		h.t.Fatalf("start %s: %v", s.name, err)
	}
	return c.ID, h.ip(ctx, c.ID)
}

// countEvents counts container events of one action since a time, filtered by labels.
func (h *harness) countEvents(ctx context.Context, since time.Time, action string, labels ...string) int {
	h.t.Helper()
	f := filters.NewArgs(filters.Arg("type", "container"), filters.Arg("event", action))
	for _, l := range labels {
		f.Add("label", l)
	}
	msgs, errs := h.cli.Events(ctx, events.ListOptions{Since: fmt.Sprint(since.Unix()), Until: fmt.Sprint(time.Now().Unix() + 1), Filters: f})
	n := 0
	for {
		select {
		case <-msgs:
			n++
		case err := <-errs:
			if err != nil && err != io.EOF {
				h.t.Fatalf("events: %v", err)
			}
			return n
		}
	}
}

func (h *harness) byName(ctx context.Context, name string) string {
	h.t.Helper()
	insp, err := h.cli.ContainerInspect(ctx, h.stack+"-"+name)
	if err != nil {
		h.t.Fatal(err)
	}
	return insp.ID
}

func (h *harness) ip(ctx context.Context, id string) string {
	h.t.Helper()
	insp, err := h.cli.ContainerInspect(ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	if ep := insp.NetworkSettings.Networks[h.net]; ep != nil {
		return ep.IPAddress
	}
	return ""
}

func (h *harness) logs(ctx context.Context, id string) string {
	rc, err := h.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return "logs: " + err.Error()
	}
	defer rc.Close()
	var b bytes.Buffer
	stdcopy.StdCopy(&b, &b, rc)
	return b.String()
}

// exitOf waits for a container to stop by itself and returns its exit code and log.
func (h *harness) exitOf(ctx context.Context, id string, within time.Duration) (int, string) {
	h.t.Helper()
	wctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	waitC, errC := h.cli.ContainerWait(wctx, id, container.WaitConditionNotRunning)
	select {
	case w := <-waitC:
		return int(w.StatusCode), h.logs(ctx, id)
	case err := <-errC:
		h.t.Fatalf("container did not exit within %s: %v\n%s", within, err, h.logs(ctx, id))
	}
	return 0, ""
}

// waitLog polls a container's whole log until it contains want n times.
func (h *harness) waitLog(ctx context.Context, id, want string, n int, within time.Duration) string {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for {
		l := h.logs(ctx, id)
		if strings.Count(l, want) >= n {
			return l
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("log does not show %q %d time(s) within %s:\n%s", want, n, within, l)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

type execResult struct {
	code           int
	stdout, stderr string
}

func (h *harness) exec(ctx context.Context, id, user string, cmd ...string) execResult {
	h.t.Helper()
	ex, err := h.cli.ContainerExecCreate(ctx, id, container.ExecOptions{User: user, Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		h.t.Fatalf("exec %v: %v", cmd, err)
	}
	att, err := h.cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		h.t.Fatalf("exec attach: %v", err)
	}
	defer att.Close()
	var out, errb bytes.Buffer
	stdcopy.StdCopy(&out, &errb, att.Reader)
	insp, err := h.cli.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		h.t.Fatal(err)
	}
	return execResult{insp.ExitCode, out.String(), errb.String()}
}

type httpResult struct {
	status int
	body   string
	header http.Header
}

func (r httpResult) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("response %d %q: %v", r.status, r.body, err)
	}
}

var httpc = &http.Client{Timeout: 10 * time.Second}

func call(t *testing.T, method, url, token, body string) httpResult {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("PRIVATE-TOKEN", token)
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return httpResult{status: -1, body: err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpResult{resp.StatusCode, string(b), resp.Header}
}

// waitHTTP polls until GET url answers want.
func waitHTTP(t *testing.T, url, token string, want int, within time.Duration) httpResult {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := call(t, "GET", url, token, "")
		if r.status == want {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %q, want %d within %s", url, r.status, r.body, want, within)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitPID1 waits until the container's PID 1 is comm (cat /proc/1/comm, as forgebox checks).
func (h *harness) waitPID1(ctx context.Context, id, comm string, within time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := h.exec(ctx, id, "", "cat", "/proc/1/comm")
		if strings.TrimSpace(r.stdout) == comm {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("PID 1 of %s is still %q after %s", id, strings.TrimSpace(r.stdout), within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func patScriptFor(name string, days int) string {
	return script(name, ":api, :create_runner", time.Now().UTC().AddDate(0, 0, days).Format("2006-01-02"))
}

// mintToken runs the sameersbn exec path and returns the token it printed.
func mintToken(t *testing.T, r execResult) string {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("admin-token exec: exit %d, stderr %q", r.code, r.stderr)
	}
	tok, ok := strings.CutPrefix(strings.TrimSpace(r.stdout), "FORGEBOX_TOKEN=")
	if !ok || !strings.HasPrefix(tok, "glpat-") || len(tok) < 26 {
		t.Fatalf("admin-token exec printed %q", r.stdout)
	}
	return tok
}

const runnerConfig = `concurrent = 1
check_interval = 0
shutdown_timeout = 30
log_level = "info"
listen_address = ":9252"

[session_server]
  session_timeout = 1800
%s`

const runnerEntry = `
[[runners]]
  name = "standin-e2e"
  url = "http://gitlab"
  id = %d
  token = "%s"
  token_obtained_at = 2026-01-01T00:00:00Z
  token_expires_at = 0001-01-01T00:00:00Z
  executor = "docker"
  clone_url = "http://gitlab"
  limit = 1
  environment = ["GIT_DEPTH=20"]
  [runners.cache]
    MaxUploadedArchiveSize = 0
  [runners.docker]
    image = "%[3]s"
    helper_image = "%[3]s"
    privileged = false
    tls_verify = false
    disable_cache = false
    volumes = ["/cache"]
    network_mode = "%[4]s"
    pull_policy = ["if-not-present"]
    shm_size = 0
    memory = "256m"
    cpus = "1"
`

// writeAtomic replaces a file the way forgebox does (temp file, rename), so the runner never
// reads half of it.
func writeAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

type fetchEntry struct {
	RemoteAddr string `json:"remote_addr"`
	UserAgent  string `json:"user_agent"`
	RunnerID   *int64 `json:"runner_id"`
	Host       string `json:"host"`
	Path       string `json:"path"`
}

func TestStandinsEndToEnd(t *testing.T) {
	cli, im := e2eSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	stack := "fbt-standin-" + randHex(4)
	h := &harness{t: t, cli: cli, stack: stack, net: stack}
	began := time.Now()
	t.Cleanup(h.cleanup)
	h.createNetwork(ctx)
	t.Logf("network %s, subnet %s, gateway %s", h.net, h.subnet, h.gateway)

	// PostgreSQL, provisioned here as forgebox would: role LOGIN NOSUPERUSER CREATEDB, a database
	// it owns with the three extensions, and a second one without them.
	suPass, rolePass := randHex(12), randHex(12)
	_, pgIP := h.start(ctx, spec{name: "postgres", image: im.Postgres, alias: "postgres", env: []string{"POSTGRES_PASSWORD=" + suPass}})
	_, redisIP := h.start(ctx, spec{name: "redis", image: im.Redis, alias: "redis"})
	su := connectPG(t, ctx, pgIP, "postgres", suPass, "postgres")
	for _, q := range []string{
		fmt.Sprintf(`CREATE ROLE gitlab LOGIN NOSUPERUSER CREATEDB PASSWORD '%s'`, rolePass),
		`CREATE DATABASE gitlabhq_production OWNER gitlab ENCODING 'UTF8' TEMPLATE template0`,
		`CREATE DATABASE noext OWNER gitlab ENCODING 'UTF8' TEMPLATE template0`,
	} {
		if _, err := su.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	su.Close(ctx)
	suDB := connectPG(t, ctx, pgIP, "postgres", suPass, "gitlabhq_production")
	for _, e := range []string{"pg_trgm", "btree_gist", "amcheck"} {
		if _, err := suDB.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS "+e); err != nil {
			t.Fatal(err)
		}
	}
	suDB.Close(ctx)
	t.Logf("postgres %s, redis %s provisioned", pgIP, redisIP)

	env := sameersbnEnv()
	env["DB_PASS"] = rolePass
	env["GITLAB_MONITORING_IP_WHITELIST"] = h.subnet.String()
	// FORGEBOX_STANDIN_BOOT_DELAY unset: the default 3 s, in which the exec path must refuse.
	envList := func(m map[string]string, drop string) []string {
		var out []string
		for k, v := range m {
			if k != drop {
				out = append(out, k+"="+v)
			}
		}
		return out
	}

	// Wiring mistakes make the stand-in exit 1, naming the problem in its log.
	id, _ := h.start(ctx, spec{name: "gitlab-nouser", image: im.GitLab, env: envList(env, "DB_USER")})
	if code, log := h.exitOf(ctx, id, 30*time.Second); code != 1 || !strings.Contains(log, "DB_USER is not set") {
		t.Fatalf("DB_USER unset: exit %d, log:\n%s", code, log)
	}
	noext := envList(env, "DB_NAME")
	noext = append(noext, "DB_NAME=noext")
	id, _ = h.start(ctx, spec{name: "gitlab-noext", image: im.GitLab, env: noext})
	if code, log := h.exitOf(ctx, id, 30*time.Second); code != 1 || !strings.Contains(log, `extensions missing in database "noext": pg_trgm, btree_gist, amcheck`) {
		t.Fatalf("extensions missing: exit %d, log:\n%s", code, log)
	}
	badPass := envList(env, "DB_PASS")
	badPass = append(badPass, "DB_PASS=wrong")
	id, _ = h.start(ctx, spec{name: "gitlab-badpass", image: im.GitLab, env: badPass})
	if code, log := h.exitOf(ctx, id, 30*time.Second); code != 1 || !strings.Contains(log, `PostgreSQL refused the login of role "gitlab"`) {
		t.Fatalf("wrong password: exit %d, log:\n%s", code, log)
	}

	// The sameersbn stand-in, wired right.
	glID, glIP := h.start(ctx, spec{name: "gitlab", image: im.GitLab, alias: "gitlab", env: envList(env, "")})
	base := "http://" + glIP
	pat := patScriptFor("forgebox-admin", 364)
	if r := h.exec(ctx, glID, "git", "bundle", "exec", "rails", "runner", "-e", "production", pat); r.code != 1 || !strings.Contains(r.stderr, "GitLab is not ready") {
		t.Errorf("exec while booting: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := call(t, "GET", base+"/api/v4/version", "", ""); r.status != 502 && r.status != -1 {
		t.Errorf("API while booting: %d %q", r.status, r.body)
	}
	// sameersbn's first boot restarts GitLab after gitlab:setup (restart.go): readiness may pass
	// before that, so wait for the restarted supervisord as PID 1, then for readiness.
	h.waitPID1(ctx, glID, "supervisord", 60*time.Second)
	ready := waitHTTP(t, base+"/-/readiness?all=1", "", 200, 60*time.Second)
	var rd map[string]any
	ready.json(t, &rd)
	if rd["status"] != "ok" || rd["db_check"] == nil || rd["cache_check"] == nil {
		t.Errorf("readiness ?all=1 = %s", ready.body)
	}
	if r := call(t, "GET", base+"/-/health", "", ""); r.status != 200 || r.body != "GitLab OK" {
		t.Errorf("health: %d %q", r.status, r.body)
	}
	if r := call(t, "GET", base+"/-/liveness", "", ""); r.status != 200 || !strings.Contains(r.body, `"ok"`) {
		t.Errorf("liveness: %d %q", r.status, r.body)
	}
	if banner := sshBanner(t, glIP+":22"); !strings.HasPrefix(banner, "SSH-2.0-") {
		t.Errorf("ssh banner %q", banner)
	}

	// The admin-token exec path: only as git, only the known script.
	if r := h.exec(ctx, glID, "", "bundle", "exec", "rails", "runner", "-e", "production", pat); r.code != 1 || !strings.Contains(r.stderr, "user git") {
		t.Errorf("exec as root: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := h.exec(ctx, glID, "git", "bundle", "exec", "rails", "runner", "-e", "production", "puts User.count"); r.code != 1 || !strings.Contains(r.stderr, "runs no other Ruby") {
		t.Errorf("other Ruby: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := h.exec(ctx, glID, "git", "bundle", "exec", "rails", "runner", pat); r.code != 1 {
		t.Errorf("without -e production: exit %d", r.code)
	}
	if r := h.exec(ctx, glID, "git", "bundle", "exec", "rails", "runner", "-e", "production", patScriptFor("x", 400)); r.code != 1 || !strings.Contains(r.stderr, "Expiration date") {
		t.Errorf("400-day token: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := h.exec(ctx, glID, "", "gitlab-rails", "runner", pat); r.code != 127 {
		t.Errorf("gitlab-rails in the sameersbn flavour: exit %d", r.code)
	}
	token := mintToken(t, h.exec(ctx, glID, "git", "bundle", "exec", "rails", "runner", "-e", "production", pat))

	// The API.
	if r := call(t, "GET", base+"/api/v4/version", "", ""); r.status != 401 {
		t.Errorf("version without token: %d", r.status)
	}
	if r := call(t, "GET", base+"/api/v4/version", "glpat-notatokenatall000", ""); r.status != 401 {
		t.Errorf("version with a wrong token: %d", r.status)
	}
	var ver struct{ Version, Revision string }
	call(t, "GET", base+"/api/v4/version", token, "").json(t, &ver)
	if ver.Version != "18.5.1" || ver.Revision != "standin" {
		t.Errorf("version %+v", ver)
	}
	var me struct {
		Username string `json:"username"`
		IsAdmin  bool   `json:"is_admin"`
	}
	call(t, "GET", base+"/api/v4/user", token, "").json(t, &me)
	if me.Username != "root" || !me.IsAdmin {
		t.Errorf("user %+v", me)
	}
	if r := call(t, "POST", base+"/api/v4/user/runners", token, `{"description":"x"}`); r.status != 400 || !strings.Contains(r.body, "runner_type is missing") {
		t.Errorf("runner without type: %d %s", r.status, r.body)
	}
	if r := call(t, "POST", base+"/api/v4/user/runners", token, `{"runner_type":"instance_type","run_untagged":false}`); r.status != 400 {
		t.Errorf("runner without tags nor untagged jobs: %d %s", r.status, r.body)
	}
	cr := call(t, "POST", base+"/api/v4/user/runners", token, `{"runner_type":"instance_type","description":"standin-e2e","tag_list":["docker","e2e"],"run_untagged":false}`)
	if cr.status != 201 {
		t.Fatalf("create runner: %d %s", cr.status, cr.body)
	}
	var created struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
	}
	cr.json(t, &created)
	if created.ID <= 0 || !strings.HasPrefix(created.Token, "glrt-") || len(created.Token) < 25 {
		t.Fatalf("created %+v", created)
	}
	if r := call(t, "POST", base+"/api/v4/runners/verify", "", fmt.Sprintf(`{"token":%q}`, created.Token)); r.status != 200 || !strings.Contains(r.body, fmt.Sprintf(`"id":%d`, created.ID)) {
		t.Errorf("verify: %d %s", r.status, r.body)
	}
	if r := call(t, "POST", base+"/api/v4/runners/verify", "", `{"token":"glrt-unknown00000000000"}`); r.status != 403 {
		t.Errorf("verify unknown: %d", r.status)
	}

	// The runner stand-in: config.toml in a mounted dir, the socket, the job on the network.
	cfgDir := t.TempDir()
	cfgPath := filepath.Join(cfgDir, "config.toml")
	entry := fmt.Sprintf(runnerEntry, created.ID, created.Token, im.Redis, h.net)
	writeAtomic(t, cfgPath, fmt.Sprintf(runnerConfig, entry))
	runID, runIP := h.start(ctx, spec{name: "runner", image: im.Runner,
		binds: []string{cfgDir + ":/etc/gitlab-runner", "/var/run/docker.sock:/var/run/docker.sock"}})
	want := fmt.Sprintf("standin-runner: runner %d job via http://gitlab on network %s: ok", created.ID, h.net)
	h.waitLog(ctx, runID, want, 1, 90*time.Second)
	var fetches []fetchEntry
	call(t, "GET", base+"/api/v4/standin/fetches", token, "").json(t, &fetches)
	if len(fetches) != 1 || fetches[0].RunnerID == nil || *fetches[0].RunnerID != created.ID || fetches[0].Host != "gitlab" ||
		fetches[0].Path != "/forgebox/standin-probe.git/info/refs" {
		t.Fatalf("fetch log %+v", fetches)
	}
	from := netip.MustParseAddr(fetches[0].RemoteAddr)
	if !h.subnet.Contains(from) || from.String() == runIP || from == h.gateway {
		t.Errorf("the fetch came from %s: want a job container on %s (runner %s, gateway %s)", from, h.subnet, runIP, h.gateway)
	}
	if r := call(t, "GET", "http://"+runIP+":9252/health/ready", "", ""); r.status != 200 || r.body != "ready" {
		t.Errorf("runner /health/ready: %d %q", r.status, r.body)
	}
	// The job container carried the runner's stack label (the engine's event log remembers it).
	if n := h.countEvents(ctx, began, "create", "io.forgebox.standin=runner-job", "io.forgebox.stack="+stack); n != 1 {
		t.Errorf("%d job containers created with io.forgebox.stack=%s, want 1", n, stack)
	}
	jobs, _ := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "io.forgebox.standin=runner-job"), filters.Arg("label", "io.forgebox.stack="+stack))})
	if len(jobs) != 0 {
		t.Errorf("job containers left behind: %d", len(jobs))
	}
	var details struct {
		ContactedAt *time.Time `json:"contacted_at"`
		Online      bool       `json:"online"`
		TagList     []string   `json:"tag_list"`
		RunUntagged bool       `json:"run_untagged"`
	}
	call(t, "GET", fmt.Sprintf("%s/api/v4/runners/%d", base, created.ID), token, "").json(t, &details)
	if details.ContactedAt == nil || !details.Online || strings.Join(details.TagList, ",") != "docker,e2e" || details.RunUntagged {
		t.Errorf("runner details %+v", details)
	}

	// A restarted runner remembers the job it ran (state file) and does not repeat it.
	if err := cli.ContainerRestart(ctx, runID, container.StopOptions{Timeout: ptr(5)}); err != nil {
		t.Fatal(err)
	}
	h.waitLog(ctx, runID, fmt.Sprintf("runner %d (standin-e2e) verified", created.ID), 2, 30*time.Second)
	time.Sleep(4 * time.Second)
	call(t, "GET", base+"/api/v4/standin/fetches", token, "").json(t, &fetches)
	if l := h.logs(ctx, runID); len(fetches) != 1 || strings.Count(l, " job via ") != 1 {
		t.Errorf("the job ran again after a restart: %d fetches, log:\n%s", len(fetches), l)
	}

	// A config with an unknown key is refused by key; the previous one stays in force.
	writeAtomic(t, cfgPath, fmt.Sprintf(runnerConfig, strings.Replace(entry, "network_mode", "netwrk_mode", 1)))
	h.waitLog(ctx, runID, "unknown key(s): runners.docker.netwrk_mode; keeping the previous configuration", 1, 15*time.Second)
	if r := call(t, "GET", "http://"+runIP+":9252/health/ready", "", ""); r.status != 200 {
		t.Errorf("ready after a bad config: %d", r.status)
	}
	// Removing the [[runners]] entry stops handling it.
	writeAtomic(t, cfgPath, fmt.Sprintf(runnerConfig, ""))
	h.waitLog(ctx, runID, fmt.Sprintf("runner %d (standin-e2e) removed from config.toml", created.ID), 1, 15*time.Second)
	if r := call(t, "GET", "http://"+runIP+":9252/health/ready", "", ""); r.status != 503 {
		t.Errorf("ready with no runner: %d", r.status)
	}

	// Runner admin API.
	up := call(t, "PUT", fmt.Sprintf("%s/api/v4/runners/%d", base, created.ID), token, `{"tag_list":["docker","nas"],"run_untagged":true,"description":"renamed"}`)
	if up.status != 200 || !strings.Contains(up.body, `"tag_list":["docker","nas"]`) || !strings.Contains(up.body, `"run_untagged":true`) {
		t.Errorf("update runner: %d %s", up.status, up.body)
	}
	var list []struct {
		ID          int64  `json:"id"`
		Description string `json:"description"`
		IsShared    bool   `json:"is_shared"`
	}
	all := call(t, "GET", base+"/api/v4/runners/all?type=instance_type&tag_list=nas", token, "")
	all.json(t, &list)
	if len(list) != 1 || list[0].ID != created.ID || list[0].Description != "renamed" || !list[0].IsShared || all.header.Get("X-Total") != "1" {
		t.Errorf("runners/all: %s", all.body)
	}
	if r := call(t, "GET", base+"/api/v4/runners/all?tag_list=other", token, ""); r.body != "[]\n" {
		t.Errorf("runners/all?tag_list=other: %s", r.body)
	}

	// DELETE /runners with the runner's own token (client-go sends it in the query string).
	cr2 := call(t, "POST", base+"/api/v4/user/runners", token, `{"runner_type":"instance_type","description":"second","tag_list":"a, b"}`)
	var second struct{ Token string }
	cr2.json(t, &second)
	if r := call(t, "DELETE", base+"/api/v4/runners?token="+second.Token, "", ""); r.status != 204 {
		t.Errorf("unregister by token: %d %s", r.status, r.body)
	}
	if r := call(t, "DELETE", base+"/api/v4/runners", "", fmt.Sprintf(`{"token":%q}`, second.Token)); r.status != 403 {
		t.Errorf("unregister an unknown token: %d %s", r.status, r.body)
	}

	// Readiness ?all=1 fails while Redis is down (the plain check, like GitLab's, does not look).
	redisID := h.byName(ctx, "redis")
	if err := cli.ContainerStop(ctx, redisID, container.StopOptions{Timeout: ptr(2)}); err != nil {
		t.Fatal(err)
	}
	if r := call(t, "GET", base+"/-/readiness?all=1", "", ""); r.status != 503 || !strings.Contains(r.body, `"cache_check":[{"status":"failed"`) {
		t.Errorf("readiness with Redis down: %d %s", r.status, r.body)
	}
	if r := call(t, "GET", base+"/-/readiness", "", ""); r.status != 200 {
		t.Errorf("plain readiness with Redis down: %d %s", r.status, r.body)
	}
	if err := cli.ContainerStart(ctx, redisID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitHTTP(t, base+"/-/readiness?all=1", "", 200, 30*time.Second)

	// A restart keeps runners and tokens (they live in PostgreSQL).
	if err := cli.ContainerRestart(ctx, glID, container.StopOptions{Timeout: ptr(5)}); err != nil {
		t.Fatal(err)
	}
	glIP = h.ip(ctx, glID)
	base = "http://" + glIP
	waitHTTP(t, base+"/-/readiness", "", 200, 60*time.Second)
	if r := call(t, "GET", fmt.Sprintf("%s/api/v4/runners/%d", base, created.ID), token, ""); r.status != 200 || !strings.Contains(r.body, `"description":"renamed"`) {
		t.Errorf("runner after restart: %d %s", r.status, r.body)
	}

	// The Omnibus flavour on the same database: the token and the runner survive recreation;
	// the monitoring allowlist here leaves the host out, so the health endpoints answer 404.
	if err := cli.ContainerRemove(ctx, glID, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	omni := fmt.Sprintf(`external_url 'http://gitlab.example.test:8929'
postgresql['enable'] = false
redis['enable'] = false
gitlab_rails['db_host'] = 'postgres'
gitlab_rails['db_port'] = 5432
gitlab_rails['db_username'] = 'gitlab'
gitlab_rails['db_password'] = '%s'
gitlab_rails['db_database'] = 'gitlabhq_production'
gitlab_rails['redis_host'] = 'redis'
gitlab_rails['redis_port'] = 6379
gitlab_rails['initial_root_password'] = 'correct-horse-battery'
gitlab_rails['gitlab_shell_ssh_port'] = 2224
gitlab_rails['monitoring_whitelist'] = ['127.0.0.0/8', '192.0.2.0/24']
`, rolePass)
	omID, omIP := h.start(ctx, spec{name: "gitlab-omnibus", image: im.GitLab, alias: "gitlab",
		env: []string{"GITLAB_OMNIBUS_CONFIG=" + omni, "FORGEBOX_STANDIN_BOOT_DELAY=1s", "FORGEBOX_STANDIN_VERSION=19.2.0"}})
	obase := "http://" + omIP + ":8929"
	r := waitHTTP(t, obase+"/api/v4/version", token, 200, 60*time.Second)
	if !strings.Contains(r.body, `"version":"19.2.0"`) {
		t.Errorf("omnibus version: %s", r.body)
	}
	for _, p := range []string{"/-/readiness", "/-/readiness?all=1", "/-/liveness", "/-/health"} {
		if r := call(t, "GET", obase+p, "", ""); r.status != 404 {
			t.Errorf("%s from outside the allowlist: %d %q", p, r.status, r.body)
		}
	}
	if r := call(t, "GET", fmt.Sprintf("%s/api/v4/runners/%d", obase, created.ID), token, ""); r.status != 200 {
		t.Errorf("runner after recreation as omnibus: %d", r.status)
	}
	if r := h.exec(ctx, omID, "git", "bundle", "exec", "rails", "runner", "-e", "production", pat); r.code != 127 {
		t.Errorf("bundle in the omnibus flavour: exit %d", r.code)
	}
	if r := h.exec(ctx, omID, "git", "gitlab-rails", "runner", pat); r.code != 1 || !strings.Contains(r.stderr, "root") {
		t.Errorf("gitlab-rails as git: exit %d %q", r.code, r.stderr)
	}
	token2 := mintToken(t, h.exec(ctx, omID, "", "gitlab-rails", "runner", patScriptFor("forgebox-admin-2", 30)))
	if r := call(t, "GET", obase+"/api/v4/user", token2, ""); r.status != 200 {
		t.Errorf("omnibus-minted token: %d", r.status)
	}
	if r := call(t, "DELETE", fmt.Sprintf("%s/api/v4/runners/%d", obase, created.ID), token2, ""); r.status != 204 {
		t.Errorf("delete runner: %d %s", r.status, r.body)
	}
	if r := call(t, "DELETE", fmt.Sprintf("%s/api/v4/runners/%d", obase, created.ID), token2, ""); r.status != 404 {
		t.Errorf("delete runner again: %d", r.status)
	}
	if r := call(t, "POST", obase+"/api/v4/runners/verify", "", fmt.Sprintf(`{"token":%q}`, created.Token)); r.status != 403 {
		t.Errorf("verify a deleted runner: %d", r.status)
	}
}

func ptr[T any](v T) *T { return &v }

func connectPG(t *testing.T, ctx context.Context, host, user, pass, db string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig("sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.Database = host, 5432, user, pass, db
	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		conn, err := pgx.ConnectConfig(cctx, cfg)
		cancel()
		if err == nil {
			return conn
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect to PostgreSQL at %s: %v", host, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func sshBanner(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return line
}
