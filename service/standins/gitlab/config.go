package main

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Flavours of the real image the stand-in takes the place of.
const (
	flavourSameersbn = "sameersbn" // sameersbn/gitlab: configured by plain env vars
	flavourOmnibus   = "omnibus"   // gitlab/gitlab-ce: configured by GITLAB_OMNIBUS_CONFIG
)

// Config is what the stand-in learned from its environment, the same for both flavours.
type Config struct {
	Flavour string

	DBHost, DBUser, DBPassword, DBName string
	DBPort                             int

	RedisHost     string
	RedisPort     int
	RedisPassword string

	PublicHost    string // GITLAB_HOST or external_url's host: what clone URLs would say
	PublicPort    int    // GITLAB_PORT or external_url's port
	PublicSSHPort int    // GITLAB_SSH_PORT or gitlab_shell_ssh_port
	HTTPListen    int    // container port the HTTP server listens on
	SSHListen     int    // container port of the "ssh" banner listener

	RootPassword string
	RootEmail    string

	Monitoring []netip.Prefix // who may GET /-/health, /-/liveness, /-/readiness

	BootDelay time.Duration
	Version   string // the GitLab version the stand-in claims (GITLAB_VERSION / FORGEBOX_STANDIN_VERSION)

	// The sameersbn entrypoint's restart after the migrations (restart.go).
	RestartAfterMigration bool          // FORGEBOX_STANDIN_RESTART_AFTER_MIGRATION, default on for sameersbn
	SetupTime             time.Duration // FORGEBOX_STANDIN_SETUP_TIME: gitlab:setup / db:migrate
	RestartGap            time.Duration // FORGEBOX_STANDIN_RESTART_GAP: between the two supervisords

	AdminMode bool // FORGEBOX_STANDIN_ADMIN_MODE: the instance setting "Admin Mode" (GitLab's default off)
	// FORGEBOX_STANDIN_RUNNER_TOKEN_EXPIRES_IN: runner authentication tokens expire after this
	// (GitLab's runner_token_expiration_interval); 0, the default, means they never expire.
	RunnerTokenExpiresIn time.Duration
}

// ExternalURL is the URL GitLab would advertise.
func (c Config) ExternalURL() string {
	if c.PublicPort == 80 {
		return "http://" + c.PublicHost
	}
	return "http://" + net.JoinHostPort(c.PublicHost, strconv.Itoa(c.PublicPort))
}

// problems collects every wiring mistake found, so one start names all of them.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// ConfigError lists what is wrong with the environment.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string { return strings.Join(e.Problems, "; ") }

// defaultVersion is the GitLab version the stand-in reports unless FORGEBOX_STANDIN_VERSION says
// otherwise.
const defaultVersion = "18.5.1"

