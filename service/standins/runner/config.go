package main

import (
	"bytes"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/docker/go-units"
)

// Config models the config.toml keys of gitlab-runner that forgebox may write (RUN
// common/config.go; docs/gitlab-contract.md §5). Keys outside the model are errors: the stand-in is
// stricter than the real runner, which ignores some unknown keys, so that a misspelt key fails a
// test instead of being silently dropped.
type Config struct {
	Concurrent       int            `toml:"concurrent"`
	CheckInterval    int            `toml:"check_interval"`
	LogLevel         *string        `toml:"log_level"`
	LogFormat        *string        `toml:"log_format"`
	ShutdownTimeout  int            `toml:"shutdown_timeout"`
	ListenAddress    string         `toml:"listen_address"`
	ConnectionMaxAge *string        `toml:"connection_max_age"`
	SessionServer    *SessionServer `toml:"session_server"`
	Runners          []Runner       `toml:"runners"`
}

// SessionServer is [session_server].
type SessionServer struct {
	ListenAddress    string `toml:"listen_address"`
	AdvertiseAddress string `toml:"advertise_address"`
	SessionTimeout   int    `toml:"session_timeout"`
}

// Runner is one [[runners]] entry.
type Runner struct {
	Name               string          `toml:"name"`
	URL                string          `toml:"url"`
	ID                 int64           `toml:"id"`
	Token              string          `toml:"token"`
	TokenObtainedAt    Datetime        `toml:"token_obtained_at"`
	TokenExpiresAt     Datetime        `toml:"token_expires_at"`
	TLSCAFile          string          `toml:"tls-ca-file"`
	TLSCertFile        string          `toml:"tls-cert-file"`
	TLSKeyFile         string          `toml:"tls-key-file"`
	Executor           string          `toml:"executor"`
	Limit              int             `toml:"limit"`
	RequestConcurrency int             `toml:"request_concurrency"`
	OutputLimit        int             `toml:"output_limit"`
	CloneURL           string          `toml:"clone_url"`
	Environment        []string        `toml:"environment"`
	BuildsDir          string          `toml:"builds_dir"`
	CacheDir           string          `toml:"cache_dir"`
	Shell              string          `toml:"shell"`
	FeatureFlags       map[string]bool `toml:"feature_flags"`
	Docker             *Docker         `toml:"docker"`
	Cache              *Cache          `toml:"cache"`
}

// Docker is [runners.docker].
type Docker struct {
	Host                   string     `toml:"host"`
	TLSVerify              bool       `toml:"tls_verify"`
	TLSCertPath            string     `toml:"tls_cert_path"`
	Image                  string     `toml:"image"`
	Privileged             bool       `toml:"privileged"`
	Volumes                []string   `toml:"volumes"`
	NetworkMode            string     `toml:"network_mode"`
	ExtraHosts             []string   `toml:"extra_hosts"`
	DNS                    []string   `toml:"dns"`
	DNSSearch              []string   `toml:"dns_search"`
	PullPolicy             PullPolicy `toml:"pull_policy"`
	AllowedPullPolicies    []string   `toml:"allowed_pull_policies"`
	HelperImage            string     `toml:"helper_image"`
	HelperImageFlavor      string     `toml:"helper_image_flavor"`
	Memory                 string     `toml:"memory"`
	MemorySwap             string     `toml:"memory_swap"`
	MemoryReservation      string     `toml:"memory_reservation"`
	CPUs                   string     `toml:"cpus"`
	ShmSize                int64      `toml:"shm_size"`
	DisableCache           bool       `toml:"disable_cache"`
	CacheDir               string     `toml:"cache_dir"`
	WaitForServicesTimeout int        `toml:"wait_for_services_timeout"`
}

// Cache is [runners.cache]; note the CamelCase keys.
type Cache struct {
	Type                   string `toml:"Type"`
	Path                   string `toml:"Path"`
	Shared                 bool   `toml:"Shared"`
	MaxUploadedArchiveSize int64  `toml:"MaxUploadedArchiveSize"`
}

// Datetime is a TOML datetime, as the runner writes token_obtained_at and token_expires_at. A
// quoted string is refused: the real runner would parse an RFC 3339 string too (time.Time is a
// TextUnmarshaler), but forgebox must write what the runner itself writes.
type Datetime struct{ time.Time }

// UnmarshalTOML takes only a TOML offset datetime.
func (d *Datetime) UnmarshalTOML(v any) error {
	t, ok := v.(time.Time)
	if !ok {
		return fmt.Errorf("must be a TOML datetime (e.g. 2026-08-01T00:00:00Z, unquoted), not %T", v)
	}
	d.Time = t
	return nil
}

// PullPolicy is a string or an array of strings (the runner's StringOrArray).
type PullPolicy []string

// UnmarshalTOML takes "always" or ["if-not-present", "never"].
func (p *PullPolicy) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case string:
		*p = PullPolicy{x}
	case []any:
		out := PullPolicy{}
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("pull_policy: %v is not a string", e)
			}
			out = append(out, s)
		}
		*p = out
	default:
		return fmt.Errorf("pull_policy: must be a string or an array of strings, not %T", v)
	}
	return nil
}

var (
	pullPolicies = []string{"always", "if-not-present", "never"}
	logLevels    = []string{"debug", "info", "warn", "error", "fatal", "panic"}
	logFormats   = []string{"runner", "text", "json"}
	cacheTypes   = []string{"", "s3", "gcs", "azure"}
	envEntry     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
)

