// Package runnercfg models GitLab Runner's config.toml, the subset forgebox writes for the docker
// executor (docs/gitlab-contract.md §5), and renders it with BurntSushi/toml. Optional keys are
// omitempty, so no zero value such as memory = "" reaches the runner, and rendering the same
// input twice gives the same bytes, so a converged stack never rewrites the file.
package runnercfg

import (
	"bytes"
	"fmt"
	"io"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole file.
type Config struct {
	Concurrent      int      `toml:"concurrent"`
	CheckInterval   int      `toml:"check_interval"`
	ShutdownTimeout int      `toml:"shutdown_timeout"`
	LogLevel        string   `toml:"log_level,omitempty"`
	Runners         []Runner `toml:"runners"`
}

// Runner is one [[runners]] entry: one registered runner, one forgebox profile.
type Runner struct {
	Name            string    `toml:"name"`
	URL             string    `toml:"url"`
	ID              int64     `toml:"id"`
	Token           string    `toml:"token"`
	TokenObtainedAt time.Time `toml:"token_obtained_at"`
	TokenExpiresAt  time.Time `toml:"token_expires_at"`
	Executor        string    `toml:"executor"`
	CloneURL        string    `toml:"clone_url,omitempty"`
	Limit           int       `toml:"limit,omitzero"`
	// RequestConcurrency is how many job requests the runner keeps open to GitLab at once.
	RequestConcurrency int         `toml:"request_concurrency,omitzero"`
	Environment        []string    `toml:"environment,omitempty"`
	Docker             *Docker     `toml:"docker,omitempty"`
	Kubernetes         *Kubernetes `toml:"kubernetes,omitempty"`
}

// Kubernetes is [runners.kubernetes], the keys and types of gitlab-runner v19.2.2
// common/config.go KubernetesConfig that forgebox writes: the API server, its CA, the service
// account's token, the namespace, the job image and the build container's requests and limits
// (Kubernetes quantities, as strings).
type Kubernetes struct {
	Host          string `toml:"host,omitempty"`
	CAFile        string `toml:"ca_file,omitempty"`
	BearerToken   string `toml:"bearer_token,omitempty"`
	Namespace     string `toml:"namespace"`
	Image         string `toml:"image"`
	Privileged    bool   `toml:"privileged,omitempty"`
	CPURequest    string `toml:"cpu_request,omitempty"`
	CPULimit      string `toml:"cpu_limit,omitempty"`
	MemoryRequest string `toml:"memory_request,omitempty"`
	MemoryLimit   string `toml:"memory_limit,omitempty"`
	HelperImage   string `toml:"helper_image,omitempty"`
}

// Docker is [runners.docker]. Host, TLSVerify and TLSCertPath are the runner's Docker
// credentials (gitlab-runner v19.2.2 helpers/docker/credentials.go: host, tls_verify,
// tls_cert_path; options.go reads ca.pem, cert.pem and key.pem from tls_cert_path).
type Docker struct {
	Host         string   `toml:"host,omitempty"`
	TLSCertPath  string   `toml:"tls_cert_path,omitempty"`
	Image        string   `toml:"image"`
	Privileged   bool     `toml:"privileged"`
	TLSVerify    bool     `toml:"tls_verify"`
	DisableCache bool     `toml:"disable_cache"`
	Volumes      []string `toml:"volumes,omitempty"`
	NetworkMode  string   `toml:"network_mode,omitempty"`
	PullPolicy   []string `toml:"pull_policy,omitempty"`
	HelperImage  string   `toml:"helper_image,omitempty"`
	Memory       string   `toml:"memory,omitempty"`
	CPUs         string   `toml:"cpus,omitempty"`
	ShmSize      int64    `toml:"shm_size,omitzero"`
}

// Render writes c as config.toml.
func Render(c Config) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Written by forgebox; edits are replaced on the next `forgebox up`.\n")
	b.WriteString("# Change runner profiles in the forgebox config instead.\n\n")
	if err := tomlEncoder(&b).Encode(c); err != nil {
		return nil, fmt.Errorf("render runner config.toml: %w", err)
	}
	return b.Bytes(), nil
}

func tomlEncoder(w io.Writer) *toml.Encoder {
	enc := toml.NewEncoder(w)
	enc.Indent = "  "
	return enc
}

// Parse reads a config.toml strictly, as the runner would: an unknown key is an error.
func Parse(src []byte) (Config, error) {
	var c Config
	md, err := toml.Decode(string(src), &c)
	if err != nil {
		return Config{}, fmt.Errorf("parse runner config.toml: %w", err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		return Config{}, fmt.Errorf("parse runner config.toml: unknown key %s", u[0])
	}
	return c, nil
}

// Credentials are one [[runners]] entry's identity and token, as the runner itself may have
// rewritten them: gitlab-runner resets a token that has an expiry before it expires and saves
// the new one into config.toml (gitlab-runner v18.5.0 commands/multi.go resetOneRunnerToken).
type Credentials struct {
	ID              int64     `toml:"id"`
	Token           string    `toml:"token"`
	TokenObtainedAt time.Time `toml:"token_obtained_at"`
	TokenExpiresAt  time.Time `toml:"token_expires_at"`
}

// ReadCredentials reads every runner's credentials from a config.toml, leniently: a file the
// runner saved carries many more keys than forgebox writes.
func ReadCredentials(src []byte) ([]Credentials, error) {
	var c struct {
		Runners []Credentials `toml:"runners"`
	}
	if _, err := toml.Decode(string(src), &c); err != nil {
		return nil, fmt.Errorf("read runner credentials from config.toml: %w", err)
	}
	return c.Runners, nil
}
