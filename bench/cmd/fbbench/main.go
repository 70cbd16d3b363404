// Command fbbench compares forgebox with Docker Compose v2 on the same stack, on the local
// engine with the local test images (real PostgreSQL and Redis; contract stand-ins for GitLab and
// GitLab Runner, so GitLab figures here are stand-in figures). bench/run.sh builds everything and
// runs it; see bench/README.md.
//
// Scenarios, each timed as the wall-clock time of one command, several runs, median reported:
//
//	cold       from nothing (no containers, no network, empty data dir) to healthy:
//	           forgebox up  vs  docker compose up -d --wait
//	converged  the stack is as configured:          forgebox up  vs  docker compose up -d
//	image      Redis's image tag moved to another image (a retag):
//	           forgebox up  vs  docker compose up -d --wait
//	status     forgebox status  vs  docker compose ps
//
// Compose runs the file `forgebox export compose` writes for the same config. Engine API requests
// are counted by a proxy socket in front of the engine, by the process that sent them, for both
// tools alike. It also reports the controller's idle resident memory and the binary and SPK sizes.
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "fbbench: "+format+"\n", args...)
}

func fatalf(format string, args ...any) {
	logf(format, args...)
	if cleanupFn != nil {
		cleanupFn()
	}
	os.Exit(1)
}

var cleanupFn func()

type bench struct {
	forgebox, compose string
	work, dataDir     string
	cfgPath           string
	composeDir        string
	name              string
	proxy             *countingProxy
	env               []string // children's environment: DOCKER_HOST is the proxy
	redisRef          string   // the tag the config names for Redis, moved between two images
	redisImages       [2]string
	redisVariant      string // the second image's own tag
	gitlabPort        int
}

// sample is one timed command.
type sample struct {
	d     time.Duration
	calls int
}

type series []sample

func (s series) median() time.Duration {
	ds := make([]time.Duration, len(s))
	for i, x := range s {
		ds[i] = x.d
	}
	slices.Sort(ds)
	if len(ds) == 0 {
		return 0
	}
	if len(ds)%2 == 1 {
		return ds[len(ds)/2]
	}
	return (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
}

func (s series) medianCalls() int {
	cs := make([]int, len(s))
	for i, x := range s {
		cs[i] = x.calls
	}
	slices.Sort(cs)
	if len(cs) == 0 {
		return 0
	}
	return cs[len(cs)/2]
}

func (s series) String() string {
	var parts []string
	for _, x := range s {
		parts = append(parts, fmt.Sprintf("%s/%d", round(x.d), x.calls))
	}
	return strings.Join(parts, " ")
}

func round(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	default:
		return d.Round(100 * time.Microsecond).String()
	}
}

