package config

import (
	"fmt"
	"net/mail"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/go-units"
)

// DSMReservedPorts are host ports that DSM itself listens on (SSH, HTTP, HTTPS, DSM HTTP and
// HTTPS, and the system PostgreSQL). A GitLab published there would fail to start, or worse,
// hide DSM.
var DSMReservedPorts = map[int]string{
	22:   "SSH",
	80:   "HTTP (web station)",
	443:  "HTTPS (web station)",
	5000: "DSM HTTP",
	5001: "DSM HTTPS",
	5432: "DSM's own PostgreSQL",
}

var (
	stackNamePattern   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,29}$`)
	profileNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)
	hostPattern        = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
	roleNamePattern    = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	tagPattern         = regexp.MustCompile(`^[^,\s][^,]*$`)
	timeOfDayPattern   = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
	// TimeZonePattern is a tz database name: "UTC", "Europe/Berlin", "America/Argentina/Salta",
	// "Etc/GMT+5". It also keeps quotes out of GITLAB_OMNIBUS_CONFIG.
	TimeZonePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9][A-Za-z0-9_+-]*){0,2}$`)
)

// validator collects problems; key positions are looked up in the source once per problem.
type validator struct {
	src  []byte
	errs []FieldError
}

func (v *validator) add(key, msg, hint string) {
	v.errs = append(v.errs, FieldError{Key: key, Line: lineOfKey(v.src, key), Msg: msg, Hint: hint})
}

