package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// PrivateEngineOptions choose the dockerd a private engine runs.
type PrivateEngineOptions struct {
	// Dockerd is the daemon binary (default "dockerd" on PATH): a newer engine's, for the
	// suites that must pass on more than the machine's engine.
	Dockerd string
	// Args are added to dockerd's own (e.g. a TLS listener for a remote-engine test).
	Args []string
	// Env is added to the daemon's environment (e.g. PATH with that engine's containerd and runc).
	Env []string
	// Link joins the engine's namespace to the host by a veth pair (addresses in LinkAddrs) with
	// the namespace's default route through the host, and gives the engine a default bridge
	// with NAT inside its own namespace: the machine's engine's containers reach this engine at
	// the namespace side's address (a TLS listener in Args), and this engine's containers reach
	// the host's published ports at the host side's, as a second machine on the LAN would.
	Link bool
	// LinkArgs, with Link, are more dockerd args made once the link's addresses are known (a
	// TLS listener on the engine's address, with a certificate that names it).
	LinkArgs func(hostIP, engineIP string) []string
}

// PrivateEngine is a second dockerd that only this test uses, so it can be restarted without
// breaking the tests that share the machine's engine. It runs in a network namespace of its own:
// its bridges, published ports and container addresses exist only there, so it can touch neither
// the host's networks nor its firewall (on a host whose FORWARD policy is DROP, as Docker's own
// rules leave it, a second dockerd with --iptables=false on the host's namespace would see its
// containers cut off from each other). forgebox runs inside that namespace too (nsenter), the
// way it runs beside the engine on a NAS; the engine's socket is a file, reached from anywhere.
type PrivateEngine struct {
	t    testing.TB
	opt  PrivateEngineOptions
	dir  string // data root, exec root, socket, pid file, log
	ns   string // network namespace, /run/netns/<ns>
	sock string
	// hostIP and engineIP are the veth pair's ends (Link).
	hostIP, engineIP string
	cmd              *exec.Cmd
	log              *os.File
}

