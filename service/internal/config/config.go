// Package config is forgebox's one configuration schema: the embedded defaults, a strict TOML
// loader that rejects unknown keys and wrong types, validation whose errors name the key, its line
// and what is allowed, atomic saving, and the secret store that lives beside the data.
//
// A config is passed around as a value; nothing here is global.
package config

import (
	"bytes"
	"cmp"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/BurntSushi/toml"

	"github.com/forgebox/forgebox/service/internal/msg"
)

// CurrentVersion is the schema version this build reads and writes.
const CurrentVersion = 1

//go:embed default.toml
var defaultTOML []byte

// DefaultTOML returns the embedded default configuration, comments included.
func DefaultTOML() []byte { return bytes.Clone(defaultTOML) }

// Config is the whole configuration. Field comments live in default.toml, which users read.
type Config struct {
	Version  int      `toml:"version" json:"version"`
	Stack    Stack    `toml:"stack" json:"stack"`
	Postgres Postgres `toml:"postgres" json:"postgres"`
	Redis    Redis    `toml:"redis" json:"redis"`
	GitLab   GitLab   `toml:"gitlab" json:"gitlab"`
	Runner   Runner   `toml:"runner" json:"runner"`
	Backup   Backup   `toml:"backup" json:"backup"`
}

type Stack struct {
	Name       string `toml:"name" json:"name"`
	DataDir    string `toml:"data_dir" json:"data_dir"`
	ShareDir   string `toml:"share_dir" json:"share_dir"`
	PullPolicy string `toml:"pull_policy" json:"pull_policy"`
	// PullVia says who downloads images: "engine", "forgebox" or "auto".
	PullVia         string   `toml:"pull_via" json:"pull_via"`
	RegistryMirrors []string `toml:"registry_mirrors" json:"registry_mirrors"`

	// GitLabDir is GitLab's live data (repositories, uploads, config, logs); empty: share_dir's
	// gitlab folder. The DSM package keeps it in its var dir, where POSIX modes work.
	GitLabDir string `toml:"gitlab_dir,omitempty" json:"gitlab_dir,omitempty"`
}

type Postgres struct {
	Image     string `toml:"image" json:"image"`
	Superuser string `toml:"superuser" json:"superuser"`
}

type Redis struct {
	Image string `toml:"image" json:"image"`
}

type GitLab struct {
	Flavour    string `toml:"flavour" json:"flavour"`
	Image      string `toml:"image" json:"image"`
	Host       string `toml:"host" json:"host"`
	HTTPPort   int    `toml:"http_port" json:"http_port"`
	SSHPort    int    `toml:"ssh_port" json:"ssh_port"`
	Memory     string `toml:"memory" json:"memory"`
	AdminEmail string `toml:"admin_email" json:"admin_email"`
	TimeZone   string `toml:"time_zone" json:"time_zone"` // "" = the host's
}

type Runner struct {
	Image       string    `toml:"image" json:"image"`
	HelperImage string    `toml:"helper_image" json:"helper_image"`
	Concurrent  int       `toml:"concurrent" json:"concurrent"`
	Profiles    []Profile `toml:"profiles" json:"profiles"`
}

// Backup is when backups are taken, how many scheduled ones are kept, and where they go.
type Backup struct {
	Schedule string `toml:"schedule" json:"schedule"` // "HH:MM", or "" for none
	Keep     int    `toml:"keep" json:"keep"`
	Dir      string `toml:"dir" json:"dir"`
}

// Profile is one "image + tags" combination; each becomes one registered runner.
type Profile struct {
	Name        string   `toml:"name" json:"name"`
	Image       string   `toml:"image" json:"image"`
	Tags        []string `toml:"tags" json:"tags"`
	RunUntagged bool     `toml:"run_untagged" json:"run_untagged"`
	Privileged  bool     `toml:"privileged" json:"privileged"`
	CPUs        string   `toml:"cpus" json:"cpus"`
	Memory      string   `toml:"memory" json:"memory"`
	Concurrency int      `toml:"concurrency" json:"concurrency"`
	// DockerHost is another Docker Engine the profile's jobs run on (tcp://HOST:2376, TLS
	// only); empty: this machine's engine, on the stack's jobs network.
	DockerHost string `toml:"docker_host,omitempty" json:"docker_host,omitempty"`
	// DockerCertDir holds the client certificate for DockerHost under Docker's own file names
	// (ca.pem, cert.pem, key.pem); up copies them into the runner's dir, mode 0600.
	DockerCertDir string `toml:"docker_cert_dir,omitempty" json:"docker_cert_dir,omitempty"`
	// Project, a project's path ("group/project"), makes the profile's runner a project runner:
	// GitLab gives it only that project's jobs. Empty: an instance runner for every project.
	Project string `toml:"project,omitempty" json:"project,omitempty"`
	// Group, a group's full path ("team" or "team/sub"), makes the profile's runner a group
	// runner: GitLab gives it the jobs of every project in that group and its subgroups. A
	// profile names at most one of Group and Project.
	Group string `toml:"group,omitempty" json:"group,omitempty"`
	// Executor is "docker" (the default, also when empty) or "kubernetes".
	Executor string `toml:"executor,omitempty" json:"executor,omitempty"`
	// Kubernetes is where a kubernetes profile's jobs run, as build pods.
	Kubernetes *Kubernetes `toml:"kubernetes,omitempty" json:"kubernetes,omitempty"`
}

