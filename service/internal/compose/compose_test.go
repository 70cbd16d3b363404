package compose_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/forgebox/forgebox/service/internal/compose"
	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/stack"
	"github.com/forgebox/forgebox/service/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fakeSecrets hands out fixed, name-derived secrets, so the golden files are stable.
type fakeSecrets map[string]string

func (f fakeSecrets) Ensure(name string) (string, error) {
	if v, ok := f[name]; ok {
		return v, nil
	}
	sum := sha256.Sum256([]byte("golden:" + name))
	f[name] = hex.EncodeToString(sum[:])
	return f[name], nil
}

func (f fakeSecrets) Get(name string) (string, bool) { v, ok := f[name]; return v, ok }

func (f fakeSecrets) Names() []string {
	var n []string
	for k := range f {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

var goldenEnv = stack.Env{Host: "nas.example", Subnet: compose.DefaultSubnet}

// render exports cfg with fixed secrets (plus one the stack does not use, which must stay out).
func render(t *testing.T, cfg config.Config) (compose.Files, fakeSecrets) {
	t.Helper()
	// The runner's socket bind follows DOCKER_HOST; the golden file has the default socket.
	t.Setenv("DOCKER_HOST", "")
	sec := fakeSecrets{config.SecretGitLabAdminToken: "glpat-notforcompose0123456789"}
	f, err := compose.Render(cfg, sec, compose.Options{Version: "test", Env: goldenEnv})
	if err != nil {
		t.Fatal(err)
	}
	return f, sec
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./service/internal/compose -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (rewrite with -update and read the diff):\n%s", name, got)
	}
}

// TestGoldenDefault pins the export of the embedded default config.
func TestGoldenDefault(t *testing.T) {
	f, _ := render(t, config.Default())
	golden(t, "compose.yaml.golden", f.Compose)
	golden(t, "env.golden", f.DotEnv)
	golden(t, "forgebox-gitlab.sh.golden", f.InitScript)
}

// TestNoSecretInComposeFile: every secret the stack uses is a reference; secrets it does not use
// (the admin token) are in neither file.
func TestNoSecretInComposeFile(t *testing.T) {
	for _, flavour := range []string{"sameersbn", "omnibus"} {
		t.Run(flavour, func(t *testing.T) {
			cfg := config.Default()
			cfg.GitLab.Flavour = flavour
			f, sec := render(t, cfg)
			for name, v := range sec {
				if bytes.Contains(f.Compose, []byte(v)) {
					t.Errorf("secret %s is in compose.yaml", name)
				}
			}
			if bytes.Contains(f.DotEnv, []byte(sec[config.SecretGitLabAdminToken])) {
				t.Error("the admin token, which no container uses, is in .env")
			}
			if !bytes.Contains(f.DotEnv, []byte("FORGEBOX_POSTGRES_SUPERUSER_PASSWORD="+sec[config.SecretPostgresSuperuser]+"\n")) {
				t.Errorf(".env lacks the superuser password:\n%s", f.DotEnv)
			}
		})
	}
}

// TestEquivalentToForgebox reads compose.yaml back as Compose would (strict YAML, then .env
// interpolation) and compares every container setting with the desired state forgebox converges
// to, for both GitLab flavours and a config with odd values.
func TestEquivalentToForgebox(t *testing.T) {
	odd := config.Default()
	odd.Stack.Name = "odd-stack"
	odd.Stack.DataDir = "/srv/data with space/fb$x"
	odd.GitLab.Flavour = "omnibus"
	odd.GitLab.Memory = "standard"
	odd.GitLab.AdminEmail = "ad$min@example.com"
	cases := map[string]config.Config{"default": config.Default(), "odd": odd}
	omni := config.Default()
	omni.GitLab.Flavour = "omnibus"
	cases["omnibus"] = omni
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			f, sec := render(t, cfg)
			p := parseStrict(t, f.Compose)
			vars := parseDotEnv(t, f.DotEnv)
			d, err := stack.Build(cfg, sec, "test", goldenEnv)
			if err != nil {
				t.Fatal(err)
			}
			checkEquivalent(t, d, p, vars)
		})
	}
}

