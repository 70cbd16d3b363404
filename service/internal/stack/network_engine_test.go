package stack_test

// What a CI job can reach, on the real engine. Job containers are started by the runner
// stand-in from config.toml, as the real runner's docker executor does (network_mode); GitLab is
// the GitLab stand-in. A pass shows the networks are wired so; not that a real GitLab ran.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/gitlab"
	"github.com/forgebox/forgebox/service/internal/pgprov"
	"github.com/forgebox/forgebox/service/internal/stack"
)

// probeScript runs inside a job container (any image with bash, coreutils and getent). Its
// arguments: GitLab's HTTP port, names to resolve, "--", then host:port targets to connect to.
// Every result is one "PROBE ..." line in the job's trace.
const probeScript = `
gl_port=$1; shift
names=()
while [ "$#" -gt 0 ] && [ "$1" != -- ]; do names+=("$1"); shift; done
shift
http() {
  local line
  line=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/gitlab/$1"; printf "GET %s HTTP/1.0\r\nHost: gitlab\r\n\r\n" "$2" >&3; head -n1 <&3' _ "$gl_port" "$1" 2>/dev/null | tr -d '\r')
  set -- "$1" $line
  echo "PROBE HTTP $1 -> ${3:-no answer}"
}
http "/forgebox/probe.git/info/refs?service=git-upload-pack"
http "/-/metrics"
http "/-/readiness"
banner=$(timeout 5 bash -c 'exec 3<>/dev/tcp/gitlab/22; head -n1 <&3' 2>/dev/null | tr -d '\r')
echo "PROBE SSH ${banner:-no banner}"
for n in "${names[@]}"; do
  if getent hosts "$n" >/dev/null; then echo "PROBE RESOLVES $n"; else echo "PROBE NORESOLVE $n"; fi
done
for t in "$@"; do
  ( if timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "${t%:*}" "${t##*:}" 2>/dev/null; then echo "PROBE OPEN $t"; else echo "PROBE CLOSED $t"; fi ) &
done
wait
echo "PROBE END"
`

func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// startControllerStandIn runs a container in the controller's place: what matters here is only
// that something listens in it. Like the DSM package's controller, it starts on a network of its
// own (the default bridge) and up attaches it to the stack.
func startControllerStandIn(t *testing.T, f *fixture, name string, port int) {
	docker(t, "run", "-d", "--name", name, "--entrypoint", "redis-server", f.cfg.Redis.Image,
		"--port", fmt.Sprint(port), "--protected-mode", "no")
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })
}

