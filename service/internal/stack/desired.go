package stack

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/msg"
)

// Component is one container of the stack as forgebox wants it.
type Component struct {
	Name        string
	Stage       int // components of one stage start together; stages start in order
	Spec        engine.ContainerSpec
	Dirs        []Dir         // host directories created before the container is
	Files       []File        // host files written before the container is created
	Deadline    time.Duration // how long its health wait may take
	StopTimeout time.Duration // how long it gets to shut down cleanly
}

// Dir is a bind-mounted host directory and the mode it is created with.
type Dir struct {
	Path string
	Mode os.FileMode
}

// File is a host file a container reads (bind-mounted): written whole before each create.
type File struct {
	Path    string
	Mode    os.FileMode
	Content []byte
}

// NetworkSpec is one network of the stack as forgebox wants it.
type NetworkSpec struct {
	Name     string
	Internal bool
	Purpose  string // who is on it, for the plan's reasons
	Role     string // "internal" or "jobs": names Purpose's message code
}

// Desired is the whole stack as the config asks for it, components in start order.
type Desired struct {
	Stack       string
	Network     string // the internal network, where forgebox reaches PostgreSQL and GitLab
	JobsNetwork string // GitLab, the runner and CI job containers
	Networks    []NetworkSpec
	Config      config.Config // runner profiles and GitLab settings, for the steps after containers
	Components  []Component
	// HelperImage is the image the runner starts beside every job: runner.helper_image, else the
	// default helper of the runner's version for the engine's arch ("" when neither is known,
	// HelperWhy says why). Config.Runner.HelperImage holds it too, so config.toml names it.
	HelperImage string
	HelperWhy   msg.Msg
}

// NetworkSpec returns the wanted network of that name, if it is one.
func (d Desired) NetworkSpec(name string) (NetworkSpec, bool) {
	for _, n := range d.Networks {
		if n.Name == name {
			return n, true
		}
	}
	return NetworkSpec{}, false
}

// Component returns the named component, if desired.
func (d Desired) Component(name string) (Component, bool) {
	for _, c := range d.Components {
		if c.Name == name {
			return c, true
		}
	}
	return Component{}, false
}

// SecretSource hands out secrets: Ensure generates one the first time it is asked for, Get
// only reads.
type SecretSource interface {
	Ensure(name string) (string, error)
	Get(name string) (string, bool)
}

// Env is what the desired state needs from outside the config: facts of this machine and of
// objects the engine made.
type Env struct {
	Subnet string // the internal network's subnet: GitLab's monitoring allowlist, PostgreSQL's logins
	Host   string // GitLab's host name as users reach it
	// EngineVersion is Docker's own version ("" when unknown): a few engines cut the host off
	// internal networks, where forgebox must reach PostgreSQL.
	EngineVersion string
	Arch          string // the engine's architecture (Go names), for the runner's helper image
	// TimeZone is GitLab's: gitlab.time_zone, else the host's; "" leaves the images' UTC.
	TimeZone string
}

// ResolveTimeZone is gitlab.time_zone, else the host's: TZ, else /etc/timezone, else the zone
// /etc/localtime links to. A value that is no tz database name is skipped, and with none the
// images keep their default (UTC).
func ResolveTimeZone(cfg config.Config) string {
	if cfg.GitLab.TimeZone != "" {
		return cfg.GitLab.TimeZone
	}
	cands := []string{os.Getenv("TZ")}
	if b, err := os.ReadFile("/etc/timezone"); err == nil {
		cands = append(cands, strings.TrimSpace(string(b)))
	}
	if l, err := os.Readlink("/etc/localtime"); err == nil {
		if _, zone, ok := strings.Cut(l, "zoneinfo/"); ok {
			cands = append(cands, zone)
		}
	}
	for _, c := range cands {
		if c != "" && config.TimeZonePattern.MatchString(c) {
			return c
		}
	}
	return ""
}

// ResolveHost is gitlab.host, or this machine's host name when the config leaves it empty.
func ResolveHost(cfg config.Config) (string, error) {
	if cfg.GitLab.Host != "" {
		return cfg.GitLab.Host, nil
	}
	h, err := os.Hostname()
	if err != nil || h == "" || h == "localhost" {
		return "", fmt.Errorf("gitlab.host is empty and this machine's host name (%q) is no use in clone URLs: set gitlab.host to the name or address other machines reach it by", h)
	}
	return h, nil
}

