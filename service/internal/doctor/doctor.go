// Package doctor checks that a machine can run the stack: the engine is reachable with a new
// enough API, the socket is permitted, the data dir has room, GitLab's ports are free and there is
// memory enough. Each check says what to do when it fails. The CLI prints the list; the
// controller shows it as health warnings.
package doctor

import (
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
}

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
		out = append(out, Check{Name: "runner profiles", Status: Warn, Detail: w.Key + ": " + w.Msg, Fix: w.Hint})
	}
	if len(out) == 0 {
		out = append(out, Check{Name: "runner profiles", Status: OK,
			Detail: fmt.Sprintf("%d profiles, none privileged: jobs reach only their own containers", len(cfg.Runner.Profiles))})
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
		return []Check{{Name: "engine", Status: Fail, Detail: connectErr.Error(),
			Fix: "start the Docker Engine (Container Manager on DSM), or point DOCKER_HOST at it"}}
	}
	info, err := eng.Info(ctx)
	if err != nil {
		return []Check{{Name: "engine", Status: Fail, Detail: err.Error(), Fix: "check that the Docker Engine is running"}}
	}
	return []Check{
		{Name: "engine", Status: OK, Detail: fmt.Sprintf("Docker %s on %s/%s at %s", info.ServerVersion, info.OS, info.Arch, info.Host)},
		{Name: "api version", Status: OK, Detail: fmt.Sprintf("speaking API %s (server offers up to %s; forgebox needs at least %s)", info.APIVersion, info.ServerAPI, engine.MinAPIVersion)},
	}
}

// socketCheck looks at the socket's permissions, which on DSM is where a package user fails.
func socketCheck() Check {
	host := os.Getenv("DOCKER_HOST")
	if host != "" && !strings.HasPrefix(host, "unix://") {
		return Check{Name: "socket", Status: OK, Detail: "DOCKER_HOST is " + host + " (not a local socket)"}
	}
	path := strings.TrimPrefix(host, "unix://")
	if path == "" {
		path = "/var/run/docker.sock"
	}
	fi, err := os.Stat(path)
	if err != nil {
		return Check{Name: "socket", Status: Fail, Detail: err.Error(), Fix: "install and start Docker (Container Manager on DSM)"}
	}
	if err := syscall.Access(path, 0x2 /* W_OK */); err != nil {
		st, _ := fi.Sys().(*syscall.Stat_t)
		owner := ""
		if st != nil {
			owner = fmt.Sprintf(" (owner uid %d, gid %d, mode %s)", st.Uid, st.Gid, fi.Mode().Perm())
		}
		return Check{Name: "socket", Status: Fail, Detail: fmt.Sprintf("%s is not writable by uid %d%s", path, os.Geteuid(), owner),
			Fix: "run as root or as a member of the socket's group; on DSM use the package, whose controller runs inside Container Manager"}
	}
	return Check{Name: "socket", Status: OK, Detail: path + " is writable"}
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
		return Check{Name: "disk", Status: Fail, Detail: fmt.Sprintf("cannot read free space of %s: %v", probe, err)}
	}
	free := uint64(st.Bavail) * uint64(st.Bsize)
	detail := fmt.Sprintf("%s free in %s", human(free), probe)
	switch {
	case free < minFreeDisk:
		return Check{Name: "disk", Status: Fail, Detail: detail, Fix: "free space or set stack.data_dir to a bigger volume: GitLab needs several GiB"}
	case free < warnFreeDisk:
		return Check{Name: "disk", Status: Warn, Detail: detail, Fix: "GitLab, its images and backups grow; 10 GiB or more is advised"}
	}
	if st.Flags&0x1 != 0 { // ST_RDONLY
		return Check{Name: "disk", Status: Fail, Detail: probe + " is on a read-only file system", Fix: "pick a writable stack.data_dir"}
	}
	return Check{Name: "disk", Status: OK, Detail: detail}
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
		name := "port " + strconv.Itoa(p.port)
		if ours[p.port] {
			out = append(out, Check{Name: name, Status: OK, Detail: fmt.Sprintf("used by this stack's GitLab (%s)", p.key)})
			continue
		}
		l, err := net.Listen("tcp", ":"+strconv.Itoa(p.port))
		if err != nil {
			fix := fmt.Sprintf("stop the program on port %d, or set %s to a free port", p.port, p.key)
			if errors.Is(err, syscall.EACCES) {
				fix = fmt.Sprintf("ports below 1024 need root; set %s to a port above 1024", p.key)
			}
			out = append(out, Check{Name: name, Status: Fail, Detail: fmt.Sprintf("%s is taken: %v", p.key, err), Fix: fix})
			continue
		}
		l.Close()
		out = append(out, Check{Name: name, Status: OK, Detail: p.key + " is free"})
	}
	return out
}

func memoryCheck(meminfo string) Check {
	f, err := os.Open(meminfo)
	if err != nil {
		return Check{Name: "memory", Status: Warn, Detail: "cannot read " + meminfo + ": " + err.Error()}
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
	detail := human(total) + " of memory"
	switch {
	case total < minMemory:
		return Check{Name: "memory", Status: Fail, Detail: detail, Fix: "GitLab needs at least 2 GiB plus swap; add memory"}
	case total < warnMemory:
		return Check{Name: "memory", Status: Warn, Detail: detail, Fix: "below 4 GiB GitLab is slow: keep gitlab.memory = \"small\" and add swap"}
	}
	return Check{Name: "memory", Status: OK, Detail: detail}
}

func human(b uint64) string {
	const gib = 1 << 30
	if b >= gib {
		return fmt.Sprintf("%.1f GiB", float64(b)/gib)
	}
	return fmt.Sprintf("%d MiB", b>>20)
}