// standin calls the GitLab stand-in's API as root, from the host.
func (f *fixture) standin(ctx context.Context, method, path string, body string) (int, []byte) {
	f.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(ctx, method, f.gitlabURL(ctx)+path, r)
	req.Header.Set("PRIVATE-TOKEN", f.adminToken())
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// runJobs makes one pipeline of the given jobs (name -> tags, each running script), waits until
// every job has finished and returns each job's trace and the runner that ran it.
func (f *fixture) runJobs(ctx context.Context, script []string, tags map[string][]string) map[string]jobResult {
	f.t.Helper()
	type jobIn struct {
		Name   string   `json:"name"`
		Stage  string   `json:"stage"`
		Tags   []string `json:"tags"`
		Script []string `json:"script"`
	}
	var jobs []jobIn
	for name, tg := range tags {
		jobs = append(jobs, jobIn{Name: name, Stage: "test", Tags: tg, Script: script})
	}
	body, _ := json.Marshal(map[string]any{"project": "demo/isolation", "ref": "main", "commit_title": "probe", "jobs": jobs})
	code, b := f.standin(ctx, http.MethodPost, "/api/v4/standin/pipelines", string(body))
	if code != http.StatusCreated {
		f.t.Fatalf("stand-in pipeline: %d %s", code, b)
	}
	var created struct {
		Project struct {
			ID int64 `json:"id"`
		} `json:"project"`
		Jobs []struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(b, &created); err != nil {
		f.t.Fatal(err)
	}
	out := map[string]jobResult{}
	deadline := time.Now().Add(4 * time.Minute)
	for _, j := range created.Jobs {
		for {
			var det struct {
				Status string `json:"status"`
				Runner *struct {
					Description string `json:"description"`
				} `json:"runner"`
			}
			code, b := f.standin(ctx, http.MethodGet, fmt.Sprintf("/api/v4/projects/%d/jobs/%d", created.Project.ID, j.ID), "")
			if code != http.StatusOK {
				f.t.Fatalf("job %d: %d %s", j.ID, code, b)
			}
			json.Unmarshal(b, &det)
			if det.Status == "success" || det.Status == "failed" || det.Status == "canceled" {
				_, trace := f.standin(ctx, http.MethodGet, fmt.Sprintf("/api/v4/projects/%d/jobs/%d/trace", created.Project.ID, j.ID), "")
				r := jobResult{status: det.Status, trace: string(trace)}
				if det.Runner != nil {
					r.runner = det.Runner.Description
				}
				out[j.Name] = r
				break
			}
			if time.Now().After(deadline) {
				f.t.Fatalf("job %s is still %s", j.Name, det.Status)
			}
			// Polling an API that has no push: the job's own end is the event waited on.
			time.Sleep(500 * time.Millisecond)
		}
	}
	return out
}

type jobResult struct {
	status, trace, runner string
}

func TestCIJobsReachGitLabAndNothingElseOfTheStack(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	base := f.cfg.Runner.Profiles[0]
	base.Tags, base.RunUntagged = []string{"docker"}, false
	build := base
	build.Name, build.Tags = "build", []string{"build"}
	f.cfg.Runner.Profiles = []config.Profile{base, build}
	jobs := map[string][]string{"default": {"docker"}, "build": {"build"}}
	// A privileged profile too, where this engine can start a privileged container at all
	// (inside an unprivileged container it cannot: "unable to apply caps"). A privileged job
	// owns the host anyway; the network shown here is all that keeps it from the stack.
	if err := exec.Command("docker", "run", "--rm", "--privileged", "--entrypoint", "true", f.cfg.Redis.Image).Run(); err == nil {
		priv := base
		priv.Name, priv.Tags, priv.Privileged = "privileged", []string{"privileged"}, true
		f.cfg.Runner.Profiles = append(f.cfg.Runner.Profiles, priv)
		jobs["privileged"] = []string{"privileged"}
	} else {
		t.Logf("NOT SHOWN: a privileged profile's job: this engine cannot start a privileged container (%v)", err)
	}

	ctl := f.cfg.Stack.Name + "-controller"
	const ctlPort = 8470
	startControllerStandIn(t, f, ctl, ctlPort)
	t.Setenv(stack.ControllerContainerEnv, ctl)

	f.up(ctx)

	// The networks as they should be.
	internal, ok, err := f.eng.FindNetwork(ctx, f.cfg.Stack.Name, f.cfg.NetworkName())
	if err != nil || !ok {
		t.Fatalf("internal network: %v %v", ok, err)
	}
	if !internal.Internal {
		t.Errorf("network %s is not internal on this engine", internal.Name)
	}
	inspect := func(name string) map[string]string {
		det, err := f.eng.Inspect(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return det.IPs
	}
	ctlIPs := inspect(ctl)
	if _, on := ctlIPs[f.cfg.NetworkName()]; !on {
		t.Errorf("the controller is not on the internal network: %v", ctlIPs)
	}
	if _, on := ctlIPs[f.cfg.JobsNetworkName()]; on {
		t.Errorf("the controller is on the jobs network: %v", ctlIPs)
	}

	// Everything a job must not open a connection to: by service alias, by container name and
	// by every address the container has.
	var names, forbidden []string
	for _, x := range []struct {
		alias, container string
		port             int
	}{
		{"redis", f.cfg.Stack.Name + "-redis", 6379},
		{"postgres", f.cfg.Stack.Name + "-postgres", 5432},
		{"", ctl, ctlPort},
	} {
		for _, n := range []string{x.alias, x.container} {
			if n != "" {
				names = append(names, n)
				forbidden = append(forbidden, fmt.Sprintf("%s:%d", n, x.port))
			}
		}
		for _, ip := range inspect(x.container) {
			if ip != "" {
				forbidden = append(forbidden, fmt.Sprintf("%s:%d", ip, x.port))
			}
		}
	}
	port := 80
	if f.cfg.GitLab.Flavour == "omnibus" {
		port = f.cfg.GitLab.HTTPPort
	}
	args := append([]string{fmt.Sprint(port), "gitlab"}, names...)
	args = append(append(args, "--"), forbidden...)
	// The same targets from the host, through each address: so a CLOSED in a job means the
	// network, not a service that was down.
	script := []string{
		"echo " + base64.StdEncoding.EncodeToString([]byte(probeScript)) + " | base64 -d > /tmp/probe.sh",
		"bash /tmp/probe.sh " + strings.Join(args, " "),
	}
	results := f.runJobs(ctx, script, jobs)
	if len(results) != len(f.cfg.Runner.Profiles) {
		t.Fatalf("%d job results for %d profiles", len(results), len(f.cfg.Runner.Profiles))
	}

	for profile, r := range results {
		t.Run(profile, func(t *testing.T) {
			if want := f.cfg.Stack.Name + "-" + profile; r.runner != "" && r.runner != want {
				t.Errorf("ran on runner %q, want %q", r.runner, want)
			}
			if r.status != "success" || !strings.Contains(r.trace, "PROBE END") {
				t.Fatalf("job %s:\n%s", r.status, r.trace)
			}
			lines := probeLines(r.trace)
			want := []string{
				"PROBE HTTP /forgebox/probe.git/info/refs?service=git-upload-pack -> 200",
				"PROBE HTTP /-/metrics -> 404",
				"PROBE HTTP /-/readiness -> 404",
				"PROBE RESOLVES gitlab",
			}
			for _, n := range names {
				want = append(want, "PROBE NORESOLVE "+n)
			}
			for _, target := range forbidden {
				want = append(want, "PROBE CLOSED "+target)
			}
			for _, w := range want {
				if !slices.Contains(lines, w) {
					t.Errorf("missing %q", w)
				}
			}
			if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "PROBE SSH SSH-2.0-") }) {
				t.Errorf("no SSH banner from gitlab:22")
			}
			for _, l := range lines {
				if strings.HasPrefix(l, "PROBE OPEN") {
					t.Errorf("a job opened a connection it must not: %s", l)
				}
			}
			if t.Failed() {
				t.Logf("trace:\n%s", r.trace)
			}
		})
	}

	checkPgHBA(ctx, t, f)

	// The same connections from the host succeed: a CLOSED in a job is the network's doing,
	// not a service that was down. (PostgreSQL and Redis by address; the host resolves no
	// container names.)
	for _, target := range forbidden {
		host, p, _ := strings.Cut(target, ":")
		if strings.Count(host, ".") != 3 {
			continue
		}
		if err := dialOnce(host, p); err != nil {
			t.Errorf("the host cannot reach %s either (%v): the probe proves nothing", target, err)
		}
	}
}

