// Package compose writes the stack forgebox runs as a Docker Compose project, for people who run
// their containers with Compose or Synology's Container Manager, and for the benchmarks that
// compare forgebox with Compose on the same stack.
//
// The project is derived from the same desired state `forgebox up` converges to (stack.Build):
// the same images, environment, binds, ports, healthchecks, restart policies, network and
// aliases, stop signals and grace periods, and labels. Secrets never appear in compose.yaml: each
// is a ${VAR} reference to a .env file beside it, written mode 0600.
//
// Compose only runs containers, so three things forgebox does in `up` are done differently or not
// at all, and the file says so in its header: GitLab's database role, database and extensions
// are made by an init script PostgreSQL runs once, on an empty data directory (forgebox checks and
// repairs them on every up); GitLab's admin token and the runners' registration are not made;
// and GitLab's readiness is not waited for, because neither the GitLab images nor the stand-ins
// declare a healthcheck and forgebox probes readiness itself.
package compose

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/pgprov"
	"github.com/forgebox/forgebox/service/internal/stack"
)

// File names written into the output directory.
const (
	ComposeFile = "compose.yaml"
	EnvFile     = ".env"
	InitDir     = "postgres-init"
	InitScript  = InitDir + "/forgebox-gitlab.sh"
	ConfDir     = "postgres-conf"
	PgHBAFile   = ConfDir + "/pg_hba.conf"
)

// DefaultSubnet is the stack network's subnet when no forgebox network exists to take it from.
// GitLab's monitoring allowlist names the subnet, so Compose must create the network with exactly
// this one. It lies outside Docker's default address pools (172.17.0.0/16 to 172.31.0.0/16 and
// 192.168.0.0/16), so it does not collide with networks the engine made on its own; pick another
// with --subnet when the LAN uses it.
const DefaultSubnet = "172.16.250.0/24"

// The networks' keys inside the project: the internal network (PostgreSQL, Redis, GitLab) and
// the jobs network (GitLab, the runner, CI jobs).
const (
	internalKey = "internal"
	jobsKey     = "jobs"
)

// dependsOn is what each component needs before it starts, in Compose's terms. forgebox starts
// components one after the other and waits for each; Compose starts everything that needs
// nothing at once, so only real needs are listed: GitLab refuses to start without its database
// and Redis, and the runner registers with GitLab.
var dependsOn = map[string][]string{
	"gitlab": {"postgres", "redis"},
	"runner": {"gitlab"},
}

// Secrets is the secret store as the export reads it: the values to put into .env, generated
// when missing, exactly as `forgebox up` would.
type Secrets interface {
	stack.SecretSource
	Names() []string
}

// Options are what the export needs beyond the config.
type Options struct {
	Version string    // forgebox's version, written into the header and the containers' labels
	Env     stack.Env // GitLab's host and the network subnet, as stack.Build takes them
	// Source says where the config came from, for the header ("" leaves it out).
	Source string
}

// Files is an exported project.
type Files struct {
	Compose    []byte // compose.yaml: no secret in it
	DotEnv     []byte // .env: the secrets compose.yaml refers to
	InitScript []byte // postgres-init/forgebox-gitlab.sh
	PgHBA      []byte // postgres-conf/pg_hba.conf: network logins from the internal subnet only
	// Vars are the .env variable names, sorted.
	Vars []string
}