func StartPrivateEngine(t testing.TB, opt PrivateEngineOptions) *PrivateEngine {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "a private dockerd needs root")
	}
	if opt.Dockerd == "" {
		opt.Dockerd = "dockerd"
	}
	for _, tool := range []string{opt.Dockerd, "docker", "ip", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing(t, tool+" is not installed: the test runs a private dockerd")
		}
	}
	// Short: containerd's socket path lives under the exec root and unix socket paths are short.
	dir, err := os.MkdirTemp("", "fbd-")
	if err != nil {
		t.Fatal(err)
	}
	e := &PrivateEngine{t: t, opt: opt, dir: dir, ns: "fbpe-" + randomHex(4), sock: filepath.Join(dir, "docker.sock")}
	t.Cleanup(e.remove)
	for _, args := range [][]string{{"netns", "add", e.ns}, {"-n", e.ns, "link", "set", "lo", "up"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if opt.Link {
		e.link()
	}
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if e.log, err = os.Create(filepath.Join(dir, "dockerd.log")); err != nil {
		t.Fatal(err)
	}
	e.start()
	return e
}

func (e *PrivateEngine) Host() string { return "unix://" + e.sock }

// LinkAddrs are the host's and the engine namespace's addresses on the veth pair (Link).
func (e *PrivateEngine) LinkAddrs() (host, engine string) { return e.hostIP, e.engineIP }

// link makes the veth pair in a random /30 of 100.64.0.0/10 (shared address space, which no
// Docker default pool or LAN uses) so parallel tests rarely collide.
func (e *PrivateEngine) link() {
	e.t.Helper()
	b := randomHex(2)
	var x, y int
	fmt.Sscanf(b, "%02x%02x", &x, &y)
	base := fmt.Sprintf("100.%d.%d.", 64+x%64, y)
	sub := 4 * (x / 64) // 0, 4, 8, 12
	e.hostIP, e.engineIP = base+fmt.Sprint(sub+1), base+fmt.Sprint(sub+2)
	hv, nv := "fbh"+e.ns[5:], "fbn"+e.ns[5:]
	cmds := [][]string{
		{"link", "add", hv, "type", "veth", "peer", "name", nv},
		{"link", "set", nv, "netns", e.ns},
		{"addr", "add", e.hostIP + "/30", "dev", hv},
		{"link", "set", hv, "up"},
		{"-n", e.ns, "addr", "add", e.engineIP + "/30", "dev", nv},
		{"-n", e.ns, "link", "set", nv, "up"},
		{"-n", e.ns, "route", "add", "default", "via", e.hostIP},
	}
	for _, args := range cmds {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			e.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	e.t.Cleanup(func() { exec.Command("ip", "link", "del", hv).Run() })
}

// netnsPrefix runs a command inside the engine's network namespace.
func (e *PrivateEngine) NetnsPrefix() []string {
	return []string{"nsenter", "--net=/run/netns/" + e.ns, "--"}
}

func (e *PrivateEngine) start() {
	e.t.Helper()
	args := append(e.NetnsPrefix(), e.opt.Dockerd,
		"--host", e.Host(),
		"--data-root", filepath.Join(e.dir, "root"),
		"--exec-root", filepath.Join(e.dir, "x"),
		"--pidfile", filepath.Join(e.dir, "docker.pid"),
		"--config-file", filepath.Join(e.dir, "daemon.json"), // not the machine's /etc/docker/daemon.json
		"--containerd-namespace", e.ns, "--containerd-plugins-namespace", e.ns+"-plugins",
		"--storage-driver=overlay2", "--log-level=warn")
	if e.opt.Link {
		// A default bridge whose NAT rules live in the engine's own namespace.
		args = append(args, "--bip=172.31.254.1/24", "--iptables=true", "--ip-forward=true", "--ip-masq=true")
	} else {
		args = append(args, "--bridge=none", "--iptables=false", "--ip-forward=false", "--ip-masq=false")
	}
	args = append(args, e.opt.Args...)
	if e.opt.Link && e.opt.LinkArgs != nil {
		args = append(args, e.opt.LinkArgs(e.hostIP, e.engineIP)...)
	}
	e.cmd = exec.Command(args[0], args[1:]...)
	if len(e.opt.Env) > 0 {
		e.cmd.Env = append(os.Environ(), e.opt.Env...)
	}
	e.cmd.Stdout, e.cmd.Stderr = e.log, e.log
	// Its own process group: a signal meant for the test never reaches it, and the reverse.
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := e.cmd.Start(); err != nil {
		e.t.Fatalf("start dockerd: %v", err)
	}
	exited := make(chan struct{})
	go func(cmd *exec.Cmd) { cmd.Wait(); close(exited) }(e.cmd)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if exec.Command("docker", "-H", e.Host(), "version").Run() == nil {
			return
		}
		select {
		case <-exited:
			e.t.Fatalf("the private dockerd exited at start:\n%s", e.LogTail())
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the private dockerd did not answer within 60s:\n%s", e.LogTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stop ends dockerd as the system would on a restart (SIGTERM: it stops the containers with
// their stop timeouts), killing it only if it hangs.
func (e *PrivateEngine) Stop() {
	if e.cmd == nil || e.cmd.Process == nil {
		return
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(90 * time.Second)
	for e.cmd.Process.Signal(syscall.Signal(0)) == nil {
		if time.Now().After(deadline) {
			e.cmd.Process.Kill()
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // the waiting goroutine reaps it
	e.cmd = nil
}

func (e *PrivateEngine) Restart() {
	e.t.Helper()
	e.Stop()
	e.start()
}

func (e *PrivateEngine) remove() {
	if e.cmd != nil {
		// Containers first, so dockerd unmounts their file systems itself.
		if out, err := exec.Command("docker", "-H", e.Host(), "ps", "-aq").Output(); err == nil {
			if ids := strings.Fields(string(out)); len(ids) > 0 {
				exec.Command("docker", append([]string{"-H", e.Host(), "rm", "-f"}, ids...)...).Run()
			}
		}
		e.Stop()
	}
	if e.log != nil {
		e.log.Close()
	}
	// Whatever is still mounted below the dir (deepest first), then the dir and the namespace.
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		var mounts []string
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], e.dir+"/") {
				mounts = append(mounts, f[4])
			}
		}
		for i := len(mounts) - 1; i >= 0; i-- {
			syscall.Unmount(mounts[i], syscall.MNT_DETACH)
		}
	}
	exec.Command("rm", "-rf", "--one-file-system", e.dir).Run()
	exec.Command("ip", "netns", "del", e.ns).Run()
}

// LogPath is dockerd's log file (with Args "--log-level=debug", every API request it served).
func (e *PrivateEngine) LogPath() string { return filepath.Join(e.dir, "dockerd.log") }

func (e *PrivateEngine) LogTail() string {
	b, _ := os.ReadFile(filepath.Join(e.dir, "dockerd.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// load copies images from the machine's engine into the private one (docker save | docker load).
func (e *PrivateEngine) Load(images ...string) {
	e.t.Helper()
	start := time.Now()
	save := exec.Command("docker", append([]string{"save"}, images...)...)
	load := exec.Command("docker", "-H", e.Host(), "load", "-q")
	pipe, err := save.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	load.Stdin = pipe
	var saveErr, loadOut strings.Builder
	save.Stderr = &saveErr
	load.Stdout, load.Stderr = &loadOut, &loadOut
	if err := save.Start(); err != nil {
		e.t.Fatal(err)
	}
	if err := load.Run(); err != nil {
		e.t.Fatalf("docker load: %v\n%s", err, loadOut.String())
	}
	if err := save.Wait(); err != nil {
		e.t.Fatalf("docker save: %v\n%s", err, saveErr.String())
	}
	e.t.Logf("loaded %d images into the private engine in %s", len(images), time.Since(start).Round(100*time.Millisecond))
}

// httpGet sends one GET from inside the engine's network namespace and returns the status line.
// The socket is made on a thread switched into the namespace (a socket belongs to the namespace
// it was made in); that thread is never unlocked, so it ends with its goroutine.
func (e *PrivateEngine) HTTPGet(addr, path string) (string, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open("/run/netns/" + e.ns)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("setns: %w", err)}
			return
		}
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		ch <- result{c, err}
	}()
	r := <-ch
	if r.err != nil {
		return "", r.err
	}
	defer r.c.Close()
	r.c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(r.c, "GET %s HTTP/1.0\r\nHost: gitlab\r\n\r\n", path)
	line, err := bufio.NewReader(r.c).ReadString('\n')
	return strings.TrimSpace(line), err
}