// LoadConfig reads the environment (a lookup function, for tests) and validates it strictly.
func LoadConfig(getenv func(string) (string, bool)) (Config, error) {
	var p problems
	var c Config
	if omni, ok := getenv("GITLAB_OMNIBUS_CONFIG"); ok {
		c = omnibusConfig(omni, &p)
	} else {
		c = sameersbnConfig(getenv, &p)
	}

	c.BootDelay = 3 * time.Second
	if v, ok := getenv("FORGEBOX_STANDIN_BOOT_DELAY"); ok && v != "" {
		d, err := parseDelay(v)
		if err != nil {
			p.add("FORGEBOX_STANDIN_BOOT_DELAY=%q: %v", v, err)
		}
		c.BootDelay = d
	}
	c.Version = defaultVersion
	versionForm := regexp.MustCompile(`^\d+\.\d+\.\d+$`)
	if v, ok := getenv("FORGEBOX_STANDIN_VERSION"); ok && v != "" {
		if !versionForm.MatchString(v) {
			p.add("FORGEBOX_STANDIN_VERSION=%q is not a version like 18.5.1", v)
		}
		c.Version = v
	}
	// sameersbn's Dockerfile sets ENV GITLAB_VERSION, and its entrypoint compares that with the
	// data's VERSION file (sameersbn/docker-gitlab 18.5.1 Dockerfile:5, functions
	// migrate_database); forgebox reads it from the container to know when migrations are done.
	// A derived stand-in image must not claim two versions at once.
	if v, ok := getenv("GITLAB_VERSION"); ok && v != "" && c.Flavour == flavourSameersbn {
		switch {
		case !versionForm.MatchString(v):
			p.add("GITLAB_VERSION=%q is not a version like 18.5.1", v)
		case v != c.Version && getenvSet(getenv, "FORGEBOX_STANDIN_VERSION"):
			p.add("GITLAB_VERSION=%s and FORGEBOX_STANDIN_VERSION=%s differ: a derived stand-in image must set both to the version it claims", v, c.Version)
		default:
			c.Version = v
		}
	}
	c.RestartAfterMigration = c.Flavour == flavourSameersbn
	if v, ok := getenv("FORGEBOX_STANDIN_RESTART_AFTER_MIGRATION"); ok && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			p.add("FORGEBOX_STANDIN_RESTART_AFTER_MIGRATION=%q is not a boolean", v)
		}
		c.RestartAfterMigration = b && c.Flavour == flavourSameersbn
	}
	// The simulated migration outlasts Puma's boot by default, so readiness answers ok while it
	// runs, as it can on the real image.
	c.SetupTime = c.BootDelay + time.Second
	c.RestartGap = 500 * time.Millisecond
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{"FORGEBOX_STANDIN_SETUP_TIME", &c.SetupTime}, {"FORGEBOX_STANDIN_RESTART_GAP", &c.RestartGap}, {"FORGEBOX_STANDIN_RUNNER_TOKEN_EXPIRES_IN", &c.RunnerTokenExpiresIn}} {
		if v, ok := getenv(d.name); ok && v != "" {
			x, err := parseDelay(v)
			if err != nil {
				p.add("%s=%q: %v", d.name, v, err)
			}
			*d.dst = x
		}
	}
	if v, ok := getenv("FORGEBOX_STANDIN_ADMIN_MODE"); ok && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			p.add("FORGEBOX_STANDIN_ADMIN_MODE=%q is not a boolean", v)
		}
		c.AdminMode = b
	}
	if len(p) > 0 {
		return c, &ConfigError{Problems: p}
	}
	return c, nil
}

func getenvSet(getenv func(string) (string, bool), k string) bool {
	v, ok := getenv(k)
	return ok && v != ""
}

// parseDelay takes a Go duration ("3s", "500ms") or a number of seconds ("3").
func parseDelay(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("not a duration")
	}
	return d, nil
}

var (
	alnum32     = regexp.MustCompile(`^[A-Za-z0-9]{32,}$`)
	alnumPlain  = regexp.MustCompile(`^[A-Za-z0-9]+$`)
	arKeyForm   = regexp.MustCompile(`^\["[A-Za-z0-9]{32,}"\]$`)
	emailForm   = regexp.MustCompile(`^[^@\s]+@[^@\s]+$`)
	hostnameish = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)
)