// Render builds the Compose project for cfg from the desired state forgebox would converge to.
func Render(cfg config.Config, secrets Secrets, o Options) (Files, error) {
	if _, _, err := net.ParseCIDR(o.Env.Subnet); err != nil {
		return Files{}, fmt.Errorf("network subnet %q: %w", o.Env.Subnet, err)
	}
	d, err := stack.Build(cfg, secrets, o.Version, o.Env)
	if err != nil {
		return Files{}, err
	}
	sub := newSubstituter(secrets)
	p := Project{
		Name:     d.Stack,
		Services: map[string]Service{},
		Networks: map[string]Network{},
	}
	keys := map[string]string{d.Network: internalKey, d.JobsNetwork: jobsKey}
	for _, n := range d.Networks {
		nw := Network{
			Name:     n.Name,
			Driver:   "bridge",
			Internal: n.Internal,
			// The same label forgebox puts on its networks, so `forgebox up` can take the
			// stack over from Compose (it recreates each container as its own; data stays).
			Labels: map[string]string{engine.LabelStack: d.Stack},
		}
		if n.Name == d.Network {
			// GitLab's monitoring allowlist and pg_hba.conf name this subnet.
			nw.IPAM = &IPAM{Config: []IPAMConfig{{Subnet: o.Env.Subnet}}}
		}
		p.Networks[keys[n.Name]] = nw
	}
	var hba []byte
	healthy := map[string]bool{}
	for _, c := range d.Components {
		healthy[c.Name] = c.Spec.Health != nil
	}
	for _, c := range d.Components {
		svc, err := service(c, sub, keys)
		if err != nil {
			return Files{}, err
		}
		for _, dep := range dependsOn[c.Name] {
			if _, ok := d.Component(dep); !ok {
				continue
			}
			if svc.DependsOn == nil {
				svc.DependsOn = map[string]Dependency{}
			}
			cond := "service_started"
			if healthy[dep] {
				cond = "service_healthy"
			}
			svc.DependsOn[dep] = Dependency{Condition: cond}
		}
		if c.Name == "postgres" {
			if err := addInitScript(&svc, sub); err != nil {
				return Files{}, err
			}
			// pg_hba.conf beside compose.yaml, as forgebox writes it into its data dir.
			for i, v := range svc.Volumes {
				if v.Target == stack.PostgresConfMount {
					svc.Volumes[i] = Volume{Type: "bind", Source: "./" + ConfDir, Target: v.Target, ReadOnly: true}
				}
			}
			for _, f := range c.Files {
				if filepath.Base(f.Path) == "pg_hba.conf" {
					hba = f.Content
				}
			}
		}
		p.Services[c.Name] = svc
	}
	body, err := yaml.MarshalWithOptions(p, yaml.Indent(2), yaml.IndentSequence(true), yaml.UseLiteralStyleIfMultiline(true))
	if err != nil {
		return Files{}, fmt.Errorf("encode compose file: %w", err)
	}
	var out bytes.Buffer
	writeHeader(&out, cfg, o)
	out.Write(body)
	f := Files{Compose: out.Bytes(), DotEnv: sub.dotEnv(cfg.Stack.Name), InitScript: initScript(), PgHBA: hba, Vars: sub.used()}
	// The whole point of .env: no secret value may reach compose.yaml, not even by accident.
	for _, name := range secrets.Names() {
		if v, ok := secrets.Get(name); ok && len(v) >= minSecretLen && bytes.Contains(f.Compose, []byte(v)) {
			return Files{}, fmt.Errorf("internal error: secret %s would be written into %s; nothing was written", name, ComposeFile)
		}
	}
	return f, nil
}