func main() {
	b := &bench{}
	flag.StringVar(&b.forgebox, "forgebox", "", "the forgebox binary to measure")
	flag.StringVar(&b.compose, "compose", "", "the Docker Compose v2 binary (docker-compose)")
	cold := flag.Int("cold", 3, "runs of the cold scenario (each tool)")
	runs := flag.Int("runs", 5, "runs of the converged and image scenarios")
	statusRuns := flag.Int("status-runs", 10, "runs of the status scenario")
	dist := flag.String("dist", "dist", "where ./build.sh put the binaries and SPKs")
	out := flag.String("out", "", "also write the report (markdown) to this file")
	flag.Parse()
	if b.forgebox == "" || b.compose == "" {
		fatalf("-forgebox and -compose are required (bench/run.sh passes them)")
	}
	images := map[string]string{}
	for _, k := range []string{"POSTGRES", "REDIS", "GITLAB", "RUNNER"} {
		images[k] = os.Getenv("FORGEBOX_TEST_" + k + "_IMAGE")
		if images[k] == "" {
			fatalf("FORGEBOX_TEST_%s_IMAGE is not set: eval \"$(bash testimages/build.sh)\" first", k)
		}
	}

	var err error
	b.work, err = os.MkdirTemp("/var/tmp", "fbbench-")
	if err != nil {
		fatalf("%v", err)
	}
	b.name = "fbbench-" + randHex(3)
	b.dataDir = filepath.Join(b.work, "data")
	b.composeDir = filepath.Join(b.work, "compose")
	upstream := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
		upstream = strings.TrimPrefix(h, "unix://")
	}
	b.proxy, err = startProxy(filepath.Join(b.work, "docker.sock"), upstream)
	if err != nil {
		fatalf("proxy: %v", err)
	}
	b.env = append(os.Environ(), "DOCKER_HOST=unix://"+b.proxy.path)
	cleanupFn = b.cleanup
	defer b.cleanup()

	b.prepareImages(images["REDIS"])
	b.gitlabPort = freePort()
	b.writeConfig(images)
	logf("stack %s, work dir %s, load before: %s", b.name, b.work, loadavg())

	r := report{started: time.Now(), load: []string{loadavg()}}
	// forgebox first: its first cold run makes the network whose subnet the export pins.
	r.fbCold = b.repeat(*cold, "forgebox cold up", func(i int) { b.wipe() }, func() (sample, []byte) {
		return b.run(b.forgebox, "--config", b.cfgPath, "up")
	}, "stack is up")
	b.mustRun(b.forgebox, "--config", b.cfgPath, "export", "compose", "--output", b.composeDir, "--force")
	r.fbConverged = b.repeat(*runs, "forgebox up (converged)", nil, func() (sample, []byte) {
		return b.run(b.forgebox, "--config", b.cfgPath, "up")
	}, "nothing to do")
	r.fbImage = b.repeat(*runs, "forgebox up (redis image changed)", func(i int) { b.retag(i + 1) }, func() (sample, []byte) {
		return b.run(b.forgebox, "--config", b.cfgPath, "up")
	}, "recreate redis")
	r.fbStatus = b.repeat(*statusRuns, "forgebox status", nil, func() (sample, []byte) {
		return b.run(b.forgebox, "--config", b.cfgPath, "status")
	}, "running")
	r.rssKiB, r.idleCallsPerMin = b.controllerIdle()
	b.mustRun(b.forgebox, "--config", b.cfgPath, "down")
	b.retag(0)

	composeArgs := func(a ...string) []string {
		return append([]string{"--project-directory", b.composeDir, "-f", filepath.Join(b.composeDir, "compose.yaml")}, a...)
	}
	if out, err := exec.Command(b.compose, composeArgs("config", "--quiet")...).CombinedOutput(); err != nil {
		fatalf("docker compose config refuses the exported file: %v\n%s", err, out)
	}
	var ready series
	r.cmCold = b.repeat(*cold, "compose up -d --wait (cold)", func(i int) { b.wipe() }, func() (sample, []byte) {
		start := time.Now()
		s, out := b.run(b.compose, composeArgs("up", "-d", "--wait")...)
		// Compose's --wait ends when GitLab runs: its image has no healthcheck. forgebox waits
		// for GitLab's readiness check, so time that too, from the same start.
		if err := b.waitGitLabReady(2 * time.Minute); err != nil {
			fatalf("GitLab (stand-in) under Compose never became ready: %v\n%s", err, b.logs("gitlab"))
		}
		ready = append(ready, sample{d: time.Since(start), calls: s.calls})
		return s, out
	}, "")
	r.cmColdReady = ready
	r.cmConverged = b.repeat(*runs, "compose up -d (converged)", nil, func() (sample, []byte) {
		return b.run(b.compose, composeArgs("up", "-d")...)
	}, "")
	r.cmImage = b.repeat(*runs, "compose up -d --wait (redis image changed)", func(i int) { b.retag(i + 1) }, func() (sample, []byte) {
		return b.run(b.compose, composeArgs("up", "-d", "--wait")...)
	}, "")
	r.cmStatus = b.repeat(*statusRuns, "compose ps", nil, func() (sample, []byte) {
		return b.run(b.compose, composeArgs("ps")...)
	}, "Up ")
	b.mustRun(b.compose, composeArgs("down")...)

	r.load = append(r.load, loadavg())
	r.sizes = sizes(*dist, b.forgebox, b.compose)
	text := r.markdown()
	fmt.Print(text)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(text), 0o644); err != nil {
			fatalf("%v", err)
		}
	}
}

