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
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
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
  echo "PROBE HTTP $1 -> ${line:-no answer}"
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
	priv := base
	priv.Name, priv.Tags, priv.Privileged = "privileged", []string{"privileged"}, true
	f.cfg.Runner.Profiles = []config.Profile{base, build, priv}

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
	results := f.runJobs(ctx, script, map[string][]string{"default": {"docker"}, "build": {"build"}, "privileged": {"privileged"}})

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
				"PROBE HTTP /forgebox/probe.git/info/refs?service=git-upload-pack -> HTTP/1.1 200 OK",
				"PROBE HTTP /-/metrics -> HTTP/1.1 404 Not Found",
				"PROBE HTTP /-/readiness -> HTTP/1.1 404 Not Found",
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