func parseStrict(t *testing.T, b []byte) compose.Project {
	t.Helper()
	var p compose.Project
	if err := yaml.UnmarshalWithOptions(b, &p, yaml.Strict(), yaml.DisallowUnknownField()); err != nil {
		t.Fatalf("compose.yaml does not decode strictly: %v", err)
	}
	return p
}

func parseDotEnv(t *testing.T, b []byte) map[string]string {
	t.Helper()
	vars := map[string]string{}
	for i, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`).MatchString(k) {
			t.Fatalf(".env line %d is no KEY=VALUE: %q", i+1, line)
		}
		if strings.HasPrefix(v, "'") {
			v = strings.TrimSuffix(strings.TrimPrefix(v, "'"), "'")
		}
		vars[k] = v
	}
	return vars
}

var ref = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:\?[^}]*)?\}`)

// interpolate does what Compose does to a value: $$ is a dollar, ${VAR:?msg} is VAR from .env
// and an error when unset. Any other $ is an error here (the exporter never writes one).
func interpolate(t *testing.T, s string, vars map[string]string) string {
	t.Helper()
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			out.WriteByte(s[i])
			continue
		}
		if strings.HasPrefix(s[i:], "$$") {
			out.WriteByte('$')
			i++
			continue
		}
		m := ref.FindStringSubmatchIndex(s[i:])
		if m == nil || m[0] != 0 {
			t.Fatalf("bare $ in %q: Compose would interpolate it", s)
		}
		name := s[i+m[2] : i+m[3]]
		v, ok := vars[name]
		if !ok {
			t.Fatalf("%s is referenced but not in .env", name)
		}
		if m[4] < 0 {
			t.Errorf("${%s} has no :? guard: a missing .env would start PostgreSQL with an empty password", name)
		}
		out.WriteString(v)
		i += m[1] - 1
	}
	return out.String()
}