// sameersbnConfig applies the sameersbn/gitlab rules (docs/gitlab-contract.md §1.3).
func sameersbnConfig(getenv func(string) (string, bool), p *problems) Config {
	get := func(k string) string { v, _ := getenv(k); return v }
	c := Config{Flavour: flavourSameersbn, HTTPListen: 80, SSHListen: 22}

	if v := get("DB_ADAPTER"); v != "" && v != "postgresql" {
		p.add("DB_ADAPTER=%q: the image supports only postgresql", v)
	}
	c.DBHost = get("DB_HOST")
	if c.DBHost == "" {
		p.add("DB_HOST is not set: the entrypoint aborts with \"Please configure the database connection\"")
	}
	c.DBUser = get("DB_USER")
	switch c.DBUser {
	case "":
		p.add("DB_USER is not set: the real image then logs in as \"root\" (FATAL: role \"root\" does not exist); set it to GitLab's role")
	case "root":
		p.add("DB_USER=root: that is the image's fallback when DB_USER is unset, never GitLab's provisioned role (FATAL: role \"root\" does not exist)")
	}
	c.DBPassword = get("DB_PASS")
	if c.DBPassword == "" {
		p.add("DB_PASS is not set")
	}
	c.DBName = orDefault(get("DB_NAME"), "gitlabhq_production")
	c.DBPort = portEnv(get, "DB_PORT", 5432, p)

	c.RedisHost = get("REDIS_HOST")
	if c.RedisHost == "" {
		p.add("REDIS_HOST is not set: the entrypoint aborts when it is empty")
	}
	c.RedisPort = portEnv(get, "REDIS_PORT", 6379, p)
	if v := get("REDIS_DB_NUMBER"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 0 || n > 15 {
			p.add("REDIS_DB_NUMBER=%q is not a Redis database number", v)
		}
	}

	for _, k := range []string{"GITLAB_SECRETS_DB_KEY_BASE", "GITLAB_SECRETS_SECRET_KEY_BASE",
		"GITLAB_SECRETS_OTP_KEY_BASE", "GITLAB_SECRETS_ENCRYPTED_SETTINGS_KEY_BASE"} {
		v := get(k)
		switch {
		case v == "":
			p.add("%s is not set: GitLab would generate one inside the container and lose it on recreate", k)
		case !alnum32.MatchString(v):
			p.add("%s must be at least 32 alphanumeric characters (got %d characters%s)", k, len(v), hintQuotes(v))
		}
	}
	for _, k := range []string{"GITLAB_SECRETS_ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY",
		"GITLAB_SECRETS_ACTIVE_RECORD_ENCRYPTION_DETERMINISTIC_KEY"} {
		v := get(k)
		switch {
		case v == "":
			p.add("%s is not set: GitLab would generate one inside the container and lose it on recreate", k)
		case !arKeyForm.MatchString(v):
			p.add("%s must be exactly [\"<32+ alphanumerics>\"] (a YAML array, no extra quotes)%s", k, hintQuotes(v))
		}
	}
	salt := "GITLAB_SECRETS_ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT"
	switch v := get(salt); {
	case v == "":
		p.add("%s is not set: GitLab would generate one inside the container and lose it on recreate", salt)
	case !alnumPlain.MatchString(v):
		p.add("%s must be a plain alphanumeric string (not an array, no quotes)%s", salt, hintQuotes(v))
	}

	if v := get("GITLAB_HTTPS"); v != "" && v != "false" {
		p.add("GITLAB_HTTPS=%q: the stand-in serves plain HTTP only", v)
	}
	c.PublicHost = get("GITLAB_HOST")
	checkPublicHost("GITLAB_HOST", c.PublicHost, p)
	c.PublicPort = requiredPort(get, "GITLAB_PORT", p)
	c.PublicSSHPort = requiredPort(get, "GITLAB_SSH_PORT", p)
	if v := get("GITLAB_SSH_LISTEN_PORT"); v != "" {
		c.SSHListen = portEnv(get, "GITLAB_SSH_LISTEN_PORT", 22, p)
	}
	if v := get("GITLAB_RELATIVE_URL_ROOT"); v != "" {
		p.add("GITLAB_RELATIVE_URL_ROOT=%q: the stand-in does not emulate a relative URL root", v)
	}

	c.RootPassword = get("GITLAB_ROOT_PASSWORD")
	if len(c.RootPassword) < 8 {
		p.add("GITLAB_ROOT_PASSWORD must be at least 8 characters (got %d): a short one leaves a database without root", len(c.RootPassword))
	}
	c.RootEmail = get("GITLAB_ROOT_EMAIL")
	if !emailForm.MatchString(c.RootEmail) {
		p.add("GITLAB_ROOT_EMAIL=%q is not an email address", c.RootEmail)
	}

	c.Monitoring = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	wl := get("GITLAB_MONITORING_IP_WHITELIST")
	switch pr, err := netip.ParsePrefix(wl); {
	case wl == "":
		p.add("GITLAB_MONITORING_IP_WHITELIST is not set: only 127.0.0.0/8 could probe readiness")
	case err != nil:
		p.add("GITLAB_MONITORING_IP_WHITELIST=%q must be exactly one CIDR (the image renders it as one YAML list item)", wl)
	default:
		c.Monitoring = append(c.Monitoring, pr.Masked())
	}
	return c
}

