package config

import (
	"fmt"
	"github.com/forgebox/forgebox/service/internal/msg"
	"github.com/google/go-containerregistry/pkg/name"
	"net/mail"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

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

func (v *validator) add(key string, m, hint msg.Msg) {
	v.errs = append(v.errs, NewFieldError(key, lineOfKey(v.src, key), m, hint))
}

// mc is shorthand for msg.New inside the validator.
func mc(code string, kv ...any) msg.Msg { return msg.New(code, kv...) }

func (c Config) validate(src []byte) []FieldError {
	v := &validator{src: src}
	if c.Version != CurrentVersion {
		switch {
		case c.Version == 0:
			v.add("version", mc("field.missing"), mc("hint.version.set", "version", CurrentVersion))
		case c.Version > CurrentVersion:
			v.add("version", mc("field.version.newer", "version", c.Version), mc("hint.version.upgrade", "version", CurrentVersion))
		default:
			v.add("version", mc("field.version.unsupported", "version", c.Version), mc("hint.allowed", "allowed", CurrentVersion))
		}
	}

	if !stackNamePattern.MatchString(c.Stack.Name) {
		v.add("stack.name", mc("field.stackName", "value", msg.Q(c.Stack.Name)), mc("hint.stackName"))
	}
	v.absPath("stack.data_dir", c.Stack.DataDir, true)
	v.absPath("stack.share_dir", c.Stack.ShareDir, false)
	v.absPath("stack.gitlab_dir", c.Stack.GitLabDir, false)
	v.oneOf("stack.pull_policy", c.Stack.PullPolicy, "missing", "always", "never")
	v.oneOf("stack.pull_via", c.Stack.PullVia, "auto", "engine", "forgebox")
	for i, m := range c.Stack.RegistryMirrors {
		if _, _, err := ParseMirror(m); err != nil {
			v.add("stack.registry_mirrors", mc("field.mirror", "n", i+1, "error", err.Error()), mc("hint.mirror"))
		}
	}
	if len(c.Stack.RegistryMirrors) > 0 && c.Stack.PullVia == "engine" {
		v.add("stack.registry_mirrors", mc("field.mirrorEngine"), mc("hint.mirrorEngine"))
	}

	v.image("postgres.image", c.Postgres.Image)
	if !roleNamePattern.MatchString(c.Postgres.Superuser) {
		v.add("postgres.superuser", mc("field.role", "value", msg.Q(c.Postgres.Superuser)), mc("hint.role"))
	} else if c.Postgres.Superuser == "gitlab" {
		v.add("postgres.superuser", mc("field.roleGitlab"), mc("hint.roleGitlab"))
	}
	v.image("redis.image", c.Redis.Image)

	v.oneOf("gitlab.flavour", c.GitLab.Flavour, "sameersbn", "omnibus")
	v.image("gitlab.image", c.GitLab.Image)
	v.host("gitlab.host", c.GitLab.Host)
	v.port("gitlab.http_port", c.GitLab.HTTPPort)
	v.port("gitlab.ssh_port", c.GitLab.SSHPort)
	if c.GitLab.HTTPPort != 0 && c.GitLab.HTTPPort == c.GitLab.SSHPort {
		v.add("gitlab.ssh_port", mc("field.portTwice", "port", c.GitLab.SSHPort), mc("hint.portTwice"))
	}
	v.oneOf("gitlab.memory", c.GitLab.Memory, "small", "standard")
	if c.GitLab.TimeZone != "" && !TimeZonePattern.MatchString(c.GitLab.TimeZone) {
		v.add("gitlab.time_zone", mc("field.timeZone", "value", msg.Q(c.GitLab.TimeZone)), mc("hint.timeZone"))
	}
	if a, err := mail.ParseAddress(c.GitLab.AdminEmail); err != nil || a.Address != c.GitLab.AdminEmail {
		v.add("gitlab.admin_email", mc("field.email", "value", msg.Q(c.GitLab.AdminEmail)), mc("hint.email"))
	}

	v.image("runner.image", c.Runner.Image)
	if c.Runner.HelperImage != "" {
		v.image("runner.helper_image", c.Runner.HelperImage)
	}
	if c.Runner.Concurrent < 1 || c.Runner.Concurrent > 64 {
		v.add("runner.concurrent", mc("field.range", "value", c.Runner.Concurrent), mc("hint.range", "min", 1, "max", 64))
	}
	if n := len(c.Runner.Profiles); c.Runner.Concurrent >= 1 && c.Runner.Concurrent < n {
		// GitLab Runner warns "Worker starvation bottleneck" when concurrent is below the number
		// of [[runners]] (commands/multi.go checkConfigConcurrency at v19.2.2): one runner would
		// wait for a worker while another holds it.
		v.add("runner.concurrent", mc("field.concurrentBelow", "value", c.Runner.Concurrent, "n", n), mc("hint.concurrentBelow", "n", n))
	}
	if len(c.Runner.Profiles) == 0 {
		v.add("runner.profiles", mc("field.noProfile"), mc("hint.noProfile"))
	}
	names := map[string]int{}
	for i, p := range c.Runner.Profiles {
		v.profile(i, p, names)
	}

	if c.Backup.Schedule != "" && !timeOfDayPattern.MatchString(c.Backup.Schedule) {
		v.add("backup.schedule", mc("field.schedule", "value", msg.Q(c.Backup.Schedule)), mc("hint.schedule"))
	}
	if c.Backup.Keep < 1 || c.Backup.Keep > 1000 {
		v.add("backup.keep", mc("field.range", "value", c.Backup.Keep), mc("hint.keep"))
	}
	v.absPath("backup.dir", c.Backup.Dir, false)
	return v.errs
}

func (v *validator) profile(i int, p Profile, names map[string]int) {
	key := func(k string) string { return fmt.Sprintf("runner.profiles[%d].%s", i, k) }
	switch {
	case p.Name == "":
		v.add(key("name"), mc("field.missing"), mc("hint.profileName"))
	case !profileNamePattern.MatchString(p.Name):
		v.add(key("name"), mc("field.profileName", "value", msg.Q(p.Name)), mc("hint.profileNameChars"))
	default:
		if first, dup := names[p.Name]; dup {
			v.add(key("name"), mc("field.profileTwice", "value", msg.Q(p.Name)), mc("hint.profileTwice", "first", first))
		} else {
			names[p.Name] = i
		}
	}
	v.image(key("image"), p.Image)
	if len(p.Tags) == 0 && !p.RunUntagged {
		v.add(key("tags"), mc("field.noTags"), mc("hint.noTags"))
	}
	seen := map[string]bool{}
	for _, t := range p.Tags {
		if !tagPattern.MatchString(t) || strings.TrimSpace(t) != t {
			v.add(key("tags"), mc("field.tag", "value", msg.Q(t)), mc("hint.tag"))
		} else if seen[t] {
			v.add(key("tags"), mc("field.tagTwice", "value", msg.Q(t)), mc("hint.tagTwice"))
		}
		seen[t] = true
	}
	if p.CPUs != "" {
		if f, err := strconv.ParseFloat(p.CPUs, 64); err != nil || !(f > 0 && f <= 256) { // NaN fails both comparisons
			v.add(key("cpus"), mc("field.cpus", "value", msg.Q(p.CPUs)), mc("hint.cpus"))
		}
	}
	if p.Memory != "" {
		if b, err := units.RAMInBytes(p.Memory); err != nil || b < 6*1024*1024 {
			v.add(key("memory"), mc("field.memory", "value", msg.Q(p.Memory)), mc("hint.memory"))
		}
	}
	v.dockerHost(key, p)
	v.kubernetes(key, p)
	if p.Project != "" && !projectPathPattern.MatchString(p.Project) {
		v.add(key("project"), mc("field.project", "value", msg.Q(p.Project)), mc("hint.project"))
	}
	switch {
	case p.Group != "" && p.Project != "":
		v.add(key("group"), mc("field.groupAndProject"), mc("hint.groupAndProject"))
	case p.Group != "" && !groupPathPattern.MatchString(p.Group):
		v.add(key("group"), mc("field.group", "value", msg.Q(p.Group)), mc("hint.group"))
	}
	if p.Concurrency < 1 || p.Concurrency > 64 {
		v.add(key("concurrency"), mc("field.range", "value", p.Concurrency), mc("hint.range", "min", 1, "max", 64))
	}
}

func (v *validator) oneOf(key, val string, allowed ...string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	m := mc("field.notAllowed", "value", msg.Q(val))
	if val == "" {
		m = mc("field.missing")
	}
	v.add(key, m, mc("hint.allowed", "allowed", strings.Join(allowed, ", ")))
}

func (v *validator) image(key, ref string) {
	if ref == "" {
		v.add(key, mc("field.missing"), mc("hint.image"))
		return
	}
	if err := checkImageRef(ref); err != nil {
		v.add(key, mc("field.image", "value", msg.Q(ref), "error", err.Error()), mc("hint.imageSyntax"))
	}
}

// checkImageRef holds ref to the distribution spec's grammar. go-containerregistry parses it
// (registry, repository, tag or digest), and the repository's path components and the tag are
// then held to the spec's patterns, which that parser does not check ("a..b", "x:-bad"). Not
// distribution/reference: its package-level regular expressions cost every start of the small
// DSM front (index.cgi) several milliseconds (bench/README.md); these compile on first use.
func checkImageRef(ref string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	g := refGrammar()
	for _, c := range strings.Split(r.Context().RepositoryStr(), "/") {
		if !g.component.MatchString(c) {
			return fmt.Errorf("repository path component %q is not lowercase letters and digits joined by '.', '_', '__' or '-'", c)
		}
	}
	if tag, ok := r.(name.Tag); ok && !g.tag.MatchString(tag.TagStr()) {
		return fmt.Errorf("tag %q must start with a letter, digit or '_' and have at most 128 characters", tag.TagStr())
	}
	return nil
}

var refGrammar = sync.OnceValue(func() struct{ component, tag *regexp.Regexp } {
	return struct{ component, tag *regexp.Regexp }{
		component: regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`),
		tag:       regexp.MustCompile(`^[\w][\w.-]{0,127}$`),
	}
})

func (v *validator) port(key string, p int) {
	switch {
	case p < 1 || p > 65535:
		v.add(key, mc("field.port", "value", p), mc("hint.port"))
	case DSMReservedPorts[p] != "":
		v.add(key, mc("field.portDSM", "port", p, "service", DSMReservedPorts[p]), mc("hint.portDSM"))
	}
}

func (v *validator) host(key, h string) {
	if h == "" {
		return // this machine's host name, resolved when the stack is built
	}
	lower := strings.ToLower(h)
	if lower == "localhost" || strings.HasPrefix(lower, "127.") || lower == "::1" || lower == "0.0.0.0" {
		v.add(key, mc("field.hostLocal", "value", msg.Q(h)), mc("hint.hostLocal"))
		return
	}
	if !hostPattern.MatchString(h) {
		v.add(key, mc("field.host", "value", msg.Q(h)), mc("hint.host"))
	}
}

func (v *validator) absPath(key, p string, required bool) {
	switch {
	case p == "" && required:
		v.add(key, mc("field.missing"), mc("hint.absPath"))
	case p != "" && !filepath.IsAbs(p):
		v.add(key, mc("field.absPath", "value", msg.Q(p)), mc("hint.absPath"))
	case p != "" && filepath.Clean(p) == "/":
		v.add(key, mc("field.rootDir"), mc("hint.rootDir"))
	}
}

// dockerHost checks a remote engine profile: tcp://HOST:PORT, always with a certificate dir.
// An engine's TCP socket without TLS client certificates is root on that machine for anyone who
// reaches the port, so forgebox never writes one.
func (v *validator) dockerHost(key func(string) string, p Profile) {
	if p.DockerHost == "" {
		if p.DockerCertDir != "" {
			v.add(key("docker_cert_dir"), mc("field.certDirAlone"), mc("hint.certDirAlone"))
		}
		return
	}
	u, err := url.Parse(p.DockerHost)
	switch {
	case err != nil || u.Scheme != "tcp" || u.Hostname() == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") || u.User != nil:
		v.add(key("docker_host"), mc("field.dockerHost", "value", msg.Q(p.DockerHost)), mc("hint.dockerHost"))
	default:
		if n, err := strconv.Atoi(u.Port()); err != nil || n < 1 || n > 65535 {
			v.add(key("docker_host"), mc("field.dockerHostPort", "value", msg.Q(p.DockerHost)), mc("hint.dockerHostPort"))
		}
	}
	if p.DockerCertDir == "" {
		v.add(key("docker_cert_dir"), mc("field.certDirMissing"), mc("hint.certDirMissing"))
	} else if !filepath.IsAbs(p.DockerCertDir) {
		v.add(key("docker_cert_dir"), mc("field.notAbsolute", "value", msg.Q(p.DockerCertDir)), mc("hint.certDirPath"))
	}
}

var (
	projectPathPattern = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]*(/[A-Za-z0-9_.][A-Za-z0-9_.-]*)+$`)
	groupPathPattern   = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]*(/[A-Za-z0-9_.][A-Za-z0-9_.-]*)*$`)
	quantityPattern    = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$`)
	namespacePattern   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// kubernetes checks a kubernetes profile: the executor, the API server, the files and the
// requests and limits (Kubernetes quantities such as "500m" or "2Gi").
func (v *validator) kubernetes(key func(string) string, p Profile) {
	switch p.Executor {
	case "", "docker":
		if p.Kubernetes != nil {
			v.add(key("kubernetes"), mc("field.kubeNotKube"), mc("hint.kubeNotKube"))
		}
		return
	case "kubernetes":
	default:
		v.oneOf(key("executor"), p.Executor, "docker", "kubernetes")
		return
	}
	if p.DockerHost != "" {
		v.add(key("docker_host"), mc("field.kubeDockerHost"), mc("hint.kubeDockerHost"))
	}
	k := p.Kubernetes
	if k == nil {
		v.add(key("kubernetes"), mc("field.missing"), mc("hint.kubeMissing"))
		return
	}
	kk := func(s string) string { return key("kubernetes." + s) }
	if u, err := url.Parse(k.Host); err != nil || u.Scheme != "https" || u.Host == "" {
		v.add(kk("host"), mc("field.kubeHost", "value", msg.Q(k.Host)), mc("hint.kubeHost"))
	}
	for _, nf := range [][2]string{{"ca_file", k.CAFile}, {"token_file", k.TokenFile}} {
		name, f := nf[0], nf[1]
		if !filepath.IsAbs(f) {
			v.add(kk(name), mc("field.notAbsolute", "value", msg.Q(f)), mc("hint.kubeFile", "example", "/volume1/forgebox/k8s/"+strings.TrimSuffix(name, "_file")+".pem"))
		}
	}
	if !namespacePattern.MatchString(k.Namespace) {
		v.add(kk("namespace"), mc("field.kubeNamespace", "value", msg.Q(k.Namespace)), mc("hint.kubeNamespace"))
	}
	for _, nq := range [][2]string{{"cpu_request", k.CPURequest}, {"cpu_limit", k.CPULimit}, {"memory_request", k.MemoryRequest}, {"memory_limit", k.MemoryLimit}} {
		name, q := nq[0], nq[1]
		if q != "" && !quantityPattern.MatchString(q) {
			v.add(kk(name), mc("field.kubeQuantity", "value", msg.Q(q)), mc("hint.kubeQuantity"))
		}
	}
}
