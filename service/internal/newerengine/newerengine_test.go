package newerengine_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/versions"

	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/testenv"
)

// The suites run on the newer engine: the adapter itself and the stack it drives, the parts that
// speak the Engine API. Each is a package's own test binary, run unchanged.
var suites = []string{
	"github.com/forgebox/forgebox/service/internal/engine",
	"github.com/forgebox/forgebox/service/internal/stack",
}

// DSM's floor, the API a pinned client is held at.
const pinned = engine.MinAPIVersion

// dockerd (debug) logs each request it serves as "Calling <METHOD> <path>"; the path carries the
// API version the client chose, unless the client sent none (the ping).
var callLine = regexp.MustCompile(`Calling (GET|HEAD|POST|PUT|DELETE) /v([0-9]+\.[0-9]+)/(\S*)`)

func TestSuitesOnTheNewerEngine(t *testing.T) {
	dir := os.Getenv("FORGEBOX_NEWER_ENGINE")
	if dir == "" {
		testenv.Cannot(t, `FORGEBOX_NEWER_ENGINE is not set: eval "$(bash testimages/newer-engine.sh)" provides Debian trixie's dockerd`)
	}
	dockerd := filepath.Join(dir, "dockerd")
	if _, err := os.Stat(dockerd); err != nil {
		testenv.Cannot(t, "no newer dockerd: "+err.Error()+` (eval "$(bash testimages/newer-engine.sh)")`)
	}
	im := testenv.TestImages(t)

	// Compiled first: a build error shows before any daemon starts.
	bins := t.TempDir()
	type suite struct{ name, bin, dir string }
	var built []suite
	for _, pkg := range suites {
		name := filepath.Base(pkg)
		bin := filepath.Join(bins, name+".test")
		if out, err := exec.Command("go", "test", "-c", "-tags", "forgebox_testhooks", "-o", bin, pkg).CombinedOutput(); err != nil {
			t.Fatalf("go test -c %s: %v\n%s", pkg, err, out)
		}
		// A test binary runs in its package's source dir (testdata), as go test runs it.
		src, err := exec.Command("go", "list", "-f", "{{.Dir}}", pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		built = append(built, suite{name, bin, strings.TrimSpace(string(src))})
	}

	// The daemon finds trixie's containerd, runc, docker-proxy and docker-init first on its PATH.
	// It runs as an engine on a NAS does, inside its own network namespace: with its default
	// bridge (the engine suite publishes ports from containers on the default network, which
	// without a bridge is "none" and publishes nothing) and its iptables rules (the isolation
	// between networks that keeps CI jobs from the stack's other containers is made of them;
	// iptables tables are the namespace's own). Every request is logged (debug).
	pe := testenv.StartPrivateEngine(t, testenv.PrivateEngineOptions{
		Dockerd: dockerd,
		Env:     []string{"PATH=" + dir + ":" + os.Getenv("PATH")},
		Args:    []string{"--bridge=docker0", "--iptables=true", "--ip-forward=true", "--log-level=debug"},
	})
	out, err := exec.Command("docker", "-H", pe.Host(), "version", "--format",
		"{{.Server.Version}} {{.Server.APIVersion}}").CombinedOutput()
	if err != nil {
		t.Fatalf("docker version on the newer engine: %v\n%s", err, out)
	}
	server := strings.Fields(string(out))
	if len(server) != 2 || !versions.GreaterThan(server[1], pinned) {
		t.Fatalf("the newer engine says %q: want an API newer than %s", out, pinned)
	}
	serverAPI := server[1]
	info, _ := exec.Command("docker", "-H", pe.Host(), "info", "--format",
		"containerd {{.ContainerdCommit.ID}}, runc {{.RuncCommit.ID}}").Output()
	t.Logf("newer engine: Docker %s, API %s, %s", server[0], serverAPI, strings.TrimSpace(string(info)))
	pe.Load(im.Postgres, im.Redis, im.GitLab, im.Runner)

	for _, mode := range []struct{ name, apiVersion string }{{"negotiated", ""}, {"pinned-" + pinned, pinned}} {
		for _, s := range built {
			t.Run(mode.name+"/"+s.name, func(t *testing.T) {
				from := logSize(t, pe.LogPath())
				start := time.Now()
				out, err := runSuite(t, pe, s.bin, s.dir, mode.apiVersion)
				took := time.Since(start).Round(time.Second)
				pass, fail, skip := counts(out)
				t.Logf("%s, client %s: %d passed, %d failed, %d skipped in %s", s.name,
					cmp(mode.apiVersion, "negotiating"), pass, fail, skip, took)
				if err != nil {
					t.Errorf("the %s suite failed on Docker %s (API %s, client %s): %v\n%s", s.name, server[0], serverAPI,
						cmp(mode.apiVersion, "negotiating"), err, failures(out))
				}
				if pass == 0 {
					t.Errorf("the %s suite ran no test", s.name)
				}
				strictPaths = nil
				used, strict := apiVersionsUsed(t, pe.LogPath(), from)
				t.Logf("API versions of the calls the engine served: %v", used)
				switch mode.apiVersion {
				case "":
					// forgebox negotiates up to the engine's newest; the docker CLI the tests use
					// for setup (20.10) may stay at its own newest, 1.41.
					if used[serverAPI] == 0 {
						t.Errorf("no call at the engine's API %s while negotiating: %v", serverAPI, used)
					}
				default:
					for v, n := range strict {
						if v != mode.apiVersion {
							t.Errorf("%d calls at API %s (not the runner stand-in's job client's kinds) with the client pinned to %s: %q", n, v, mode.apiVersion, strictPaths)
						}
					}
					if used[mode.apiVersion] == 0 {
						t.Errorf("no call at the pinned API %s", mode.apiVersion)
					}
				}
			})
		}
	}
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return "pinned to " + s
}

// runSuite runs a compiled test binary inside the engine's network namespace (its published
// ports are there), pointed at that engine and, when apiVersion is set, pinned to it.
func runSuite(t *testing.T, pe *testenv.PrivateEngine, bin, dir, apiVersion string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	args := append(pe.NetnsPrefix(), bin, "-test.count=1", "-test.v", "-test.timeout=20m")
	if run := os.Getenv("FORGEBOX_NEWER_ENGINE_RUN"); run != "" {
		// Only these tests of each suite (a -run pattern), to look into one failure.
		args = append(args, "-test.run", run)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "DOCKER_")
	})
	cmd.Env = append(cmd.Env, "DOCKER_HOST="+pe.Host())
	if apiVersion != "" {
		cmd.Env = append(cmd.Env, "DOCKER_API_VERSION="+apiVersion)
	}
	out, err := cmd.CombinedOutput()
	// The whole output stays for a look (a failed run shows only its failures).
	log := filepath.Join(os.TempDir(), fmt.Sprintf("forgebox-newer-engine-%s-%s.log", filepath.Base(bin), strings.ReplaceAll(cmp(apiVersion, "negotiated"), "pinned to ", "pinned-")))
	if werr := os.WriteFile(log, out, 0o644); werr == nil {
		t.Logf("output: %s", log)
	}
	return string(out), err
}