func checkEquivalent(t *testing.T, d stack.Desired, p compose.Project, vars map[string]string) {
	t.Helper()
	if p.Name != d.Stack {
		t.Errorf("project name %q, want %q", p.Name, d.Stack)
	}
	// The same two networks as forgebox's: the internal one with its subnet pinned (GitLab's
	// monitoring allowlist and pg_hba.conf name it), the jobs network for GitLab and the runner.
	keyOf := map[string]string{d.Network: "internal", d.JobsNetwork: "jobs"}
	if len(p.Networks) != len(d.Networks) {
		t.Errorf("%d networks, want %d", len(p.Networks), len(d.Networks))
	}
	for _, want := range d.Networks {
		nw, ok := p.Networks[keyOf[want.Name]]
		if !ok || nw.Name != want.Name || nw.Driver != "bridge" || nw.Internal != want.Internal {
			t.Errorf("network %s: %+v", want.Name, nw)
		}
		pinned := nw.IPAM != nil && len(nw.IPAM.Config) == 1 && nw.IPAM.Config[0].Subnet == goldenEnv.Subnet
		if pinned != (want.Name == d.Network) {
			t.Errorf("network %s: ipam %+v", want.Name, nw.IPAM)
		}
		if nw.Labels[engine.LabelStack] != d.Stack {
			t.Errorf("network %s labels %v", want.Name, nw.Labels)
		}
	}
	if len(p.Services) != len(d.Components) {
		t.Errorf("%d services, want %d", len(p.Services), len(d.Components))
	}
	for _, c := range d.Components {
		s, ok := p.Services[c.Name]
		if !ok {
			t.Errorf("no service %s", c.Name)
			continue
		}
		spec := c.Spec
		at := func(what string, got, want any) {
			t.Helper()
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s %s: %v, want %v", c.Name, what, got, want)
			}
		}
		at("container_name", s.ContainerName, spec.Name)
		at("image", interpolate(t, s.Image, vars), spec.Image)
		at("command", interpolateAll(t, s.Command, vars), spec.Cmd)
		at("entrypoint", interpolateAll(t, s.Entrypoint, vars), spec.Entrypoint)
		at("restart", s.Restart, spec.Restart)
		at("stop_signal", s.StopSignal, spec.StopSignal)
		at("stop_grace_period", parseDuration(t, s.StopGracePeriod), time.Duration(spec.StopTimeout)*time.Second)
		at("shm_size", s.ShmSize, spec.ShmSize)
		at("privileged", s.Privileged, spec.Privileged)
		at("aliases", s.Networks[keyOf[spec.Network]].Aliases, spec.Aliases)
		for _, ep := range spec.Networks {
			at("aliases on "+ep.Network, s.Networks[keyOf[ep.Network]].Aliases, ep.Aliases)
		}
		if len(s.Networks) != 1+len(spec.Networks) {
			t.Errorf("%s joins %d networks, want %d", c.Name, len(s.Networks), 1+len(spec.Networks))
		}
		// Environment: forgebox's, exactly, plus the init script's password on postgres.
		env := map[string]string{}
		for k, v := range s.Environment {
			env[k] = interpolate(t, v, vars)
		}
		want := map[string]string{}
		for _, kv := range spec.Env {
			k, v, _ := strings.Cut(kv, "=")
			want[k] = v
		}
		if c.Name == "postgres" {
			pw, _ := vars["FORGEBOX_POSTGRES_GITLAB_PASSWORD"]
			if env["FORGEBOX_GITLAB_DB_PASSWORD"] != pw || pw == "" {
				t.Error("postgres: the init script's password is not GitLab's database password")
			}
			delete(env, "FORGEBOX_GITLAB_DB_PASSWORD")
		}
		at("environment", env, want)
		// Binds, in order, plus the init directory on postgres.
		var binds []engine.Bind
		for _, v := range s.Volumes {
			if v.Type != "bind" {
				t.Errorf("%s: volume type %q", c.Name, v.Type)
			}
			if v.Source == "./postgres-init" {
				continue
			}
			src := v.Source
			if src == "./postgres-conf" && len(c.Files) > 0 {
				// Written beside compose.yaml rather than into the data dir.
				src = filepath.Dir(c.Files[0].Path)
			} else {
				src = interpolate(t, src, vars)
			}
			binds = append(binds, engine.Bind{Source: src, Target: v.Target, ReadOnly: v.ReadOnly})
		}
		at("binds", binds, spec.Binds)
		var ports []engine.Port
		for _, pt := range s.Ports {
			hp, err := strconv.Atoi(pt.Published)
			if err != nil {
				t.Errorf("%s: published port %q", c.Name, pt.Published)
			}
			proto := pt.Protocol
			if proto == "tcp" {
				proto = ""
			}
			ports = append(ports, engine.Port{HostIP: pt.HostIP, HostPort: hp, ContainerPort: pt.Target, Proto: proto})
		}
		at("ports", ports, spec.Ports)
		if spec.Health == nil {
			at("healthcheck", s.Healthcheck, (*compose.Healthcheck)(nil))
		} else if h := s.Healthcheck; h == nil {
			t.Errorf("%s: no healthcheck", c.Name)
		} else {
			at("healthcheck test", interpolateAll(t, h.Test, vars), spec.Health.Test)
			at("healthcheck interval", parseDuration(t, h.Interval), spec.Health.Interval)
			at("healthcheck timeout", parseDuration(t, h.Timeout), spec.Health.Timeout)
			at("healthcheck start_period", parseDuration(t, h.StartPeriod), spec.Health.StartPeriod)
			at("healthcheck retries", h.Retries, spec.Health.Retries)
		}
		labels := map[string]string{}
		for k, v := range spec.Labels {
			if k != engine.LabelSpecHash {
				labels[k] = v
			}
		}
		got := map[string]string{}
		for k, v := range s.Labels {
			got[k] = interpolate(t, v, vars)
		}
		at("labels", got, labels)
	}
	// GitLab waits for what it needs; nothing waits for a service that does not exist.
	for name, s := range p.Services {
		for dep, cond := range s.DependsOn {
			target, ok := p.Services[dep]
			if !ok {
				t.Errorf("%s depends on missing service %s", name, dep)
			}
			if cond.Condition == "service_healthy" && target.Healthcheck == nil {
				t.Errorf("%s waits for %s to be healthy, but it has no healthcheck", name, dep)
			}
		}
	}
	if g := p.Services["gitlab"]; g.DependsOn["postgres"].Condition != "service_healthy" || g.DependsOn["redis"].Condition != "service_healthy" {
		t.Errorf("gitlab depends_on %v", g.DependsOn)
	}
}