func service(c stack.Component, sub *substituter, keys map[string]string) (Service, error) {
	s := c.Spec
	svc := Service{
		ContainerName: s.Name,
		Image:         escape(s.Image),
		User:          escape(s.User),
		Entrypoint:    escapeAll(s.Entrypoint),
		Command:       escapeAll(s.Cmd),
		Networks:      map[string]ServiceNetwork{keys[s.Network]: {Aliases: s.Aliases}},
		Restart:       s.Restart,
		StopSignal:    s.StopSignal,
		ShmSize:       s.ShmSize,
		MemLimit:      s.MemoryLimit,
		Privileged:    s.Privileged,
	}
	for _, ep := range s.Networks {
		svc.Networks[keys[ep.Network]] = ServiceNetwork{Aliases: ep.Aliases}
	}
	// Redis' --requirepass: a secret, so a ${VAR} reference like the environment's.
	for i, a := range svc.Command {
		svc.Command[i] = sub.replace(a)
	}
	if s.StopTimeout > 0 {
		svc.StopGracePeriod = duration(time.Duration(s.StopTimeout) * time.Second)
	}
	if len(s.Env) > 0 {
		svc.Environment = map[string]string{}
		for _, kv := range s.Env {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return Service{}, fmt.Errorf("%s: environment entry without '=': %q", c.Name, k)
			}
			svc.Environment[k] = sub.replace(escape(v))
		}
	}
	for _, b := range s.Binds {
		v := Volume{Type: "bind", Source: escape(b.Source), Target: b.Target, ReadOnly: b.ReadOnly}
		// Only the data directories forgebox would create; a missing Docker socket must stay an
		// error, not become an empty directory.
		if slices.ContainsFunc(c.Dirs, func(d stack.Dir) bool { return d.Path == b.Source }) {
			v.Bind = &BindOptions{CreateHostPath: true}
		}
		svc.Volumes = append(svc.Volumes, v)
	}
	for _, p := range s.Ports {
		svc.Ports = append(svc.Ports, Port{Target: p.ContainerPort, Published: strconv.Itoa(p.HostPort), HostIP: p.HostIP, Protocol: cmp.Or(p.Proto, "tcp")})
	}
	if h := s.Health; h != nil {
		svc.Healthcheck = &Healthcheck{Test: escapeAll(h.Test), Interval: duration(h.Interval), Timeout: duration(h.Timeout),
			StartPeriod: duration(h.StartPeriod), Retries: h.Retries}
	}
	// Every label forgebox sets but the spec hash: it vouches for a container forgebox made from
	// exactly this spec, which a Compose container is not. Without it, `forgebox up` sees
	// Compose's containers as its stack's, with settings it cannot vouch for, and recreates them.
	svc.Labels = map[string]string{}
	for k, v := range s.Labels {
		if k != engine.LabelSpecHash {
			svc.Labels[k] = escape(v)
		}
	}
	return svc, nil
}

// addInitScript mounts the provisioning script into PostgreSQL's init directory and hands it the
// GitLab role's password, which forgebox itself would set over a connection.
func addInitScript(svc *Service, sub *substituter) error {
	pw, ok := sub.secrets.Get(config.SecretPostgresGitLab)
	if !ok {
		return errors.New("the secret store has no password for GitLab's database role")
	}
	if svc.Environment == nil {
		svc.Environment = map[string]string{}
	}
	svc.Environment[initPasswordVar] = sub.replace(escape(pw))
	svc.Volumes = append(svc.Volumes, Volume{Type: "bind", Source: "./" + InitDir, Target: "/docker-entrypoint-initdb.d", ReadOnly: true})
	return nil
}

// initPasswordVar carries the GitLab role's password into the PostgreSQL container, for the
// init script only.
const initPasswordVar = "FORGEBOX_GITLAB_DB_PASSWORD"

var initTemplate = template.Must(template.New("init").Parse(`#!/bin/sh
# Written by ` + "`forgebox export compose`" + `. PostgreSQL's entrypoint runs this once, when it
# initialises an empty data directory: GitLab's role, database and extensions, as forgebox
# provisions them. forgebox checks and repairs them on every ` + "`up`" + `; Compose cannot, so a data
# directory that PostgreSQL initialised without them needs one ` + "`forgebox up`" + `.
set -eu
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres \
  --set role_password="${{.Var}}" <<'EOSQL'
CREATE ROLE "{{.Role}}" LOGIN NOSUPERUSER CREATEDB NOCREATEROLE PASSWORD :'role_password';
CREATE DATABASE "{{.Database}}" OWNER "{{.Role}}" ENCODING 'UTF8' TEMPLATE template0;
\connect "{{.Database}}"
{{range .Extensions}}CREATE EXTENSION IF NOT EXISTS "{{.}}";
{{end}}EOSQL
`))