func hintQuotes(v string) string {
	if strings.ContainsAny(v, `'`) || (strings.HasPrefix(v, `"`) && strings.HasSuffix(v, `"`)) {
		return "; the value carries extra quotes"
	}
	return ""
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

func parsePort(v string) (int, bool) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != v {
		return 0, false
	}
	return n, true
}

func portEnv(get func(string) string, k string, def int, p *problems) int {
	v := get(k)
	if v == "" {
		return def
	}
	n, ok := parsePort(v)
	if !ok {
		p.add("%s=%q is not a port number", k, v)
	}
	return n
}

func requiredPort(get func(string) string, k string, p *problems) int {
	v := get(k)
	if v == "" {
		p.add("%s is not set", k)
		return 0
	}
	n, ok := parsePort(v)
	if !ok {
		p.add("%s=%q is not a port number", k, v)
	}
	return n
}

// checkPublicHost refuses hosts that make GitLab's clone URLs point at the user's own machine.
func checkPublicHost(what, h string, p *problems) {
	switch {
	case h == "":
		p.add("%s is empty: clone URLs would say 127.0.0.1", what)
		return
	case strings.EqualFold(h, "localhost") || strings.HasSuffix(strings.ToLower(h), ".localhost"):
		p.add("%s=%q: clone URLs would point at the user's own machine", what, h)
		return
	}
	if ip, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		if ip.IsLoopback() || ip.IsUnspecified() {
			p.add("%s=%q: a loopback or unspecified address makes clone URLs useless", what, h)
		}
		return
	}
	if !hostnameish.MatchString(h) {
		p.add("%s=%q is not a host name", what, h)
	}
}