func (c Config) validate(src []byte) []FieldError {
	v := &validator{src: src}
	if c.Version != CurrentVersion {
		switch {
		case c.Version == 0:
			v.add("version", "missing", fmt.Sprintf("set version = %d", CurrentVersion))
		case c.Version > CurrentVersion:
			v.add("version", fmt.Sprintf("version %d is newer than this forgebox understands", c.Version),
				fmt.Sprintf("upgrade forgebox, or write version = %d", CurrentVersion))
		default:
			v.add("version", fmt.Sprintf("version %d is not supported", c.Version), fmt.Sprintf("allowed: %d", CurrentVersion))
		}
	}

	if !stackNamePattern.MatchString(c.Stack.Name) {
		v.add("stack.name", fmt.Sprintf("%q is not a valid stack name", c.Stack.Name),
			"use 1 to 30 lowercase letters, digits and dashes, starting with a letter")
	}
	v.absPath("stack.data_dir", c.Stack.DataDir, true)
	v.absPath("stack.share_dir", c.Stack.ShareDir, false)
	v.absPath("stack.gitlab_dir", c.Stack.GitLabDir, false)
	v.oneOf("stack.pull_policy", c.Stack.PullPolicy, "missing", "always", "never")
	v.oneOf("stack.pull_via", c.Stack.PullVia, "auto", "engine", "forgebox")
	for i, m := range c.Stack.RegistryMirrors {
		if _, _, err := ParseMirror(m); err != nil {
			v.add("stack.registry_mirrors", fmt.Sprintf("entry %d: %v", i+1, err),
				`write "https://mirror.example" for a Docker Hub mirror, or "registry.gitlab.com=https://mirror.example" for another registry's`)
		}
	}
	if len(c.Stack.RegistryMirrors) > 0 && c.Stack.PullVia == "engine" {
		v.add("stack.registry_mirrors", `mirrors are used by forgebox's own downloads, and stack.pull_via is "engine"`,
			`set stack.pull_via = "auto" or "forgebox", or set the mirrors in the engine's daemon.json instead`)
	}

	v.image("postgres.image", c.Postgres.Image)
	if !roleNamePattern.MatchString(c.Postgres.Superuser) {
		v.add("postgres.superuser", fmt.Sprintf("%q is not a valid PostgreSQL role name", c.Postgres.Superuser),
			"use lowercase letters, digits and underscores, e.g. \"postgres\"")
	} else if c.Postgres.Superuser == "gitlab" {
		v.add("postgres.superuser", `"gitlab" is the role forgebox creates for GitLab`, "pick another name, e.g. \"postgres\"")
	}
	v.image("redis.image", c.Redis.Image)

	v.oneOf("gitlab.flavour", c.GitLab.Flavour, "sameersbn", "omnibus")
	v.image("gitlab.image", c.GitLab.Image)
	v.host("gitlab.host", c.GitLab.Host)
	v.port("gitlab.http_port", c.GitLab.HTTPPort)
	v.port("gitlab.ssh_port", c.GitLab.SSHPort)
	if c.GitLab.HTTPPort != 0 && c.GitLab.HTTPPort == c.GitLab.SSHPort {
		v.add("gitlab.ssh_port", fmt.Sprintf("port %d is also gitlab.http_port", c.GitLab.SSHPort),
			"give HTTP and SSH different ports, e.g. 30080 and 30022")
	}
	v.oneOf("gitlab.memory", c.GitLab.Memory, "small", "standard")
	if c.GitLab.TimeZone != "" && !TimeZonePattern.MatchString(c.GitLab.TimeZone) {
		v.add("gitlab.time_zone", fmt.Sprintf("%q is not a time zone name", c.GitLab.TimeZone),
			`a tz database name such as "Europe/Berlin" or "UTC", or "" for the host's`)
	}
	if a, err := mail.ParseAddress(c.GitLab.AdminEmail); err != nil || a.Address != c.GitLab.AdminEmail {
		v.add("gitlab.admin_email", fmt.Sprintf("%q is not an e-mail address", c.GitLab.AdminEmail), "e.g. admin@example.com")
	}

	v.image("runner.image", c.Runner.Image)
	if c.Runner.HelperImage != "" {
		v.image("runner.helper_image", c.Runner.HelperImage)
	}
	if c.Runner.Concurrent < 1 || c.Runner.Concurrent > 64 {
		v.add("runner.concurrent", fmt.Sprintf("%d is out of range", c.Runner.Concurrent), "allowed: 1 to 64")
	}
	if n := len(c.Runner.Profiles); c.Runner.Concurrent >= 1 && c.Runner.Concurrent < n {
		// GitLab Runner warns "Worker starvation bottleneck" when concurrent is below the number
		// of [[runners]] (commands/multi.go checkConfigConcurrency at v19.2.2): one runner would
		// wait for a worker while another holds it.
		v.add("runner.concurrent", fmt.Sprintf("%d is below the number of runner profiles (%d)", c.Runner.Concurrent, n),
			fmt.Sprintf("set runner.concurrent to at least %d, or remove a profile", n))
	}
	if len(c.Runner.Profiles) == 0 {
		v.add("runner.profiles", "no runner profile", "add at least one [[runner.profiles]] with a name and an image")
	}
	names := map[string]int{}
	for i, p := range c.Runner.Profiles {
		v.profile(i, p, names)
	}

	if c.Backup.Schedule != "" && !timeOfDayPattern.MatchString(c.Backup.Schedule) {
		v.add("backup.schedule", fmt.Sprintf("%q is not a time of day", c.Backup.Schedule),
			"use HH:MM on the 24-hour clock, e.g. \"03:30\", or \"\" for no scheduled backups")
	}
	if c.Backup.Keep < 1 || c.Backup.Keep > 1000 {
		v.add("backup.keep", fmt.Sprintf("%d is out of range", c.Backup.Keep), "allowed: 1 to 1000 scheduled backups")
	}
	v.absPath("backup.dir", c.Backup.Dir, false)
	return v.errs
}

