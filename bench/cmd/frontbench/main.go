// Command frontbench measures what the Synology package's app window costs (bench/README.md,
// "The DSM app window"): the p50 and p99 of GET api/v1/status straight to the controller and
// through index.cgi, run as DSM's web server runs it (one process per request, with stand-ins
// of DSM's authenticate.cgi and id), for the small front binary and for the whole forgebox
// binary; and how many Engine API requests the idle controller makes per minute with nobody
// watching, counted at a proxy socket in front of the engine. Not a test.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Stand-ins of DSM's tools (the same contract as service/internal/dsm/standins_test.go):
// authenticate.cgi prints the user of the session the cookie names when QUERY_STRING carries
// that session's SynoToken (DSM guide, Application Authentication); id -Gn lists the groups.
const authenticateCGI = `#!/bin/sh
case "$HTTP_COOKIE" in
*id=admin-session*) [ "$QUERY_STRING" = "SynoToken=tok-admin" ] && echo admin ;;
esac
exit 0
`
const idTool = `#!/bin/sh
[ "$1" = "-Gn" ] && [ "$2" = "admin" ] && echo "users administrators"
`

func main() {
	forgebox := flag.String("forgebox", "", "the forgebox binary (controller, and index.cgi by its name)")
	cgiBin := flag.String("cgi", "", "the small front binary (forgebox-cgi)")
	goStart := flag.String("gostart", "", "a Go program that does nothing (bench/cmd/gostart), built as forgebox-cgi is: the Go runtime's start")
	n := flag.Int("n", 300, "requests per way")
	idle := flag.Duration("idle", time.Minute, "idle window for the Engine API count")
	image := flag.String("image", os.Getenv("FORGEBOX_TEST_REDIS_IMAGE"), "image of the stand-in stack containers")
	containers := flag.Int("containers", 4, "running containers labelled as the stack's, as on a converged stack")
	flag.Parse()
	if *forgebox == "" || *cgiBin == "" {
		fatal("give -forgebox and -cgi")
	}
	root, err := os.MkdirTemp("", "frontbench-")
	check(err)
	defer os.RemoveAll(root)
	pkg := filepath.Join(root, "var/packages/forgebox")
	varDir := filepath.Join(pkg, "var")
	share := filepath.Join(root, "volume1/forgebox")
	for _, d := range []string{varDir, share, filepath.Join(pkg, "shares"), filepath.Join(root, "tools"), filepath.Join(root, "ui")} {
		check(os.MkdirAll(d, 0o755))
	}
	check(os.Symlink(share, filepath.Join(pkg, "shares/forgebox")))
	auth, id := filepath.Join(root, "tools/authenticate.cgi"), filepath.Join(root, "tools/id")
	check(os.WriteFile(auth, []byte(authenticateCGI), 0o755))
	check(os.WriteFile(id, []byte(idTool), 0o755))
	// The whole binary answers as a CGI by the name index.cgi, as the package had it.
	fullCGI := filepath.Join(root, "ui/index.cgi")
	check(os.Link(abs(*forgebox), fullCGI))

	// The config: the defaults with this root's paths and a stack name of its own.
	def, err := exec.Command(*forgebox, "config", "default").Output()
	check(err)
	cfg := regexp.MustCompile(`(?m)^data_dir = .*$`).ReplaceAllString(string(def), `data_dir = "`+filepath.Join(varDir, "data")+`"`)
	cfg = regexp.MustCompile(`(?m)^share_dir = .*$`).ReplaceAllString(cfg, `share_dir = "`+filepath.Join(pkg, "shares/forgebox")+`"`)
	cfg = regexp.MustCompile(`(?m)^name = "forgebox"$`).ReplaceAllString(cfg, `name = "frontbench`+strconv.Itoa(os.Getpid()%10000)+`"`)
	cfgPath := filepath.Join(varDir, "forgebox.toml")
	check(os.WriteFile(cfgPath, []byte(cfg), 0o644))
	// Containers the controller takes for its stack's (by its labels): what it watches and
	// samples on a converged stack, without bringing one up.
	stackName := regexp.MustCompile(`(?m)^name = "(frontbench[0-9]+)"$`).FindStringSubmatch(cfg)[1]
	if *containers > 0 && *image == "" {
		fatal("-containers needs -image (or FORGEBOX_TEST_REDIS_IMAGE)")
	}
	for i, comp := range []string{"postgres", "redis", "gitlab", "runner", "extra"}[:min(*containers, 5)] {
		name := fmt.Sprintf("%s-%s", stackName, comp)
		out, err := exec.Command("docker", "run", "-d", "--name", name, "--label", "io.forgebox.stack="+stackName,
			"--label", "io.forgebox.component="+comp, *image).CombinedOutput()
		if err != nil {
			fatal(fmt.Sprintf("container %d: %v %s", i, err, out))
		}
		defer exec.Command("docker", "rm", "-f", name).Run()
	}

	sock := filepath.Join(root, "docker.sock")
	calls := startProxy(sock, "/var/run/docker.sock")
	port := freePort()
	ctrlURL := "http://127.0.0.1:" + strconv.Itoa(port)
	serve := exec.Command(*forgebox, "--config", cfgPath, "serve", "--listen", "127.0.0.1:"+strconv.Itoa(port))
	serve.Env = append(os.Environ(), "DOCKER_HOST=unix://"+sock)
	var serveOut bytes.Buffer
	serve.Stdout, serve.Stderr = &serveOut, &serveOut
	check(serve.Start())
	defer func() { serve.Process.Signal(syscall.SIGTERM); serve.Wait() }()
	secretPath := filepath.Join(varDir, "data/front.secret")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(secretPath); err == nil {
			if r, err := http.Get(ctrlURL + "/healthz"); err == nil {
				r.Body.Close()
				break
			}
		}
		if time.Now().After(deadline) {
			fatal("the controller did not start:\n" + serveOut.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Idle first: nobody has asked for the status yet, as with no app window open.
	time.Sleep(15 * time.Second)
	before := calls.Load()
	time.Sleep(*idle)
	idleCalls := calls.Load() - before
	perMin := float64(idleCalls) / idle.Minutes()

	secret, err := os.ReadFile(secretPath)
	check(err)
	client := &http.Client{Timeout: 30 * time.Second}
	direct := measure(*n, func() error {
		req, _ := http.NewRequest("GET", ctrlURL+"/api/v1/status", nil)
		req.Header.Set("X-Forgebox-Front-Secret", strings.TrimSpace(string(secret)))
		req.Header.Set("X-Forgebox-User", "admin")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("direct: %s", resp.Status)
		}
		return nil
	})
	env := append(os.Environ(), "GATEWAY_INTERFACE=CGI/1.1", "REQUEST_METHOD=GET", "SERVER_PROTOCOL=HTTP/1.1",
		"SCRIPT_NAME=/webman/3rdparty/forgebox/index.cgi", "PATH_INFO=/api/v1/status",
		"REQUEST_URI=/webman/3rdparty/forgebox/index.cgi/api/v1/status", "QUERY_STRING=", "HTTP_HOST=nas.example:5001",
		"REMOTE_ADDR=192.0.2.7", "HTTP_COOKIE=id=admin-session", "HTTP_X_SYNO_TOKEN=tok-admin",
		"FORGEBOX_DSM_PKGROOT="+pkg, "FORGEBOX_CONTROLLER_URL="+ctrlURL,
		"FORGEBOX_DSM_AUTHENTICATE_CGI="+auth, "FORGEBOX_DSM_LOGIN_CGI=/nonexistent", "FORGEBOX_DSM_ID="+id)
	var cpu []time.Duration // user+system time of the CGI process and the tools it waited for
	// fresh: a new DSM session each request, so index.cgi asks authenticate.cgi and id every
	// time (a POST, or the first GET of a session); otherwise one session, which index.cgi
	// remembers for its GETs (front.SessionTTL).
	seq := 0
	viaCGI := func(bin string, fresh bool) func() error {
		cpu = nil
		return func() error {
			cmd := exec.Command(bin)
			cmd.Env = env
			if fresh {
				seq++
				cmd.Env = append(slices.Clone(env), fmt.Sprintf("HTTP_COOKIE=id=admin-session-%d", seq))
			}
			out, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("%s: %v", bin, err)
			}
			cpu = append(cpu, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
			if !bytes.HasPrefix(out, []byte("Status: 200")) {
				return fmt.Errorf("%s answered %q", bin, out[:min(len(out), 200)])
			}
			return nil
		}
	}
	// What starting any process costs on this machine now, to read the rest against.
	trueBin, err := exec.LookPath("true")
	check(err)
	baseline := measure(*n, func() error { return exec.Command(trueBin).Run() })
	var goBaseline [2]time.Duration
	if *goStart != "" {
		goBaseline = measure(*n, func() error { return exec.Command(abs(*goStart)).Run() })
	}
	small := measure(*n, viaCGI(abs(*cgiBin), false))
	smallCPU := p50(cpu)
	smallFresh := measure(*n, viaCGI(abs(*cgiBin), true))
	smallFreshCPU := p50(cpu)
	full := measure(*n, viaCGI(fullCGI, true))
	fullCPU := p50(cpu)
	load, _ := os.ReadFile("/proc/loadavg")

	fi, _ := os.Stat(*cgiBin)
	ff, _ := os.Stat(*forgebox)
	fmt.Printf("GET api/v1/status, %d requests each way, sequential:\n\n", *n)
	fmt.Printf("| way | p50 | p99 | added p50 | CPU per request (p50) |\n|---|---|---|---|---|\n")
	fmt.Printf("| direct to the controller | %s | %s | - | - |\n", ms(direct[0]), ms(direct[1]))
	fmt.Printf("| (baseline: start and wait for %s) | %s | %s | - | - |\n", trueBin, ms(baseline[0]), ms(baseline[1]))
	if *goStart != "" {
		fmt.Printf("| (baseline: start and wait for a Go program that does nothing) | %s | %s | - | - |\n", ms(goBaseline[0]), ms(goBaseline[1]))
	}
	fmt.Printf("| index.cgi: forgebox-cgi (%.1f MiB), session remembered (the window's polls) | %s | %s | %s | %s |\n", mib(fi.Size()), ms(small[0]), ms(small[1]), ms(small[0]-direct[0]), ms(smallCPU))
	fmt.Printf("| index.cgi: forgebox-cgi, DSM asked each time (authenticate.cgi, id) | %s | %s | %s | %s |\n", ms(smallFresh[0]), ms(smallFresh[1]), ms(smallFresh[0]-direct[0]), ms(smallFreshCPU))
	fmt.Printf("| index.cgi: the forgebox binary (%.1f MiB), DSM asked each time | %s | %s | %s | %s |\n\n", mib(ff.Size()), ms(full[0]), ms(full[1]), ms(full[0]-direct[0]), ms(fullCPU))
	fmt.Printf("Load average at the end: %s", load)
	fmt.Printf("Idle controller, nobody watching, %d running stack containers: %d Engine API requests in %s (%.1f per minute).\n", *containers, idleCalls, *idle, perMin)
}

// measure runs f n times and returns the p50 and p99 of its duration.
func measure(n int, f func() error) [2]time.Duration {
	d := make([]time.Duration, 0, n)
	for range n {
		t := time.Now()
		if err := f(); err != nil {
			fatal(err.Error())
		}
		d = append(d, time.Since(t))
	}
	slices.Sort(d)
	return [2]time.Duration{d[n/2], d[(n*99)/100]}
}

func p50(d []time.Duration) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[len(d)/2]
}

// startProxy counts every Engine API request that passes its unix socket.
func startProxy(path, upstream string) *atomic.Int64 {
	var count atomic.Int64
	ln, err := net.Listen("unix", path)
	check(err)
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = "http", "docker"
			r.Out.Host = r.In.Host
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", upstream)
		}},
		FlushInterval: -1,
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		count.Add(1)
		rp.ServeHTTP(w, r)
	}))
	return &count
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	check(err)
	return a
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
func mib(b int64) float64       { return float64(b) / (1 << 20) }

func check(err error) {
	if err != nil {
		fatal(err.Error())
	}
}

func fatal(msg string) {
	fmt.Fprintln(os.Stderr, "frontbench:", msg)
	os.Exit(1)
}
