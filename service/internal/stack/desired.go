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
)

// Component is one container of the stack as forgebox wants it.
type Component struct {
	Name        string
	Stage       int // components of one stage start together; stages start in order
	Spec        engine.ContainerSpec
	Dirs        []Dir         // host directories created before the container is
	Deadline    time.Duration // how long its health wait may take
	StopTimeout time.Duration // how long it gets to shut down cleanly
}

// Dir is a bind-mounted host directory and the mode it is created with.
type Dir struct {
	Path string
	Mode os.FileMode
}

// Desired is the whole stack as the config asks for it, components in start order.
type Desired struct {
	Stack      string
	Network    string
	Config     config.Config // runner profiles and GitLab settings, for the steps after containers
	Components []Component
	// HelperImage is the image the runner starts beside every job: runner.helper_image, else the
	// default helper of the runner's version for the engine's arch ("" when neither is known,
	// HelperWhy says why). Config.Runner.HelperImage holds it too, so config.toml names it.
	HelperImage string
	HelperWhy   string
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
	Subnet string // the stack network's subnet, GitLab's monitoring allowlist
	Host   string // GitLab's host name as users reach it
	Arch   string // the engine's architecture (Go names), for the runner's helper image
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
	d := Desired{Stack: cfg.Stack.Name, Network: cfg.NetworkName(), Config: cfg}
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
		c.Spec.Network = d.Network
		labels := map[string]string{
			engine.LabelStack:     d.Stack,
			engine.LabelComponent: c.Name,
		}
		for k, v := range c.Spec.Labels {
			labels[k] = v
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