func (v *validator) profile(i int, p Profile, names map[string]int) {
	key := func(k string) string { return fmt.Sprintf("runner.profiles[%d].%s", i, k) }
	switch {
	case p.Name == "":
		v.add(key("name"), "missing", "every profile needs a name, e.g. \"default\"")
	case !profileNamePattern.MatchString(p.Name):
		v.add(key("name"), fmt.Sprintf("%q is not a valid profile name", p.Name),
			"use lowercase letters, digits, '-' and '_', at most 40")
	default:
		if first, dup := names[p.Name]; dup {
			v.add(key("name"), fmt.Sprintf("profile %q is defined twice", p.Name),
				fmt.Sprintf("runner.profiles[%d] has the same name; names must be unique", first))
		} else {
			names[p.Name] = i
		}
	}
	v.image(key("image"), p.Image)
	if len(p.Tags) == 0 && !p.RunUntagged {
		v.add(key("tags"), "a profile with no tags that does not run untagged jobs would never get a job",
			"add tags, or set run_untagged = true")
	}
	seen := map[string]bool{}
	for _, t := range p.Tags {
		if !tagPattern.MatchString(t) || strings.TrimSpace(t) != t {
			v.add(key("tags"), fmt.Sprintf("%q is not a valid tag", t), "tags are non-empty, without commas or surrounding spaces")
		} else if seen[t] {
			v.add(key("tags"), fmt.Sprintf("tag %q is listed twice", t), "list each tag once")
		}
		seen[t] = true
	}
	if p.CPUs != "" {
		if f, err := strconv.ParseFloat(p.CPUs, 64); err != nil || !(f > 0 && f <= 256) { // NaN fails both comparisons
			v.add(key("cpus"), fmt.Sprintf("%q is not a CPU count", p.CPUs), "a positive number such as \"1\" or \"1.5\", or empty for no limit")
		}
	}
	if p.Memory != "" {
		if b, err := units.RAMInBytes(p.Memory); err != nil || b < 6*1024*1024 {
			v.add(key("memory"), fmt.Sprintf("%q is not a memory size of at least 6m", p.Memory),
				"a size such as \"512m\" or \"2g\", or empty for no limit")
		}
	}
	v.dockerHost(key, p)
	v.kubernetes(key, p)
	if p.Project != "" && !projectPathPattern.MatchString(p.Project) {
		v.add(key("project"), fmt.Sprintf("%q is not a project path", p.Project), "the project's path as in its URL, e.g. \"team/app\" or \"team/sub/app\"")
	}
	if p.Concurrency < 1 || p.Concurrency > 64 {
		v.add(key("concurrency"), fmt.Sprintf("%d is out of range", p.Concurrency), "allowed: 1 to 64")
	}
}

func (v *validator) oneOf(key, val string, allowed ...string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	msg := fmt.Sprintf("%q is not allowed", val)
	if val == "" {
		msg = "missing"
	}
	v.add(key, msg, "allowed: "+strings.Join(allowed, ", "))
}

func (v *validator) image(key, ref string) {
	if ref == "" {
		v.add(key, "missing", "an image reference such as \"postgres:17-alpine\"")
		return
	}
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		v.add(key, fmt.Sprintf("%q is not a valid image reference: %v", ref, err),
			"use [registry/]name[:tag][@digest] in lowercase, e.g. \"postgres:17-alpine\"")
	}
}

func (v *validator) port(key string, p int) {
	switch {
	case p < 1 || p > 65535:
		v.add(key, fmt.Sprintf("%d is not a port", p), "allowed: 1 to 65535; the defaults are 30080 (HTTP) and 30022 (SSH)")
	case DSMReservedPorts[p] != "":
		v.add(key, fmt.Sprintf("port %d is taken by DSM (%s)", p, DSMReservedPorts[p]),
			"pick a port DSM does not use, e.g. 30080 for HTTP or 30022 for SSH")
	}
}

func (v *validator) host(key, h string) {
	if h == "" {
		return // this machine's host name, resolved when the stack is built
	}
	lower := strings.ToLower(h)
	if lower == "localhost" || strings.HasPrefix(lower, "127.") || lower == "::1" || lower == "0.0.0.0" {
		v.add(key, fmt.Sprintf("%q only works on this machine, so clone URLs would not work anywhere else", h),
			"use the NAS's name or address as other machines reach it, e.g. nas.local or 192.168.1.10")
		return
	}
	if !hostPattern.MatchString(h) {
		v.add(key, fmt.Sprintf("%q is not a host name or IPv4 address", h), "e.g. nas.local or 192.168.1.10, without scheme or port")
	}
}

func (v *validator) absPath(key, p string, required bool) {
	switch {
	case p == "" && required:
		v.add(key, "missing", "an absolute directory path, e.g. /var/lib/forgebox")
	case p != "" && !filepath.IsAbs(p):
		v.add(key, fmt.Sprintf("%q is not an absolute path", p), "an absolute directory path, e.g. /var/lib/forgebox")
	case p != "" && filepath.Clean(p) == "/":
		v.add(key, "the root directory cannot hold forgebox's data", "use a directory of its own, e.g. /var/lib/forgebox")
	}
}