type builder func(config.Config, SecretSource, Env) (Component, error)

// Build turns the config into the desired stack. It generates missing secrets, so it is called
// under the stack lock (or with a read-only SecretSource).
func Build(cfg config.Config, secrets SecretSource, version string, env Env) (Desired, error) {
	d := Desired{Stack: cfg.Stack.Name, Network: cfg.NetworkName(), JobsNetwork: cfg.JobsNetworkName(), Config: cfg}
	d.Networks = stackNetworks(cfg, env.EngineVersion)
	d.HelperImage, d.HelperWhy = resolveHelperImage(cfg, env.Arch)
	d.Config.Runner.HelperImage = d.HelperImage
	builders := []builder{
		postgresComponent,
		redisComponent,
		gitlabComponent,
		runnerComponent,
	}
	for _, build := range builders {
		c, err := build(cfg, secrets, env)
		if err != nil {
			return Desired{}, err
		}
		// CI jobs are untrusted code: they share a network with GitLab and the runner only.
		switch c.Name {
		case "runner":
			c.Spec.Network = d.JobsNetwork
		case "gitlab":
			c.Spec.Network = d.Network
			c.Spec.Networks = []engine.Endpoint{{Network: d.JobsNetwork, Aliases: c.Spec.Aliases}}
		default:
			c.Spec.Network = d.Network
		}
		labels := map[string]string{
			engine.LabelStack:     d.Stack,
			engine.LabelComponent: c.Name,
		}
		for k, v := range c.Spec.Labels {
			labels[k] = v
		}
		if len(c.Files) > 0 {
			// The files are the container's settings too: a changed one recreates it.
			labels[labelFiles] = filesDigest(c.Files)
		}
		c.Spec.Labels = labels
		c.Spec.Labels[engine.LabelSpecHash] = SpecHash(c.Spec)
		c.Spec.Labels[engine.LabelVersion] = version
		d.Components = append(d.Components, c)
	}
	return d, nil
}

// SpecHash is a short digest of everything forgebox sets on a container, except the labels that
// carry the hash itself and the forgebox version (a new forgebox must not recreate containers
// whose spec did not change). Maps marshal in key order, so the JSON is canonical.
func SpecHash(spec engine.ContainerSpec) string {
	labels := make(map[string]string, len(spec.Labels))
	for k, v := range spec.Labels {
		if k != engine.LabelSpecHash && k != engine.LabelVersion {
			labels[k] = v
		}
	}
	spec.Labels = labels
	b, err := json.Marshal(spec)
	if err != nil {
		panic(fmt.Sprintf("marshal container spec: %v", err)) // plain data: cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// stackNetworks are the stack's two networks. CI jobs are untrusted code: the jobs network holds
// GitLab, the runner and the jobs, the internal one everything a job must not reach.
func stackNetworks(cfg config.Config, engineVersion string) []NetworkSpec {
	return []NetworkSpec{
		{Name: cfg.NetworkName(), Internal: hostReachesInternal(engineVersion), Purpose: "PostgreSQL, Redis, GitLab and the controller", Role: "internal"},
		{Name: cfg.JobsNetworkName(), Purpose: "GitLab, the runner and CI job containers", Role: "jobs"},
	}
}

func filesDigest(files []File) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%o\x00%d\x00", f.Path, f.Mode, len(f.Content))
		h.Write(f.Content)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// hostReachesInternal says whether the internal network may be internal in Docker's sense (no
// route out). Docker 25.0.0 to 25.0.3 gave an internal bridge no address on the host, so the host
// could not reach its containers (moby/moby#46603, undone by #47356 in 25.0.4): forgebox on the
// host would lose PostgreSQL. There the network is an ordinary bridge; jobs are still kept out,
// because Docker drops traffic between two bridge networks whatever their internal flag.
func hostReachesInternal(engineVersion string) bool {
	var major, minor, patch int
	if n, _ := fmt.Sscanf(engineVersion, "%d.%d.%d", &major, &minor, &patch); n < 3 {
		return true
	}
	return !(major == 25 && minor == 0 && patch < 4)
}

// labelFiles carries a digest of a component's written files (PostgreSQL's pg_hba.conf).
const labelFiles = "io.forgebox.files"