// repeat runs one scenario n times: prep before each (untimed), then the timed command, whose
// output must contain want.
func (b *bench) repeat(n int, what string, prep func(i int), timed func() (sample, []byte), want string) series {
	var s series
	for i := range n {
		if prep != nil {
			prep(i)
		}
		x, out := timed()
		if want != "" && !bytes.Contains(out, []byte(want)) {
			fatalf("%s, run %d: output lacks %q:\n%s", what, i+1, want, out)
		}
		logf("%-44s run %d: %8s, %3d API calls", what, i+1, round(x.d), x.calls)
		s = append(s, x)
	}
	return s
}

// run times one command and counts the Engine API requests it made.
func (b *bench) run(bin string, args ...string) (sample, []byte) {
	cmd := exec.Command(bin, args...)
	cmd.Env = b.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fatalf("%s: %v", bin, err)
	}
	err := cmd.Wait()
	d := time.Since(start)
	if err != nil {
		fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out.Bytes())
	}
	return sample{d: d, calls: b.proxy.calls(cmd.Process.Pid)}, out.Bytes()
}

func (b *bench) mustRun(bin string, args ...string) []byte {
	_, out := b.run(bin, args...)
	return out
}

// docker runs the docker CLI on the engine itself (not through the proxy: untimed set-up).
func docker(args ...string) string {
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// prepareImages makes a second Redis image (the same files, one label more) and points the
// stack's Redis tag at the first: the image scenario moves the tag between them, as a pull of a
// new version would.
func (b *bench) prepareImages(redis string) {
	b.redisRef = "forgebox-bench/redis:" + b.name
	ctr := docker("create", redis)
	variant := "forgebox-bench/redis:" + b.name + "-b"
	docker("commit", "--change", "LABEL io.forgebox.bench.variant=b", ctr, variant)
	docker("rm", ctr)
	b.redisImages = [2]string{docker("image", "inspect", "-f", "{{.Id}}", redis), docker("image", "inspect", "-f", "{{.Id}}", variant)}
	b.redisVariant = variant
	b.retag(0)
}

func (b *bench) retag(i int) { docker("tag", b.redisImages[i%2], b.redisRef) }

func (b *bench) writeConfig(images map[string]string) {
	cfg := fmt.Sprintf(`version = 1
[stack]
name = %q
data_dir = %q
pull_policy = "never"
[postgres]
image = %q
[redis]
image = %q
[gitlab]
image = %q
host = "forgebox-bench.example"
http_port = %d
ssh_port = %d
[runner]
image = %q
[[runner.profiles]]
name = "default"
image = %q
tags = ["docker"]
run_untagged = true
`, b.name, b.dataDir, images["POSTGRES"], b.redisRef, images["GITLAB"], b.gitlabPort, freePort(), images["RUNNER"], images["REDIS"])
	b.cfgPath = filepath.Join(b.work, "forgebox.toml")
	if err := os.WriteFile(b.cfgPath, []byte(cfg), 0o644); err != nil {
		fatalf("%v", err)
	}
}

// wipe takes the stack back to nothing: no containers, no network, no data.
func (b *bench) wipe() {
	if err := b.removeStack(); err != nil {
		fatalf("%v", err)
	}
	if err := os.RemoveAll(b.dataDir); err != nil {
		fatalf("%v", err)
	}
}

// removeStack removes whatever either tool left of the stack, by its label.
func (b *bench) removeStack() error {
	for _, kind := range []string{"container", "network"} {
		out, err := exec.Command("docker", kind, "ls", "-aq", "--filter", "label=io.forgebox.stack="+b.name).Output()
		if kind == "network" {
			out, err = exec.Command("docker", kind, "ls", "-q", "--filter", "label=io.forgebox.stack="+b.name).Output()
		}
		if err != nil {
			return fmt.Errorf("list %ss: %w", kind, err)
		}
		ids := strings.Fields(string(out))
		if len(ids) == 0 {
			continue
		}
		args := append([]string{kind, "rm"}, ids...)
		if kind == "container" {
			args = append([]string{kind, "rm", "-f"}, ids...)
		}
		if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// cleanup leaves nothing behind: the stack, the bench's image tags, the work dir, the proxy.
func (b *bench) cleanup() {
	if b.work == "" {
		return
	}
	work := b.work
	b.work = ""
	if err := b.removeStack(); err != nil {
		logf("cleanup: %v", err)
	}
	for _, tag := range []string{b.redisRef, b.redisVariant} {
		if tag != "" {
			exec.Command("docker", "rmi", tag).Run()
		}
	}
	if b.proxy != nil {
		b.proxy.close()
	}
	os.RemoveAll(work)
}

func (b *bench) logs(component string) string {
	out, _ := exec.Command("docker", "logs", "--tail", "20", b.name+"-"+component).CombinedOutput()
	return string(out)
}

// waitGitLabReady polls the GitLab stand-in's readiness check as forgebox does (the host's address
// on the internal network is in its monitoring allowlist).
func (b *bench) waitGitLabReady(limit time.Duration) error {
	ip := docker("inspect", "-f", `{{(index .NetworkSettings.Networks "`+b.name+`-internal").IPAddress}}`, b.name+"-gitlab")
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		resp, err := client.Get("http://" + ip + "/-/readiness?all=1")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return last
}

// controllerIdle runs `forgebox serve` on the converged stack, lets it settle, and reads its
// resident memory and how many Engine API requests it makes per minute while nobody watches.
func (b *bench) controllerIdle() (rssKiB int, callsPerMin float64) {
	cmd := exec.Command(b.forgebox, "--config", b.cfgPath, "serve", "--listen", "127.0.0.1:"+strconv.Itoa(freePort()))
	cmd.Env = b.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		fatalf("serve: %v", err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
		}
	}()
	time.Sleep(15 * time.Second)
	if cmd.ProcessState != nil {
		fatalf("forgebox serve exited:\n%s", out.Bytes())
	}
	b.proxy.calls(cmd.Process.Pid)
	const window = 30 * time.Second
	time.Sleep(window)
	calls := b.proxy.calls(cmd.Process.Pid)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		fatalf("serve: %v", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rssKiB, _ = strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
	logf("forgebox serve: VmRSS %d KiB after %s idle, %d API calls in %s", rssKiB, 15*time.Second+window, calls, window)
	return rssKiB, float64(calls) / window.Minutes()
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("%v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

type sizeRow struct {
	what  string
	bytes int64
}

// sizes reports the release binaries and the newest SPK per DSM arch in dist, and the binaries
// measured.
func sizes(dist, forgebox, compose string) []sizeRow {
	var rows []sizeRow
	add := func(what, path string) {
		if fi, err := os.Stat(path); err == nil {
			rows = append(rows, sizeRow{what, fi.Size()})
		}
	}
	for _, arch := range []string{"amd64", "arm64"} {
		add("dist/forgebox-linux-"+arch, filepath.Join(dist, "forgebox-linux-"+arch))
	}
	for _, arch := range []string{"x86_64", "armv8"} {
		matches, _ := filepath.Glob(filepath.Join(dist, "forgebox-*-"+arch+".spk"))
		slices.SortFunc(matches, func(a, b string) int {
			fa, _ := os.Stat(a)
			fb, _ := os.Stat(b)
			return fb.ModTime().Compare(fa.ModTime())
		})
		if len(matches) > 0 {
			add("dist/"+filepath.Base(matches[0]), matches[0])
		}
	}
	add("docker-compose (as built here, for reference)", compose)
	return rows
}

type report struct {
	started                                   time.Time
	load                                      []string
	fbCold, fbConverged, fbImage, fbStatus    series
	cmCold, cmColdReady, cmConverged, cmImage series
	cmStatus                                  series
	rssKiB                                    int
	idleCallsPerMin                           float64
	sizes                                     []sizeRow
}

func ratio(a, b time.Duration) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", float64(a)/float64(b))
}

func (r report) markdown() string {
	var w strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&w, "Run %s on %s: %s, %d cores, %s; Docker Engine %s; %s; %s.\n",
		r.started.UTC().Format("2006-01-02 15:04 MST"), host, cpuModel(), runtime.NumCPU(), memTotal(),
		dockerVersion(), kernel(), composeVersionNote())
	fmt.Fprintf(&w, "Load average (1, 5, 15 min) before: %s; after: %s.\n\n", r.load[0], r.load[len(r.load)-1])
	w.WriteString("| operation | forgebox | Compose | forgebox / Compose | Engine API calls (forgebox / Compose) | runs |\n")
	w.WriteString("|---|---:|---:|---:|---:|---:|\n")
	row := func(op string, fb, cm series, note string) {
		fmt.Fprintf(&w, "| %s | %s | %s | %s | %d / %d | %d / %d%s |\n", op, round(fb.median()), round(cm.median()),
			ratio(fb.median(), cm.median()), fb.medianCalls(), cm.medianCalls(), len(fb), len(cm), note)
	}
	row("cold: nothing to healthy (`up` vs `up -d --wait`)", r.fbCold, r.cmCold, "")
	row("cold: nothing to GitLab ready (Compose: `up -d --wait`, then GitLab's readiness check)", r.fbCold, r.cmColdReady, "")
	row("converged stack (`up` vs `up -d`)", r.fbConverged, r.cmConverged, "")
	row("Redis image changed (`up` vs `up -d --wait`)", r.fbImage, r.cmImage, "")
	row("status (`status` vs `ps`)", r.fbStatus, r.cmStatus, "")
	w.WriteString("\nMedians of wall-clock time per command; API calls are the median count of Engine API requests the\n")
	w.WriteString("command itself sent (counted at a proxy socket by process). Each sample (time/calls):\n\n")
	for _, s := range []struct {
		name string
		s    series
	}{
		{"forgebox cold", r.fbCold}, {"compose cold", r.cmCold}, {"compose cold to GitLab ready", r.cmColdReady},
		{"forgebox converged", r.fbConverged}, {"compose converged", r.cmConverged},
		{"forgebox image", r.fbImage}, {"compose image", r.cmImage},
		{"forgebox status", r.fbStatus}, {"compose ps", r.cmStatus},
	} {
		fmt.Fprintf(&w, "- %s: %s\n", s.name, s.s)
	}
	conv := float64(r.cmConverged.median()) / float64(max(r.fbConverged.median(), 1))
	fmt.Fprintf(&w, "\nGoal, converged stack at least 5x faster than `up -d`: %s (%.1fx).\n", met(conv >= 5), conv)
	fmt.Fprintf(&w, "Goal, cold converge no slower than `up -d --wait`: %s (forgebox / Compose %s; to GitLab ready %s).\n\n",
		met(r.fbCold.median() <= r.cmCold.median()), ratio(r.fbCold.median(), r.cmCold.median()), ratio(r.fbCold.median(), r.cmColdReady.median()))
	fmt.Fprintf(&w, "Controller (`forgebox serve`) idle on the converged stack: VmRSS %.1f MiB after 45 s; %.0f Engine API calls per minute.\n\n",
		float64(r.rssKiB)/1024, r.idleCallsPerMin)
	w.WriteString("| file | size |\n|---|---:|\n")
	for _, s := range r.sizes {
		fmt.Fprintf(&w, "| %s | %.1f MiB (%d bytes) |\n", s.what, float64(s.bytes)/(1<<20), s.bytes)
	}
	return w.String()
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return runtime.GOARCH
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return fmt.Sprintf("%.0f GiB RAM", float64(kb)/(1<<20))
		}
	}
	return "?"
}

func dockerVersion() string {
	out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

func kernel() string {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return "?"
	}
	var b strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return "Linux " + b.String()
}

var composeVersion string

func composeVersionNote() string { return "Docker Compose " + composeVersion }

func init() {
	composeVersion = os.Getenv("FORGEBOX_BENCH_COMPOSE_VERSION")
	if composeVersion == "" {
		composeVersion = "(version unknown)"
	}
}