// dockerHost checks a remote engine profile: tcp://HOST:PORT, always with a certificate dir.
// An engine's TCP socket without TLS client certificates is root on that machine for anyone who
// reaches the port, so forgebox never writes one.
func (v *validator) dockerHost(key func(string) string, p Profile) {
	if p.DockerHost == "" {
		if p.DockerCertDir != "" {
			v.add(key("docker_cert_dir"), "set without docker_host", "remove it, or name the engine with docker_host = \"tcp://HOST:2376\"")
		}
		return
	}
	u, err := url.Parse(p.DockerHost)
	switch {
	case err != nil || u.Scheme != "tcp" || u.Hostname() == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") || u.User != nil:
		v.add(key("docker_host"), fmt.Sprintf("%q is not a Docker Engine address", p.DockerHost),
			"use tcp://HOST:PORT, e.g. tcp://build1.lan:2376 (the engine's TLS port)")
	default:
		if n, err := strconv.Atoi(u.Port()); err != nil || n < 1 || n > 65535 {
			v.add(key("docker_host"), fmt.Sprintf("%q has no valid port", p.DockerHost), "e.g. tcp://build1.lan:2376")
		}
	}
	if p.DockerCertDir == "" {
		v.add(key("docker_cert_dir"), "missing: a remote engine is reached only with TLS client certificates",
			"name a directory holding ca.pem, cert.pem and key.pem for that engine (see docs/scale-out.md)")
	} else if !filepath.IsAbs(p.DockerCertDir) {
		v.add(key("docker_cert_dir"), fmt.Sprintf("%q is not an absolute path", p.DockerCertDir), "e.g. /volume1/forgebox/certs/build1")
	}
}

var (
	projectPathPattern = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]*(/[A-Za-z0-9_.][A-Za-z0-9_.-]*)+$`)
	quantityPattern    = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$`)
	namespacePattern   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// kubernetes checks a kubernetes profile: the executor, the API server, the files and the
// requests and limits (Kubernetes quantities such as "500m" or "2Gi").
func (v *validator) kubernetes(key func(string) string, p Profile) {
	switch p.Executor {
	case "", "docker":
		if p.Kubernetes != nil {
			v.add(key("kubernetes"), "set on a profile whose executor is not kubernetes", "set executor = \"kubernetes\", or remove the table")
		}
		return
	case "kubernetes":
	default:
		v.oneOf(key("executor"), p.Executor, "docker", "kubernetes")
		return
	}
	if p.DockerHost != "" {
		v.add(key("docker_host"), "set on a kubernetes profile", "a profile runs on one Docker Engine or one cluster: remove docker_host")
	}
	k := p.Kubernetes
	if k == nil {
		v.add(key("kubernetes"), "missing", "add [runner.profiles.kubernetes] with host, ca_file, token_file and namespace")
		return
	}
	kk := func(s string) string { return key("kubernetes." + s) }
	if u, err := url.Parse(k.Host); err != nil || u.Scheme != "https" || u.Host == "" {
		v.add(kk("host"), fmt.Sprintf("%q is not an API server URL", k.Host), "e.g. https://k8s.lan:6443")
	}
	for _, nf := range [][2]string{{"ca_file", k.CAFile}, {"token_file", k.TokenFile}} {
		name, f := nf[0], nf[1]
		if !filepath.IsAbs(f) {
			v.add(kk(name), fmt.Sprintf("%q is not an absolute path", f), "a file on this machine, e.g. /volume1/forgebox/k8s/"+strings.TrimSuffix(name, "_file")+".pem")
		}
	}
	if !namespacePattern.MatchString(k.Namespace) {
		v.add(kk("namespace"), fmt.Sprintf("%q is not a namespace name", k.Namespace), "lowercase letters, digits and '-', e.g. \"gitlab-ci\"")
	}
	for _, nq := range [][2]string{{"cpu_request", k.CPURequest}, {"cpu_limit", k.CPULimit}, {"memory_request", k.MemoryRequest}, {"memory_limit", k.MemoryLimit}} {
		name, q := nq[0], nq[1]
		if q != "" && !quantityPattern.MatchString(q) {
			v.add(kk(name), fmt.Sprintf("%q is not a Kubernetes quantity", q), "e.g. \"500m\" or \"2\" for CPU, \"512Mi\" or \"2Gi\" for memory")
		}
	}
}
