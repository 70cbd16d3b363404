// Package doctor checks that a machine can run the stack: the engine is reachable with a new
// enough API, the socket is permitted, the data dir has room, GitLab's ports are free and there is
// memory enough. Each check says what to do when it fails. The CLI prints the list; the
// controller shows it as health warnings.
package doctor

import (
	"github.com/docker/go-units"

	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/msg"
)

// Status of one check.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Check is one result.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
	// Label, Text and Advice are Name, Detail and Fix as message codes, for the web app's
	// languages (zero where a detail is the engine's or the system's own words).
	Label  msg.Msg `json:"label,omitzero"`
	Text   msg.Msg `json:"text,omitzero"`
	Advice msg.Msg `json:"advice,omitzero"`
}

// newCheck is a result said as message codes, with the English rendered for the CLI.
func newCheck(label msg.Msg, st Status, text, fix msg.Msg) Check {
	return Check{Name: label.String(), Status: st, Detail: text.String(), Fix: fix.String(), Label: label, Text: text, Advice: fix}
}

// raw is a detail in someone else's words (an error from the engine or the system).
func raw(s string) msg.Msg { return msg.New("doctor.raw", "text", s) }

var (
	labelEngine   = msg.New("doctor.label.engine")
	labelAPI      = msg.New("doctor.label.api")
	labelSocket   = msg.New("doctor.label.socket")
	labelDisk     = msg.New("doctor.label.disk")
	labelMemory   = msg.New("doctor.label.memory")
	labelProfiles = msg.New("doctor.label.profiles")
)

// Engine is what the doctor asks the engine.
type Engine interface {
	Info(ctx context.Context) (engine.Info, error)
	ListContainers(ctx context.Context, stack string) ([]engine.Container, error)
}

// Thresholds for disk and memory, from GitLab's documented minimums.
const (
	minFreeDisk  = 2 << 30  // below: fail
	warnFreeDisk = 10 << 30 // below: warn
	minMemory    = 2 << 30
	warnMemory   = 4 << 30
)

// Run performs every check. eng is nil when connecting failed; connectErr then says why.
func Run(ctx context.Context, cfg config.Config, eng Engine, connectErr error) []Check {
	var out []Check
	out = append(out, engineChecks(ctx, eng, connectErr)...)
	out = append(out, socketCheck())
	out = append(out, diskCheck(cfg.Stack.DataDir))
	out = append(out, portChecks(ctx, cfg, eng)...)
	out = append(out, memoryCheck("/proc/meminfo"))
	out = append(out, profileChecks(cfg)...)
	out = append(out, remoteEngineChecks(ctx, cfg)...)
	out = append(out, registryChecks(ctx, cfg, cfg.Images())...)
	return out
}

// profileChecks warn about each privileged runner profile: its jobs get the whole NAS.
func profileChecks(cfg config.Config) []Check {
	var out []Check
	for _, w := range cfg.Warnings(nil) {
		out = append(out, newCheck(labelProfiles, Warn, msg.New("doctor.profile.warn", "key", w.Key, "text", w.Text), w.Advice))
	}
	if len(out) == 0 {
		out = append(out, newCheck(labelProfiles, OK, msg.New("doctor.profile.ok", "n", len(cfg.Runner.Profiles)), msg.Msg{}))
	}
	return out
}

// remoteEngineChecks connect to each remote profile's Docker Engine with its client
// certificate, as the runner will: one check per profile, failing with what to do.
func remoteEngineChecks(ctx context.Context, cfg config.Config) []Check {
	var out []Check
	for _, p := range cfg.Runner.Profiles {
		if !p.Remote() {
			continue
		}
		name := "remote engine " + p.Name
		info, err := engine.CheckRemote(ctx, p.DockerHost, p.DockerCertDir)
		if err != nil {
			out = append(out, Check{Name: name, Status: Fail, Detail: err.Error(),
				Fix: fmt.Sprintf("fix docker_host or the certificates in %s; the runner cannot start jobs of profile %s until this passes", p.DockerCertDir, p.Name)})
			continue
		}
		c := Check{Name: name, Status: OK, Detail: fmt.Sprintf("jobs of profile %s run on Docker %s (%s, API %s) at %s; client certificate valid until %s",
			p.Name, info.ServerVersion, info.Arch, info.APIVersion, p.DockerHost, info.CertExpires.Format("2006-01-02"))}
		if time.Until(info.CertExpires) < 30*24*time.Hour {
			c.Status, c.Fix = Warn, "the client certificate expires within 30 days: make a new one and put it into "+p.DockerCertDir
		}
		out = append(out, c)
	}
	return out
}