// omnibusConfig applies the gitlab/gitlab-ce rules (docs/gitlab-contract.md §2.2) to the Ruby subset
// forgebox writes into GITLAB_OMNIBUS_CONFIG.
func omnibusConfig(src string, p *problems) Config {
	c := Config{Flavour: flavourOmnibus, SSHListen: 22}
	rb, err := ParseOmnibus(src)
	if err != nil {
		p.add("GITLAB_OMNIBUS_CONFIG: %v", err)
		return c
	}
	if rb.ExternalURL == "" {
		p.add("GITLAB_OMNIBUS_CONFIG: external_url is not set: Omnibus would use http://<container hostname>")
	} else if u, err := url.Parse(rb.ExternalURL); err != nil || u.Host == "" {
		p.add("GITLAB_OMNIBUS_CONFIG: external_url %q is not a URL", rb.ExternalURL)
	} else {
		if u.Scheme != "http" {
			p.add("GITLAB_OMNIBUS_CONFIG: external_url %q: the stand-in serves plain http only", rb.ExternalURL)
		}
		if u.Path != "" && u.Path != "/" {
			p.add("GITLAB_OMNIBUS_CONFIG: external_url %q: the stand-in does not emulate a relative URL root", rb.ExternalURL)
		}
		c.PublicHost = u.Hostname()
		checkPublicHost("external_url host", c.PublicHost, p)
		c.PublicPort = 80
		if ps := u.Port(); ps != "" {
			n, ok := parsePort(ps)
			if !ok {
				p.add("GITLAB_OMNIBUS_CONFIG: external_url %q has a bad port", rb.ExternalURL)
			}
			c.PublicPort = n
		}
		c.HTTPListen = c.PublicPort // Omnibus nginx listens on external_url's port
	}

	wantFalse := func(key string) {
		v, ok := rb.Get(key)
		if !ok {
			p.add("GITLAB_OMNIBUS_CONFIG: %s is not set: Omnibus would run its bundled service instead of the stack's", key)
		} else if v.Kind != KindBool || v.Bool {
			p.add("GITLAB_OMNIBUS_CONFIG: %s must be false (got %s)", key, v)
		}
	}
	wantFalse("postgresql['enable']")
	wantFalse("redis['enable']")

	str := func(key string, required bool) string {
		v, ok := rb.Get(key)
		if !ok {
			if required {
				p.add("GITLAB_OMNIBUS_CONFIG: %s is not set", key)
			}
			return ""
		}
		if v.Kind != KindString {
			p.add("GITLAB_OMNIBUS_CONFIG: %s must be a string (got %s)", key, v)
			return ""
		}
		if required && v.Str == "" {
			p.add("GITLAB_OMNIBUS_CONFIG: %s is empty", key)
		}
		return v.Str
	}
	port := func(key string) int {
		v, ok := rb.Get(key)
		if !ok {
			p.add("GITLAB_OMNIBUS_CONFIG: %s is not set", key)
			return 0
		}
		if v.Kind != KindInt || v.Int < 1 || v.Int > 65535 {
			p.add("GITLAB_OMNIBUS_CONFIG: %s must be a port number (an integer, got %s)", key, v)
			return 0
		}
		return int(v.Int)
	}
	if v, ok := rb.Get("gitlab_rails['db_adapter']"); ok && (v.Kind != KindString || v.Str != "postgresql") {
		p.add("GITLAB_OMNIBUS_CONFIG: gitlab_rails['db_adapter'] must be 'postgresql' (got %s)", v)
	}
	c.DBHost = str("gitlab_rails['db_host']", true)
	c.DBPort = port("gitlab_rails['db_port']")
	c.DBUser = str("gitlab_rails['db_username']", true)
	if c.DBUser == "root" {
		p.add("GITLAB_OMNIBUS_CONFIG: gitlab_rails['db_username'] = 'root' is not GitLab's provisioned role")
	}
	c.DBPassword = str("gitlab_rails['db_password']", true)
	c.DBName = str("gitlab_rails['db_database']", true)
	c.RedisHost = str("gitlab_rails['redis_host']", true)
	c.RedisPort = port("gitlab_rails['redis_port']")
	if v, ok := rb.Get("gitlab_rails['redis_password']"); ok {
		switch v.Kind {
		case KindNil:
		case KindString:
			c.RedisPassword = v.Str
		default:
			p.add("GITLAB_OMNIBUS_CONFIG: gitlab_rails['redis_password'] must be a string or nil (got %s)", v)
		}
	}
	c.RootPassword = str("gitlab_rails['initial_root_password']", true)
	if c.RootPassword != "" && len(c.RootPassword) < 8 {
		p.add("GITLAB_OMNIBUS_CONFIG: gitlab_rails['initial_root_password'] must be at least 8 characters (got %d): a short one leaves a database without root", len(c.RootPassword))
	}
	c.RootEmail = "admin@example.com"
	if e := str("gitlab_rails['initial_root_email']", false); e != "" {
		c.RootEmail = e
	}
	c.PublicSSHPort = port("gitlab_rails['gitlab_shell_ssh_port']")

	if v, ok := rb.Get("gitlab_rails['monitoring_whitelist']"); !ok {
		p.add("GITLAB_OMNIBUS_CONFIG: gitlab_rails['monitoring_whitelist'] is not set: only 127.0.0.0/8 and ::1 could probe readiness")
	} else if v.Kind != KindArray || len(v.List) == 0 {
		p.add("GITLAB_OMNIBUS_CONFIG: gitlab_rails['monitoring_whitelist'] must be a non-empty array of CIDRs (got %s)", v)
	} else {
		// The list replaces Omnibus's default ['127.0.0.0/8', '::1/128'] entirely.
		for _, s := range v.List {
			pr, err := parsePrefixOrAddr(s)
			if err != nil {
				p.add("GITLAB_OMNIBUS_CONFIG: gitlab_rails['monitoring_whitelist'] entry %q is not a CIDR", s)
				continue
			}
			c.Monitoring = append(c.Monitoring, pr)
		}
	}
	return c
}

func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	if pr, err := netip.ParsePrefix(s); err == nil {
		return pr.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// osLookup is the process environment.
func osLookup(k string) (string, bool) { return os.LookupEnv(k) }