// Kubernetes is [runner.profiles.kubernetes]: a cluster the runner on the NAS starts build pods
// in. The token is a service account's, read from TokenFile by up into the secret store.
type Kubernetes struct {
	Host          string `toml:"host" json:"host"`             // API server, https://HOST:6443
	CAFile        string `toml:"ca_file" json:"ca_file"`       // the cluster's CA, PEM, on this machine
	TokenFile     string `toml:"token_file" json:"token_file"` // the service account's token, on this machine
	Namespace     string `toml:"namespace" json:"namespace"`
	CPURequest    string `toml:"cpu_request" json:"cpu_request"`
	CPULimit      string `toml:"cpu_limit" json:"cpu_limit"`
	MemoryRequest string `toml:"memory_request" json:"memory_request"`
	MemoryLimit   string `toml:"memory_limit" json:"memory_limit"`
}

// OnKubernetes reports whether the profile's jobs run as Kubernetes pods.
func (p Profile) OnKubernetes() bool { return p.Executor == "kubernetes" }

// Remote reports whether the profile's jobs run on another Docker Engine.
func (p Profile) Remote() bool { return p.DockerHost != "" }

// Default returns the embedded defaults, already validated by the tests.
func Default() Config {
	c, err := Parse(defaultTOML)
	if err != nil {
		panic("embedded default config is invalid: " + err.Error())
	}
	return c
}

// Load reads and validates the file at path. A missing file is an error: callers that want the
// embedded defaults when no file exists ask for them with Default.
func Load(path string) (Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(src)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes src over the embedded defaults, strictly, and validates the result.
// Errors are an *Errors listing every problem found.
func Parse(src []byte) (Config, error) {
	c, err := decode(src)
	if err != nil {
		return Config{}, err
	}
	if errs := c.validate(src); len(errs) > 0 {
		// File order reads best; problems with no line (defaults) go last.
		slices.SortStableFunc(errs, func(a, b FieldError) int {
			if (a.Line == 0) != (b.Line == 0) {
				return cmp.Compare(b.Line, a.Line)
			}
			return cmp.Compare(a.Line, b.Line)
		})
		return Config{}, &Errors{List: errs}
	}
	return c, nil
}

func decode(src []byte) (Config, error) {
	var c Config
	if _, err := toml.Decode(string(defaultTOML), &c); err != nil {
		return Config{}, fmt.Errorf("embedded defaults: %w", err)
	}
	// A profile list in the user's file replaces the default one as a whole. The decoder fills an
	// existing slice element by element, so the user's first profile would inherit the default
	// profile's tags and run_untagged: decode into an empty list and restore the defaults only
	// when the file has no profiles.
	defaultProfiles := c.Runner.Profiles
	c.Runner.Profiles = nil
	md, err := toml.Decode(string(src), &c)
	if err != nil {
		return Config{}, &Errors{List: []FieldError{decodeError(err)}}
	}
	if !md.IsDefined("runner", "profiles") {
		c.Runner.Profiles = defaultProfiles
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		var errs []FieldError
		for _, k := range undecoded {
			key := k.String()
			errs = append(errs, NewFieldError(key, lineOfKey(src, key), mc("field.unknownKey"), allowedKeysHint(key)))
		}
		return Config{}, &Errors{List: errs}
	}
	for i := range c.Runner.Profiles {
		// Left out (or 0) means one job at a time, as in default.toml.
		if c.Runner.Profiles[i].Concurrency == 0 {
			c.Runner.Profiles[i].Concurrency = 1
		}
	}
	return c, nil
}

// decodeError turns the TOML decoder's error into a FieldError with the line it reports.
func decodeError(err error) FieldError {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return NewFieldError(pe.LastKey, pe.Position.Line, mc("field.syntax", "error", msg.Raw(pe.Message)), msg.Msg{})
	}
	// Type mismatches come back as "toml: line N (last key "k"): incompatible types: ...".
	var line int
	var key, rest string
	if n, _ := fmt.Sscanf(err.Error(), "toml: line %d (last key %q): ", &line, &key); n == 2 {
		rest = err.Error()[len(fmt.Sprintf("toml: line %d (last key %q): ", line, key)):]
		return NewFieldError(key, line, mc("field.wrongTypeToml", "error", msg.Raw(rest)), msg.Msg{})
	}
	return NewFieldError("", 0, mc("field.syntax", "error", msg.Raw(err.Error())), msg.Msg{})
}

// Encode writes c as TOML, the form `config show` prints and Save stores.
func Encode(c Config) ([]byte, error) {
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return b.Bytes(), nil
}

// Save validates c and writes it to path atomically: a reader sees the old file or the new one,
// never half of either, and an invalid config is never written.
func Save(path string, c Config) error {
	src, err := Encode(c)
	if err != nil {
		return err
	}
	if _, err := Parse(src); err != nil {
		return err
	}
	return WriteFileAtomic(path, src, 0o644)
}

// ShareDir is where GitLab data and backups live.
func (c Config) ShareDir() string {
	if c.Stack.ShareDir != "" {
		return c.Stack.ShareDir
	}
	return filepath.Join(c.Stack.DataDir, "share")
}

// GitLabDir is where GitLab's live data lives.
func (c Config) GitLabDir() string {
	if c.Stack.GitLabDir != "" {
		return c.Stack.GitLabDir
	}
	return filepath.Join(c.ShareDir(), "gitlab")
}

// BackupDir is where backups are written and read.
func (c Config) BackupDir() string {
	if c.Backup.Dir != "" {
		return c.Backup.Dir
	}
	return filepath.Join(c.ShareDir(), "backups")
}

// NetworkName is the stack's internal network: PostgreSQL, Redis, GitLab and the controller.
// forgebox reaches PostgreSQL and GitLab at their addresses here; CI jobs never join it.
func (c Config) NetworkName() string { return c.Stack.Name + "-internal" }

// JobsNetworkName is the network of GitLab, the runner and every CI job container: jobs reach
// GitLab there and nothing else of the stack.
func (c Config) JobsNetworkName() string { return c.Stack.Name + "-jobs" }