func interpolateAll(t *testing.T, list []string, vars map[string]string) []string {
	t.Helper()
	if list == nil {
		return nil
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = interpolate(t, s, vars)
	}
	return out
}

func parseDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Errorf("duration %q: %v", s, err)
	}
	return d
}

// The Compose specification's keys (compose-spec.io, schema compose-spec.json), for the parts
// the exporter writes. Checked on the generic YAML tree, independently of the exporter's types.
var specKeys = map[string][]string{
	"":                          {"version", "name", "include", "services", "networks", "volumes", "secrets", "configs", "models"},
	"service":                   {"annotations", "attach", "build", "blkio_config", "cpu_count", "cpu_percent", "cpu_shares", "cpu_quota", "cpu_period", "cpu_rt_period", "cpu_rt_runtime", "cpus", "cpuset", "credential_spec", "cap_add", "cap_drop", "cgroup", "cgroup_parent", "command", "configs", "container_name", "depends_on", "deploy", "develop", "device_cgroup_rules", "devices", "dns", "dns_opt", "dns_search", "domainname", "entrypoint", "env_file", "environment", "expose", "extends", "external_links", "extra_hosts", "gpus", "group_add", "healthcheck", "hostname", "image", "init", "ipc", "isolation", "labels", "label_file", "links", "logging", "mac_address", "mem_limit", "mem_reservation", "mem_swappiness", "memswap_limit", "network_mode", "networks", "oom_kill_disable", "oom_score_adj", "pid", "pids_limit", "platform", "ports", "post_start", "pre_stop", "privileged", "profiles", "pull_policy", "read_only", "restart", "runtime", "scale", "secrets", "security_opt", "shm_size", "stdin_open", "stop_grace_period", "stop_signal", "storage_opt", "sysctls", "tmpfs", "tty", "ulimits", "user", "userns_mode", "uts", "volumes", "volumes_from", "working_dir", "provider", "models", "use_api_socket"},
	"service.healthcheck":       {"disable", "interval", "retries", "test", "timeout", "start_period", "start_interval"},
	"service.ports[]":           {"name", "mode", "host_ip", "target", "published", "protocol", "app_protocol"},
	"service.volumes[]":         {"type", "source", "target", "read_only", "consistency", "bind", "volume", "tmpfs", "image"},
	"service.volumes[].bind":    {"propagation", "create_host_path", "recursive", "selinux"},
	"service.networks.*":        {"aliases", "interface_name", "ipv4_address", "ipv6_address", "link_local_ips", "mac_address", "driver_opts", "priority", "gw_priority"},
	"service.depends_on.*":      {"condition", "restart", "required"},
	"network":                   {"name", "driver", "driver_opts", "ipam", "external", "internal", "enable_ipv4", "enable_ipv6", "attachable", "labels"},
	"network.ipam":              {"driver", "config", "options"},
	"network.ipam.config[]":     {"subnet", "ip_range", "gateway", "aux_addresses"},
	"restart":                   {"no", "always", "on-failure", "unless-stopped"},
	"service.depends_on.*.cond": {"service_started", "service_healthy", "service_completed_successfully"},
}