func probeLines(trace string) []string {
	var out []string
	for _, l := range strings.Split(trace, "\n") {
		l = strings.TrimRight(l, "\r")
		if i := strings.Index(l, "PROBE "); i >= 0 && !strings.Contains(l, "$ ") {
			out = append(out, l[i:])
		}
	}
	return out
}

func dialOnce(host, port string) error {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 3*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// singleNetworkLayout makes the stack as forgebox made it before the split: one network,
// <stack>-net, with every component on it under its alias, GitLab's allowlist that network's
// subnet, PostgreSQL with the image's own pg_hba.conf. It returns the old network's name.
func singleNetworkLayout(ctx context.Context, t *testing.T, f *fixture) string {
	t.Helper()
	old := f.cfg.Stack.Name + "-net"
	if _, err := f.eng.CreateNetwork(ctx, f.cfg.Stack.Name, old, nil); err != nil {
		t.Fatal(err)
	}
	nw, _, err := f.eng.FindNetwork(ctx, f.cfg.Stack.Name, old)
	if err != nil || len(nw.Subnets) == 0 {
		t.Fatalf("old network: %+v %v", nw, err)
	}
	d, err := stack.Build(f.cfg, f.secrets, "single-network", stack.Env{Subnet: nw.Subnets[0], Host: f.cfg.GitLab.Host})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range d.Components {
		spec := c.Spec
		spec.Network, spec.Networks = old, nil
		if c.Name == "postgres" {
			spec.Cmd = nil
			spec.Binds = spec.Binds[:1] // the data directory only
		}
		delete(spec.Labels, "io.forgebox.files")
		spec.Labels[engine.LabelSpecHash] = stack.SpecHash(spec)
		for _, dir := range c.Dirs {
			if err := os.MkdirAll(dir.Path, dir.Mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(dir.Path, dir.Mode)
		}
		id, err := f.eng.Create(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.eng.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		switch c.Name {
		case "postgres":
			// Setting up the old layout, not the thing under test: wait on a login rather
			// than on Docker's healthcheck, which a loaded machine can time out.
			det, err := f.eng.Inspect(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			super, _ := f.secrets.Get(config.SecretPostgresSuperuser)
			role, _ := f.secrets.Get(config.SecretPostgresGitLab)
			target := pgprov.Target{Host: det.IPs[old], Port: 5432, Superuser: f.cfg.Postgres.Superuser, SuperPassword: super,
				Role: stack.GitLabRole, RolePassword: role, Database: stack.GitLabDatabase, Extensions: pgprov.Extensions}
			for deadline := time.Now().Add(10 * time.Minute); ; {
				pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err := pgprov.Ping(pctx, target)
				cancel()
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("old-layout PostgreSQL does not answer: %v", err)
				}
				time.Sleep(time.Second)
			}
			pctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			_, err = pgprov.Provision(pctx, target)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
		case "gitlab":
			det, err := f.eng.Inspect(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			waitReady(ctx, t, "http://"+det.IPs[old])
		}
	}
	return old
}

// waitReady waits for GitLab's readiness check to pass.
func waitReady(ctx context.Context, t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		err := gitlab.Readiness(ctx, base)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GitLab at %s not ready: %v", base, err)
		}
		time.Sleep(time.Second)
	}
}

func TestSingleNetworkStackConvergesToTheSplitWithItsData(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	old := singleNetworkLayout(ctx, t, f)

	// Data written into GitLab's database while the old layout runs.
	marker := fmt.Sprintf("made on %s", old)
	conn := f.gitlabConnOn(ctx, old)
	if _, err := conn.Exec(ctx, `CREATE TABLE forgebox_marker (note text)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO forgebox_marker VALUES ($1)`, marker); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	secretsBefore := map[string]string{}
	for _, n := range f.secrets.Names() {
		secretsBefore[n], _ = f.secrets.Get(n)
	}

	plan := f.up(ctx)
	text := plan.String()
	for _, c := range []string{"postgres", "redis", "gitlab", "runner"} {
		if !strings.Contains(text, "recreate "+c+": it runs on "+old) {
			t.Errorf("plan does not move %s off %s:\n%s", c, old, text)
		}
	}
	if !strings.Contains(text, "remove-network "+old) {
		t.Errorf("plan does not remove %s:\n%s", old, text)
	}
	if _, ok, _ := f.eng.FindNetwork(ctx, f.cfg.Stack.Name, old); ok {
		t.Errorf("network %s is still there", old)
	}
	for _, c := range []string{"postgres", "redis", "gitlab", "runner"} {
		det, err := f.eng.Inspect(ctx, f.cfg.Stack.Name+"-"+c)
		if err != nil {
			t.Fatal(err)
		}
		var nets []string
		for n := range det.IPs {
			nets = append(nets, n)
		}
		slices.Sort(nets)
		want := map[string][]string{
			"postgres": {f.cfg.NetworkName()}, "redis": {f.cfg.NetworkName()},
			"gitlab": {f.cfg.NetworkName(), f.cfg.JobsNetworkName()}, "runner": {f.cfg.JobsNetworkName()},
		}[c]
		slices.Sort(want)
		if !slices.Equal(nets, want) {
			t.Errorf("%s on %v, want %v", c, nets, want)
		}
	}

	// The data and every secret are as they were.
	var note string
	if err := f.gitlabConn(ctx).QueryRow(ctx, `SELECT note FROM forgebox_marker`).Scan(&note); err != nil || note != marker {
		t.Errorf("marker row after the move: %q, %v", note, err)
	}
	for n, v := range secretsBefore {
		if now, _ := f.secrets.Get(n); now != v {
			t.Errorf("secret %s changed in the move", n)
		}
	}
	f.waitJobFetches(ctx, []int64{f.records()["default"].ID})
	if plan := f.up(ctx); !plan.Empty() {
		t.Errorf("second up planned:\n%s", plan)
	}
}

// gitlabConnOn logs in as GitLab does, to PostgreSQL's address on the given network.
func (f *fixture) gitlabConnOn(ctx context.Context, network string) *pgx.Conn {
	f.t.Helper()
	det, err := f.eng.Inspect(ctx, f.cfg.Stack.Name+"-postgres")
	if err != nil {
		f.t.Fatal(err)
	}
	pw, _ := f.secrets.Get(config.SecretPostgresGitLab)
	u := url.URL{Scheme: "postgres", User: url.UserPassword(stack.GitLabRole, pw), Host: net.JoinHostPort(det.IPs[network], "5432"),
		Path: "/" + stack.GitLabDatabase, RawQuery: "sslmode=disable"}
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		f.t.Fatalf("connect as gitlab on %s: %v", network, err)
	}
	return conn
}

// checkRedisPassword: with Omnibus, Redis refuses a client without the password (the GitLab
// stand-in, which connects with AUTH, is up), and the password is in no process's command line.
func checkRedisPassword(ctx context.Context, t *testing.T, f *fixture) {
	t.Helper()
	pw, ok := f.secrets.Get(config.SecretRedisPassword)
	if !ok || len(pw) < 16 {
		t.Fatalf("no Redis password in the secret store")
	}
	if got := redisPing(t, f.ip(ctx, "redis")); !strings.HasPrefix(got, "-NOAUTH") {
		t.Errorf("PING without AUTH: %q, want -NOAUTH", got)
	}
	for _, c := range []string{"redis", "gitlab"} {
		// ps of the container's processes, as the host's process list shows them.
		out := docker(t, "top", f.cfg.Stack.Name+"-"+c, "-eo", "pid,args")
		if strings.Contains(out, pw) {
			t.Errorf("the Redis password is in %s's process list:\n%s", c, out)
		}
	}
}

// checkPgHBA: a client outside the internal network's subnet that can route to PostgreSQL (a
// network attached just for this) is refused by pg_hba.conf, whatever its password.
func checkPgHBA(ctx context.Context, t *testing.T, f *fixture) {
	t.Helper()
	probe := f.cfg.Stack.Name + "-hbaprobe"
	docker(t, "network", "create", probe)
	t.Cleanup(func() { exec.Command("docker", "network", "rm", probe).Run() })
	pg := f.cfg.Stack.Name + "-postgres"
	docker(t, "network", "connect", probe, pg)
	defer exec.Command("docker", "network", "disconnect", probe, pg).Run()
	det, err := f.eng.Inspect(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := f.secrets.Get(config.SecretPostgresGitLab)
	out, err := exec.Command("docker", "run", "--rm", "--network", probe, "-e", "PGPASSWORD="+pw, "--entrypoint", "psql", f.cfg.Postgres.Image,
		"-h", det.IPs[probe], "-U", stack.GitLabRole, "-d", stack.GitLabDatabase, "-tAc", "select 1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no pg_hba.conf entry") {
		t.Errorf("a login from outside the internal subnet: %v: %s", err, out)
	}
}