func initScript() []byte {
	var b bytes.Buffer
	err := initTemplate.Execute(&b, map[string]any{
		"Var": initPasswordVar, "Role": stack.GitLabRole, "Database": stack.GitLabDatabase, "Extensions": pgprov.Extensions,
	})
	if err != nil {
		panic(err) // fixed template, fixed data
	}
	return b.Bytes()
}

func writeHeader(b *bytes.Buffer, cfg config.Config, o Options) {
	fmt.Fprintf(b, "# Docker Compose project for forgebox stack %q, written by `forgebox export compose`\n", cfg.Stack.Name)
	fmt.Fprintf(b, "# (forgebox %s)", o.Version)
	if o.Source != "" {
		fmt.Fprintf(b, " from %s", o.Source)
	}
	b.WriteString(`.
#
# The same containers "forgebox up" runs: images, environment, binds, ports, healthchecks, restart
# policies, network, aliases, stop signals and grace periods, labels. Secrets are not in this file:
# each ${VAR} below is read from .env beside it (mode 0600; keep it with this file, out of git).
# Start from this directory with:  docker compose up -d --wait
#
# What Compose does not do that "forgebox up" does:
#   - GitLab's database role, database and extensions are made by postgres-init/, which PostgreSQL
#     runs only when it initialises an empty data directory; forgebox checks them on every up.
#   - GitLab's admin token is not made and runners are not registered: the runner waits for a
#     config.toml that only forgebox writes.
#   - GitLab's readiness is not waited for: its image declares no healthcheck.
# The network's subnet is pinned because GitLab's monitoring allowlist names it.
`)
}

// minSecretLen: shorter values are not treated as secrets to hide (generated ones are 64 hex).
const minSecretLen = 16

// substituter replaces secret values with ${VAR} references and remembers which it used.
type substituter struct {
	secrets Secrets
	order   []string          // secret names, longest value first, so no value hides in another
	vars    map[string]string // secret name -> variable name
	usedSet map[string]bool
}

func newSubstituter(s Secrets) *substituter {
	sub := &substituter{secrets: s, vars: map[string]string{}, usedSet: map[string]bool{}}
	for _, n := range s.Names() {
		if v, ok := s.Get(n); ok && len(v) >= minSecretLen {
			sub.order = append(sub.order, n)
			sub.vars[n] = varName(n)
		}
	}
	slices.SortFunc(sub.order, func(a, b string) int {
		va, _ := s.Get(a)
		vb, _ := s.Get(b)
		return cmp.Or(cmp.Compare(len(vb), len(va)), cmp.Compare(a, b))
	})
	return sub
}

// replace puts a reference in place of every secret value in v, which is already escaped.
func (s *substituter) replace(v string) string {
	for _, n := range s.order {
		val, _ := s.secrets.Get(n)
		if strings.Contains(v, val) {
			// ":?" makes Compose refuse to start without .env rather than set an empty password.
			v = strings.ReplaceAll(v, val, "${"+s.vars[n]+":?is not set: keep .env beside compose.yaml}")
			s.usedSet[n] = true
		}
	}
	return v
}

func (s *substituter) used() []string {
	var out []string
	for n := range s.usedSet {
		out = append(out, s.vars[n])
	}
	slices.Sort(out)
	return out
}

func (s *substituter) dotEnv(stackName string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Secrets of forgebox stack %q for compose.yaml beside this file, from forgebox's secret store.\n", stackName)
	b.WriteString("# Keep this file private (mode 0600) and out of version control.\n")
	byVar := map[string]string{}
	for n := range s.usedSet {
		v, _ := s.secrets.Get(n)
		byVar[s.vars[n]] = v
	}
	for _, k := range slices.Sorted(maps.Keys(byVar)) {
		fmt.Fprintf(&b, "%s=%s\n", k, dotEnvValue(byVar[k]))
	}
	return b.Bytes()
}