// TestComposeSpec checks the file against the Compose specification's structure on the generic
// YAML tree: only its keys, its enumerations, its duration and port forms, and references that
// resolve. With FORGEBOX_COMPOSE_BIN set to a Docker Compose v2 binary (bench/run.sh builds one)
// it also runs `docker compose config`, which validates against the real schema.
func TestComposeSpec(t *testing.T) {
	for _, flavour := range []string{"sameersbn", "omnibus"} {
		t.Run(flavour, func(t *testing.T) {
			cfg := config.Default()
			cfg.GitLab.Flavour = flavour
			f, _ := render(t, cfg)
			var tree map[string]any
			if err := yaml.UnmarshalWithOptions(f.Compose, &tree, yaml.Strict()); err != nil {
				t.Fatal(err)
			}
			keysIn(t, "", tree, specKeys[""])
			services, _ := tree["services"].(map[string]any)
			networks, _ := tree["networks"].(map[string]any)
			names := map[string]bool{}
			for name, raw := range services {
				s, _ := raw.(map[string]any)
				keysIn(t, name, s, specKeys["service"])
				cn, _ := s["container_name"].(string)
				if names[cn] {
					t.Errorf("container_name %q twice", cn)
				}
				names[cn] = true
				if r, ok := s["restart"].(string); ok && !slices.Contains(specKeys["restart"], r) {
					t.Errorf("%s: restart %q", name, r)
				}
				for _, k := range []string{"stop_grace_period"} {
					if v, ok := s[k]; ok {
						checkDuration(t, name+"."+k, v)
					}
				}
				if h, ok := s["healthcheck"].(map[string]any); ok {
					keysIn(t, name+".healthcheck", h, specKeys["service.healthcheck"])
					for _, k := range []string{"interval", "timeout", "start_period"} {
						checkDuration(t, name+".healthcheck."+k, h[k])
					}
					if test, _ := h["test"].([]any); len(test) == 0 || test[0] != "CMD" && test[0] != "CMD-SHELL" && test[0] != "NONE" {
						t.Errorf("%s: healthcheck test %v", name, h["test"])
					}
				}
				for i, raw := range list(s["ports"]) {
					pt, _ := raw.(map[string]any)
					keysIn(t, fmt.Sprintf("%s.ports[%d]", name, i), pt, specKeys["service.ports[]"])
					if _, ok := pt["published"].(string); !ok {
						t.Errorf("%s: published port must be a string, is %T", name, pt["published"])
					}
				}
				for i, raw := range list(s["volumes"]) {
					v, _ := raw.(map[string]any)
					keysIn(t, fmt.Sprintf("%s.volumes[%d]", name, i), v, specKeys["service.volumes[]"])
					if b, ok := v["bind"].(map[string]any); ok {
						keysIn(t, fmt.Sprintf("%s.volumes[%d].bind", name, i), b, specKeys["service.volumes[].bind"])
					}
				}
				sn, _ := s["networks"].(map[string]any)
				for n, raw := range sn {
					if _, ok := networks[n]; !ok {
						t.Errorf("%s joins undeclared network %s", name, n)
					}
					if m, ok := raw.(map[string]any); ok {
						keysIn(t, name+".networks."+n, m, specKeys["service.networks.*"])
					}
				}
				deps, _ := s["depends_on"].(map[string]any)
				for dep, raw := range deps {
					if _, ok := services[dep]; !ok {
						t.Errorf("%s depends on undeclared %s", name, dep)
					}
					m, _ := raw.(map[string]any)
					keysIn(t, name+".depends_on."+dep, m, specKeys["service.depends_on.*"])
					if c, _ := m["condition"].(string); !slices.Contains(specKeys["service.depends_on.*.cond"], c) {
						t.Errorf("%s: condition %q", name, c)
					}
				}
				env, _ := s["environment"].(map[string]any)
				for k, v := range env {
					if _, ok := v.(string); !ok {
						t.Errorf("%s: environment %s is a %T, not a string", name, k, v)
					}
				}
			}
			for name, raw := range networks {
				n, _ := raw.(map[string]any)
				keysIn(t, "networks."+name, n, specKeys["network"])
				ipam, _ := n["ipam"].(map[string]any)
				keysIn(t, "networks."+name+".ipam", ipam, specKeys["network.ipam"])
				for _, c := range list(ipam["config"]) {
					m, _ := c.(map[string]any)
					keysIn(t, "networks."+name+".ipam.config", m, specKeys["network.ipam.config[]"])
				}
			}
			composeConfig(t, f)
		})
	}
}