// Failed reports whether any check failed.
func Failed(checks []Check) bool {
	for _, c := range checks {
		if c.Status == Fail {
			return true
		}
	}
	return false
}

func engineChecks(ctx context.Context, eng Engine, connectErr error) []Check {
	if eng == nil {
		return []Check{newCheck(labelEngine, Fail, raw(connectErr.Error()), msg.New("doctor.engine.start"))}
	}
	info, err := eng.Info(ctx)
	if err != nil {
		return []Check{newCheck(labelEngine, Fail, raw(err.Error()), msg.New("doctor.engine.running"))}
	}
	return []Check{
		newCheck(labelEngine, OK, msg.New("doctor.engine.ok", "version", info.ServerVersion, "os", info.OS, "arch", info.Arch, "host", info.Host), msg.Msg{}),
		newCheck(labelAPI, OK, msg.New("doctor.api.ok", "api", info.APIVersion, "server", info.ServerAPI, "min", engine.MinAPIVersion), msg.Msg{}),
	}
}

// socketCheck looks at the socket's permissions, which on DSM is where a package user fails.
func socketCheck() Check {
	host := os.Getenv("DOCKER_HOST")
	if host != "" && !strings.HasPrefix(host, "unix://") {
		return newCheck(labelSocket, OK, msg.New("doctor.socket.remote", "host", host), msg.Msg{})
	}
	path := strings.TrimPrefix(host, "unix://")
	if path == "" {
		path = "/var/run/docker.sock"
	}
	fi, err := os.Stat(path)
	if err != nil {
		return newCheck(labelSocket, Fail, raw(err.Error()), msg.New("doctor.socket.install"))
	}
	if err := syscall.Access(path, 0x2 /* W_OK */); err != nil {
		st, _ := fi.Sys().(*syscall.Stat_t)
		owner := ""
		if st != nil {
			owner = fmt.Sprintf(" (owner uid %d, gid %d, mode %s)", st.Uid, st.Gid, fi.Mode().Perm())
		}
		return newCheck(labelSocket, Fail, msg.New("doctor.socket.denied", "path", path, "uid", os.Geteuid(), "owner", owner), msg.New("doctor.socket.fix"))
	}
	return newCheck(labelSocket, OK, msg.New("doctor.socket.ok", "path", path), msg.Msg{})
}