// dotEnvValue quotes a value for Compose's .env reader: plain when it is safe as it is (generated
// secrets are hex), else in single quotes, which Compose takes literally.
func dotEnvValue(v string) string {
	safe := v != "" && strings.IndexFunc(v, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.+/=:@,", r))
	}) < 0
	if safe {
		return v
	}
	return "'" + v + "'"
}

// varName is a secret's variable: FORGEBOX_ and its name in capitals.
func varName(secret string) string {
	b := []byte("FORGEBOX_" + strings.ToUpper(secret))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// escape doubles every '$': Compose interpolates ${...} in every value of the file.
func escape(s string) string { return strings.ReplaceAll(s, "$", "$$") }

func escapeAll(list []string) []string {
	if list == nil {
		return nil
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = escape(s)
	}
	return out
}

// duration writes d the short way Compose reads: 2s, 1m, 1m30s, 1h.
func duration(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	var b strings.Builder
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dh", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dm", m)
		d -= m * time.Minute
	}
	if d > 0 {
		if d%time.Second == 0 {
			fmt.Fprintf(&b, "%ds", d/time.Second)
		} else {
			fmt.Fprintf(&b, "%dms", d/time.Millisecond)
		}
	}
	return b.String()
}

// NetworkFinder finds the stack's network, as the engine client does.
type NetworkFinder interface {
	FindNetwork(ctx context.Context, stack, name string) (engine.Network, bool, error)
}

// ResolveSubnet picks the network subnet for the export: the one asked for, else the one of the
// stack network forgebox already made (so GitLab's allowlist stays what it is), else
// DefaultSubnet. It says where the subnet came from. eng may be nil (no engine reachable).
func ResolveSubnet(ctx context.Context, eng NetworkFinder, cfg config.Config, asked string) (subnet, from string, err error) {
	if asked != "" {
		_, n, err := net.ParseCIDR(asked)
		if err != nil {
			return "", "", fmt.Errorf("--subnet %q is not a CIDR such as %s: %w", asked, DefaultSubnet, err)
		}
		return n.String(), "--subnet", nil
	}
	if eng != nil {
		nw, ok, err := eng.FindNetwork(ctx, cfg.Stack.Name, cfg.NetworkName())
		if err != nil {
			return "", "", err
		}
		if ok && len(nw.Subnets) > 0 {
			return nw.Subnets[0], "network " + nw.Name, nil
		}
	}
	return DefaultSubnet, "the default (no network " + cfg.NetworkName() + " exists)", nil
}

// ExistsError says the export would overwrite files.
type ExistsError struct{ Paths []string }

func (e *ExistsError) Error() string {
	return fmt.Sprintf("%s already exist(s): nothing was written; pass --force to replace, or pick another --output directory", strings.Join(e.Paths, ", "))
}

// Write puts the files into dir, creating it. Without force it writes nothing when any of them
// exists. Each file is written atomically; .env is mode 0600 from its first byte.
func Write(dir string, f Files, force bool) ([]string, error) {
	type file struct {
		rel  string
		data []byte
		mode os.FileMode
	}
	files := []file{
		{InitScript, f.InitScript, 0o755}, // read and run by PostgreSQL's own user
		{PgHBAFile, f.PgHBA, 0o644},       // subnets only; read by PostgreSQL's own user
		{EnvFile, f.DotEnv, 0o600},
		{ComposeFile, f.Compose, 0o644},
	}
	var exist []string
	for _, fl := range files {
		p := filepath.Join(dir, fl.rel)
		if _, err := os.Lstat(p); err == nil {
			exist = append(exist, p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	if len(exist) > 0 && !force {
		return nil, &ExistsError{Paths: exist}
	}
	// Both directories are bind-mounted into PostgreSQL, whose user must be able to enter them.
	for _, sub := range []string{InitDir, ConfDir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
		if err := os.Chmod(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	var written []string
	for _, fl := range files {
		p := filepath.Join(dir, fl.rel)
		if err := config.WriteFileAtomic(p, fl.data, fl.mode); err != nil {
			return written, err
		}
		written = append(written, p)
	}
	return written, nil
}