// counts reads go test -v's verdicts on top-level tests.
func counts(out string) (pass, fail, skip int) {
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "--- PASS: "):
			pass++
		case strings.HasPrefix(line, "--- FAIL: "):
			fail++
		case strings.HasPrefix(line, "--- SKIP: "):
			skip++
		}
	}
	return
}

// failures is what a failed run says: the output of every test that failed (go test -v prints
// a test's log under its "=== RUN/CONT/NAME" header, its verdict later), and the end.
func failures(out string) string {
	lines := strings.Split(out, "\n")
	per := map[string][]string{}
	var failed []string
	current := ""
	for _, line := range lines {
		trimmed := strings.TrimSpace(line)
		for _, h := range []string{"=== RUN ", "=== CONT ", "=== NAME ", "=== PAUSE "} {
			if strings.HasPrefix(trimmed, h) {
				current = strings.TrimSpace(strings.TrimPrefix(trimmed, h))
			}
		}
		if name, ok := strings.CutPrefix(trimmed, "--- FAIL: "); ok {
			name, _, _ = strings.Cut(name, " ")
			failed = append(failed, name)
			continue
		}
		per[current] = append(per[current], line)
	}
	var b strings.Builder
	for _, name := range failed {
		fmt.Fprintf(&b, "--- FAIL: %s\n%s\n", name, strings.Join(per[name], "\n"))
	}
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	fmt.Fprintf(&b, "... end of output:\n%s", strings.Join(lines, "\n"))
	return b.String()
}

func logSize(t *testing.T, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// apiVersionsUsed counts the engine's served calls by API version, from offset on in its log;
// strict counts only the calls the runner stand-in's job client never makes (see below).
func apiVersionsUsed(t *testing.T, path string, offset int64) (used, strict map[string]int) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	used, strict = map[string]int{}, map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(b[offset:]))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := callLine.FindStringSubmatch(sc.Text()); m != nil {
			used[m[2]]++
			if !jobClientPath(m[3]) {
				strict[m[2]]++
				if len(strictPaths) < 20 {
					strictPaths = append(strictPaths, m[2]+" "+m[1]+" "+m[3])
				}
			}
		}
	}
	return used, strict
}

// jobClientPath: the runner stand-in starts CI jobs with a Docker client of its own, inside the
// runner's container, which negotiates as gitlab-runner does and is not pinned by the test's
// DOCKER_API_VERSION. It calls only containers/..., images/... and info; forgebox's own calls
// on the other endpoints (networks, events, version, ...) must all be pinned.
var strictPaths []string

func jobClientPath(p string) bool {
	p = strings.TrimSuffix(p, `"`) // the log line quotes the message
	return strings.HasPrefix(p, "containers/") || strings.HasPrefix(p, "images/") || p == "info" || strings.HasPrefix(p, "info?")
}