func diskCheck(dir string) Check {
	// The data dir may not exist before the first `up`: look at the nearest existing parent.
	probe := dir
	for {
		if _, err := os.Stat(probe); err == nil || probe == "/" {
			break
		}
		probe = filepath.Dir(probe)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(probe, &st); err != nil {
		return newCheck(labelDisk, Fail, msg.New("doctor.disk.unknown", "path", probe, "error", err.Error()), msg.Msg{})
	}
	free := uint64(st.Bavail) * uint64(st.Bsize)
	detail := msg.New("doctor.disk.free", "free", units.BytesSize(float64(free)), "path", probe)
	switch {
	case free < minFreeDisk:
		return newCheck(labelDisk, Fail, detail, msg.New("doctor.disk.full"))
	case free < warnFreeDisk:
		return newCheck(labelDisk, Warn, detail, msg.New("doctor.disk.low"))
	}
	if st.Flags&0x1 != 0 { // ST_RDONLY
		return newCheck(labelDisk, Fail, msg.New("doctor.disk.readOnly", "path", probe), msg.New("doctor.disk.readOnlyFix"))
	}
	return newCheck(labelDisk, OK, detail, msg.Msg{})
}

func portChecks(ctx context.Context, cfg config.Config, eng Engine) []Check {
	ours := map[int]bool{}
	if eng != nil {
		if list, err := eng.ListContainers(ctx, cfg.Stack.Name); err == nil {
			for _, c := range list {
				if c.Component == "gitlab" && c.Running() {
					ours[cfg.GitLab.HTTPPort], ours[cfg.GitLab.SSHPort] = true, true
				}
			}
		}
	}
	var out []Check
	for _, p := range []struct {
		key  string
		port int
	}{{"gitlab.http_port", cfg.GitLab.HTTPPort}, {"gitlab.ssh_port", cfg.GitLab.SSHPort}} {
		name := msg.New("doctor.label.port", "port", p.port)
		if ours[p.port] {
			out = append(out, newCheck(name, OK, msg.New("doctor.port.ours", "key", p.key), msg.Msg{}))
			continue
		}
		if inController() {
			out = append(out, portCheckFromContainer(ctx, eng, name, p.key, p.port))
			continue
		}
		l, err := net.Listen("tcp", ":"+strconv.Itoa(p.port))
		if err != nil {
			fix := msg.New("doctor.port.stop", "port", p.port, "key", p.key)
			if errors.Is(err, syscall.EACCES) {
				fix = msg.New("doctor.port.root", "key", p.key)
			}
			out = append(out, newCheck(name, Fail, msg.New("doctor.port.taken", "key", p.key, "error", err.Error()), fix))
			continue
		}
		l.Close()
		out = append(out, newCheck(name, OK, msg.New("doctor.port.free", "key", p.key), msg.Msg{}))
	}
	return out
}

// controllerContainerEnv is stack.ControllerContainerEnv (doctor stays below stack; a test
// keeps the two equal): set when forgebox runs in its own container, as in the DSM package.
const controllerContainerEnv = "FORGEBOX_CONTROLLER_CONTAINER"

// inController: forgebox runs in a container of its own, whose network namespace is not the
// host's, so a port free there says nothing about the host's.
func inController() bool { return os.Getenv(controllerContainerEnv) != "" }

// portLister is an engine that can say which containers publish which host ports.
type portLister interface {
	PortUsers(ctx context.Context) (map[int]string, error)
}

// portCheckFromContainer checks a port from inside the controller's container: listening there
// would test the container's own namespace, so the engine is asked which container publishes
// the port instead, and the check says what it cannot see (a program on the host itself).
func portCheckFromContainer(ctx context.Context, eng Engine, name msg.Msg, key string, port int) Check {
	pl, ok := eng.(portLister)
	if eng == nil || !ok {
		return newCheck(name, Warn, msg.New("doctor.port.noEngine", "key", key), msg.New("doctor.port.allocatedFix", "key", key))
	}
	users, err := pl.PortUsers(ctx)
	if err != nil {
		return newCheck(name, Warn, msg.New("doctor.port.unknown", "key", key, "error", err.Error()), msg.Msg{})
	}
	if who, taken := users[port]; taken {
		return newCheck(name, Fail, msg.New("doctor.port.container", "key", key, "container", who), msg.New("doctor.port.containerFix", "key", key, "container", who))
	}
	return newCheck(name, OK, msg.New("doctor.port.noContainer", "key", key), msg.Msg{})
}

func memoryCheck(meminfo string) Check {
	f, err := os.Open(meminfo)
	if err != nil {
		return newCheck(labelMemory, Warn, msg.New("doctor.memory.unknown", "path", meminfo, "error", err.Error()), msg.Msg{})
	}
	defer f.Close()
	var total uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, _ := strconv.ParseUint(fields[1], 10, 64)
			total = kb * 1024
		}
	}
	detail := msg.New("doctor.memory.total", "total", units.BytesSize(float64(total)))
	switch {
	case total < minMemory:
		return newCheck(labelMemory, Fail, detail, msg.New("doctor.memory.low"))
	case total < warnMemory:
		return newCheck(labelMemory, Warn, detail, msg.New("doctor.memory.small"))
	}
	return newCheck(labelMemory, OK, detail, msg.Msg{})
}