// ParseConfig decodes config.toml strictly: a syntax error, a value of the wrong type, a key
// outside the model or a value the real runner would refuse is an error naming the key.
func ParseConfig(data []byte) (*Config, error) {
	var c Config
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&c)
	if err != nil {
		return nil, err
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("unknown key(s): %s", strings.Join(keys, ", "))
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func oneOf(v string, allowed []string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

func (c *Config) validate() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if c.Concurrent < 1 {
		bad("concurrent = %d: must be at least 1 (the runner exits on 0)", c.Concurrent)
	}
	if c.CheckInterval < 0 {
		bad("check_interval = %d: must not be negative", c.CheckInterval)
	}
	if c.ShutdownTimeout < 0 {
		bad("shutdown_timeout = %d: must not be negative", c.ShutdownTimeout)
	}
	if c.LogLevel != nil && !oneOf(*c.LogLevel, logLevels) {
		bad("log_level = %q: not one of %s", *c.LogLevel, strings.Join(logLevels, ", "))
	}
	if c.LogFormat != nil && !oneOf(*c.LogFormat, logFormats) {
		bad("log_format = %q: not one of %s", *c.LogFormat, strings.Join(logFormats, ", "))
	}
	if c.ConnectionMaxAge != nil {
		if _, err := time.ParseDuration(*c.ConnectionMaxAge); err != nil {
			bad("connection_max_age = %q: not a duration", *c.ConnectionMaxAge)
		}
	}
	if c.ListenAddress != "" {
		if err := checkListen(c.ListenAddress); err != nil {
			bad("listen_address = %q: %v", c.ListenAddress, err)
		}
	}
	seen := map[string]int{}
	for i, r := range c.Runners {
		at := fmt.Sprintf("runners[%d]", i)
		if r.Name != "" {
			at = fmt.Sprintf("runners[%d] (%s)", i, r.Name)
		}
		if err := checkURL(r.URL); err != nil {
			bad("%s.url = %q: %v", at, r.URL, err)
		}
		if r.CloneURL != "" {
			if err := checkURL(r.CloneURL); err != nil {
				bad("%s.clone_url = %q: %v", at, r.CloneURL, err)
			}
		}
		if r.Token == "" {
			bad("%s.token is empty", at)
		} else if j, dup := seen[r.Token]; dup {
			bad("%s.token is the same as runners[%d]'s", at, j)
		}
		seen[r.Token] = i
		if r.ID < 0 {
			bad("%s.id = %d: must not be negative", at, r.ID)
		}
		if r.Executor != "docker" {
			bad("%s.executor = %q: the stand-in emulates only the docker executor", at, r.Executor)
		}
		if r.Limit < 0 || r.RequestConcurrency < 0 || r.OutputLimit < 0 {
			bad("%s: limit, request_concurrency and output_limit must not be negative", at)
		}
		for _, e := range r.Environment {
			if !envEntry.MatchString(e) {
				bad("%s.environment entry %q is not KEY=value", at, e)
			}
		}
		if r.Cache != nil && !oneOf(r.Cache.Type, cacheTypes) {
			bad("%s.cache.Type = %q: not one of s3, gcs, azure (or empty)", at, r.Cache.Type)
		}
		if r.Docker == nil {
			bad("%s: [runners.docker] is missing", at)
			continue
		}
		errs = append(errs, r.Docker.validate(at+".docker")...)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func (d *Docker) validate(at string) []string {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if d.Image == "" {
		bad("%s.image is empty: the docker executor needs a default image", at)
	}
	for _, p := range d.PullPolicy {
		if !oneOf(p, pullPolicies) {
			bad("%s.pull_policy %q: not one of %s", at, p, strings.Join(pullPolicies, ", "))
		}
	}
	for _, p := range d.AllowedPullPolicies {
		if !oneOf(p, pullPolicies) {
			bad("%s.allowed_pull_policies %q: not one of %s", at, p, strings.Join(pullPolicies, ", "))
		}
	}
	for k, v := range map[string]string{"memory": d.Memory, "memory_swap": d.MemorySwap, "memory_reservation": d.MemoryReservation} {
		if v == "" {
			continue
		}
		n, err := units.RAMInBytes(v)
		switch {
		case err != nil:
			bad("%s.%s = %q: not a size like \"512m\" or \"2g\"", at, k, v)
		case k != "memory_swap" && n < 4<<20:
			bad("%s.%s = %q: below Docker's minimum of 4m", at, k, v)
		}
	}
	if d.CPUs != "" {
		if f, err := strconv.ParseFloat(d.CPUs, 64); err != nil || f <= 0 {
			bad("%s.cpus = %q: not a positive number", at, d.CPUs)
		}
	}
	if d.ShmSize < 0 {
		bad("%s.shm_size = %d: must not be negative", at, d.ShmSize)
	}
	if d.Host != "" && !strings.HasPrefix(d.Host, "unix://") && !strings.HasPrefix(d.Host, "tcp://") {
		bad("%s.host = %q: not unix:// or tcp://", at, d.Host)
	}
	for _, h := range d.ExtraHosts {
		if i := strings.LastIndex(h, ":"); i <= 0 || i == len(h)-1 {
			bad("%s.extra_hosts entry %q is not host:ip", at, h)
		}
	}
	for _, v := range d.Volumes {
		if v == "" || !strings.HasPrefix(v, "/") && !strings.Contains(v, ":") {
			bad("%s.volumes entry %q is not /path or source:/path[:mode]", at, v)
		}
	}
	return errs
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("not an http(s) URL")
	}
	return nil
}

func checkListen(s string) error {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return fmt.Errorf("not host:port")
	}
	if _, err := strconv.ParseUint(s[i+1:], 10, 16); err != nil {
		return fmt.Errorf("bad port")
	}
	return nil
}