func list(v any) []any { l, _ := v.([]any); return l }

func keysIn(t *testing.T, where string, m map[string]any, allowed []string) {
	t.Helper()
	for k := range m {
		if !slices.Contains(allowed, k) && !strings.HasPrefix(k, "x-") {
			t.Errorf("%s: key %q is not in the Compose specification", where, k)
		}
	}
}

// Compose's durations: Go's notation with units us, ms, s, m, h (and d).
var specDuration = regexp.MustCompile(`^((\d+)(us|ms|s|m|h|d))+$`)

func checkDuration(t *testing.T, where string, v any) {
	t.Helper()
	s, ok := v.(string)
	if !ok || !specDuration.MatchString(s) {
		t.Errorf("%s: %v is not a Compose duration", where, v)
	}
}

// composeConfig runs the real Docker Compose on the files (FORGEBOX_COMPOSE_BIN, which
// ./build.sh test and the bench set from bench/compose.sh).
func composeConfig(t *testing.T, f compose.Files) {
	bin := os.Getenv("FORGEBOX_COMPOSE_BIN")
	if bin == "" {
		testenv.Cannot(t, "FORGEBOX_COMPOSE_BIN is not set: `docker compose config` not run (bash bench/compose.sh builds Compose and prints its path)")
	}
	dir := t.TempDir()
	if _, err := compose.Write(dir, f, false); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--project-directory", dir, "-f", filepath.Join(dir, compose.ComposeFile), "config", "--quiet")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker compose config: %v\n%s", err, out)
	}
}

func TestWriteRefusesToOverwrite(t *testing.T) {
	f, _ := render(t, config.Default())
	dir := filepath.Join(t.TempDir(), "out")
	written, err := compose.Write(dir, f, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 4 {
		t.Fatalf("wrote %v", written)
	}
	modes := map[string]os.FileMode{compose.EnvFile: 0o600, compose.ComposeFile: 0o644, compose.InitScript: 0o755, compose.InitDir: 0o755 | os.ModeDir,
		compose.PgHBAFile: 0o644, compose.ConfDir: 0o755 | os.ModeDir}
	for rel, want := range modes {
		fi, err := os.Stat(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s mode %v, want %v", rel, fi.Mode(), want)
		}
	}
	os.WriteFile(filepath.Join(dir, compose.ComposeFile), []byte("# mine\n"), 0o644)
	_, err = compose.Write(dir, f, false)
	var exists *compose.ExistsError
	if !errors.As(err, &exists) || len(exists.Paths) != 4 || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second write: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, compose.ComposeFile)); string(b) != "# mine\n" {
		t.Fatal("a refused write changed compose.yaml")
	}
	if _, err := compose.Write(dir, f, true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, compose.ComposeFile)); !bytes.Equal(b, f.Compose) {
		t.Fatal("--force did not replace compose.yaml")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("left a temporary file: %s", e.Name())
		}
	}
}

func TestResolveSubnet(t *testing.T) {
	cfg := config.Default()
	got, from, err := compose.ResolveSubnet(t.Context(), nil, cfg, "")
	if err != nil || got != compose.DefaultSubnet || !strings.Contains(from, "default") {
		t.Errorf("no engine: %q %q %v", got, from, err)
	}
	got, _, err = compose.ResolveSubnet(t.Context(), nil, cfg, "10.9.8.7/24")
	if err != nil || got != "10.9.8.0/24" {
		t.Errorf("--subnet: %q %v", got, err)
	}
	if _, _, err := compose.ResolveSubnet(t.Context(), nil, cfg, "10.9.8.7"); err == nil || !strings.Contains(err.Error(), "--subnet") {
		t.Errorf("bad --subnet: %v", err)
	}
	if _, err := compose.Render(cfg, fakeSecrets{}, compose.Options{Env: stack.Env{Host: "h.example", Subnet: "nope"}}); err == nil {
		t.Error("a bad subnet rendered")
	}
}
