package stack

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/runnercfg"
)

// runnerDir holds the runner's config.toml, mounted at /etc/gitlab-runner.
func runnerDir(cfg config.Config) string { return filepath.Join(cfg.Stack.DataDir, "runner") }

// RunnerConfigPath is the runner's config.toml on the host.
func RunnerConfigPath(cfg config.Config) string {
	return filepath.Join(runnerDir(cfg), "config.toml")
}

// dockerSocket is the engine's socket on the host, mounted into the runner so it can start job
// containers next to the stack.
func dockerSocket() string {
	if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
		return strings.TrimPrefix(h, "unix://")
	}
	return "/var/run/docker.sock"
}

func runnerComponent(cfg config.Config, _ SecretSource, _ Env) (Component, error) {
	dir := runnerDir(cfg)
	return Component{
		Name:  "runner",
		Stage: 2,
		Spec: engine.ContainerSpec{
			Name:  cfg.Stack.Name + "-runner",
			Image: cfg.Runner.Image,
			Binds: []engine.Bind{
				{Source: dockerSocket(), Target: "/var/run/docker.sock"},
				{Source: dir, Target: "/etc/gitlab-runner"},
			},
			Restart:     "unless-stopped",
			StopTimeout: 30,
		},
		// config.toml holds runner tokens: only root reads it.
		Dirs:        []Dir{{Path: dir, Mode: 0o700}},
		Deadline:    2 * time.Minute,
		StopTimeout: 30 * time.Second,
	}, nil
}

// RunnerRecord is what forgebox keeps about the runner it registered for one profile. It is kept
// in the secret store because it holds the runner's token.
type RunnerRecord struct {
	ID    int64  `json:"id"`
	Token string `json:"token"`
	// TokenExpiresAt is when GitLab stops accepting Token (POST /user/runners token_expires_at);
	// zero when it never does.
	TokenExpiresAt time.Time `json:"token_expires_at,omitzero"`
	Description    string    `json:"description"`
	// Project is the project path of a project runner; empty for an instance runner.
	Project string `json:"project,omitempty"`
	// Group is the group path of a group runner; empty for an instance or project runner.
	Group       string    `json:"group,omitempty"`
	Tags        []string  `json:"tags"`
	RunUntagged bool      `json:"run_untagged"`
	CreatedAt   time.Time `json:"created_at"`
}

const runnerSecretPrefix = "runner/"

func runnerSecretName(profile string) string { return runnerSecretPrefix + profile }

// loadRunnerRecords reads every stored runner record, by profile name.
func loadRunnerRecords(s SecretStore) (map[string]RunnerRecord, error) {
	out := map[string]RunnerRecord{}
	for _, n := range s.Names() {
		if !strings.HasPrefix(n, runnerSecretPrefix) {
			continue
		}
		v, _ := s.Get(n)
		var r RunnerRecord
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			return nil, fmt.Errorf("runner record %s in the secret store is damaged: %w", n, err)
		}
		out[strings.TrimPrefix(n, runnerSecretPrefix)] = r
	}
	return out, nil
}

func saveRunnerRecord(s SecretStore, profile string, r RunnerRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.Set(runnerSecretName(profile), string(b))
}

// runnerDescription is the runner's name in GitLab's admin area.
func runnerDescription(cfg config.Config, p config.Profile) string {
	return cfg.Stack.Name + "-" + p.Name
}

// wantedTags is a profile's tags, sorted, so order in the config never counts as a change.
func wantedTags(p config.Profile) []string {
	t := slices.Clone(p.Tags)
	sort.Strings(t)
	if t == nil {
		t = []string{}
	}
	return t
}

// runnerDrift says how a stored runner differs from its profile, or "" when it does not.
func runnerDrift(cfg config.Config, p config.Profile, r RunnerRecord) string {
	var d []string
	if want := wantedTags(p); !slices.Equal(want, r.Tags) {
		d = append(d, fmt.Sprintf("tags %v -> %v", r.Tags, want))
	}
	if r.RunUntagged != p.RunUntagged {
		d = append(d, fmt.Sprintf("run_untagged %v -> %v", r.RunUntagged, p.RunUntagged))
	}
	if want := runnerDescription(cfg, p); r.Description != want {
		d = append(d, fmt.Sprintf("description %q -> %q", r.Description, want))
	}
	return strings.Join(d, ", ")
}

// requestConcurrency keeps GitLab Runner from warning "Long polling issues detected": it warns
// for every runner whose request_concurrency is 1 (the default), and again when such a runner's
// limit is 2 or less (commands/multi.go checkConfigConcurrency, v18.5.0 to v19.2.2). Two to
// four open requests is its own advice; a request is made only after a build slot (limit) is
// taken (commands/builds_helper.go acquireBuild before acquireRequest), so this never runs more
// jobs than limit allows.
func requestConcurrency(limit int) int { return min(max(limit, 2), 4) }

// renderRunnerConfig is config.toml for the profiles that have a registered runner, without
// the kubernetes profiles' tokens.
func renderRunnerConfig(cfg config.Config, records map[string]RunnerRecord) ([]byte, error) {
	return renderRunnerConfigWith(cfg, records, nil)
}

// renderRunnerConfigWith is renderRunnerConfig with each kubernetes profile's service account
// token, by profile name.
func renderRunnerConfigWith(cfg config.Config, records map[string]RunnerRecord, kubeTokens map[string]string) ([]byte, error) {
	rc := runnercfg.Config{Concurrent: cfg.Runner.Concurrent, ShutdownTimeout: 30, LogLevel: "info"}
	for _, p := range cfg.Runner.Profiles {
		r, ok := records[p.Name]
		if !ok {
			continue
		}
		if p.OnKubernetes() {
			ext, err := GitLabExternalURL(cfg)
			if err != nil {
				return nil, err
			}
			rc.Runners = append(rc.Runners, kubernetesRunner(cfg, p, r, ext, kubeTokens[p.Name]))
			continue
		}
		if p.Remote() {
			ext, err := GitLabExternalURL(cfg)
			if err != nil {
				return nil, err
			}
			rc.Runners = append(rc.Runners, remoteDockerRunner(cfg, p, r, ext))
			continue
		}
		// Jobs fetch from GitLab by its alias on the jobs network, never from the external
		// name, which a job container may not resolve.
		run := runnerHeader(cfg, p, r, GitLabInternalURL(cfg), "docker")
		run.Docker = &runnercfg.Docker{
			Image:      p.Image,
			Privileged: p.Privileged,
			Volumes:    []string{"/cache"},
			// The jobs network: GitLab and the runner, never PostgreSQL, Redis or the
			// controller. CI jobs are untrusted code.
			NetworkMode: cfg.JobsNetworkName(),
			// Offline boxes: use a job image that is already there rather than fail.
			PullPolicy:  []string{"if-not-present"},
			HelperImage: cfg.Runner.HelperImage,
			Memory:      p.Memory,
			CPUs:        p.CPUs,
		}
		rc.Runners = append(rc.Runners, run)
	}
	return runnercfg.Render(rc)
}

// runnerCertsDir is where up keeps each remote profile's TLS client certificate, inside the
// runner's dir (root only, mode 0700) so the runner container sees it.
func runnerCertsDir(cfg config.Config, profile string) string {
	return filepath.Join(runnerDir(cfg), "certs", profile)
}

// runnerCertsPath is that directory as the runner container sees it.
func runnerCertsPath(profile string) string { return "/etc/gitlab-runner/certs/" + profile }

// GitLabExternalURL is GitLab as machines outside the stack reach it: gitlab.host and the
// published HTTP port, the clone URL users see.
func GitLabExternalURL(cfg config.Config) (string, error) {
	h, err := ResolveHost(cfg)
	if err != nil {
		return "", err
	}
	return "http://" + h + ":" + strconv.Itoa(cfg.GitLab.HTTPPort), nil
}

// remoteDockerRunner is a profile whose jobs run on another Docker Engine. That engine's
// containers are not on the stack's jobs network, so they reach GitLab the way any other
// machine does: by the external URL (url too, since the job's helper uploads artifacts and
// traces to url). The runner itself stays on the NAS and drives the engine over TLS.
func remoteDockerRunner(cfg config.Config, p config.Profile, r RunnerRecord, ext string) runnercfg.Runner {
	run := runnerHeader(cfg, p, r, ext, "docker")
	run.Docker = &runnercfg.Docker{
		Host:        p.DockerHost,
		TLSVerify:   true,
		TLSCertPath: runnerCertsPath(p.Name),
		Image:       p.Image,
		Privileged:  p.Privileged,
		Volumes:     []string{"/cache"},
		PullPolicy:  []string{"if-not-present"},
		HelperImage: remoteHelperImage(cfg), // helper.go: the runner picks by that engine's arch
		Memory:      p.Memory,
		CPUs:        p.CPUs,
	}
	return run
}

// runnerHeader is a runner's entry without its executor's table: who it is, its token, where
// it reaches GitLab (url, and clone_url the same) and how many jobs it takes.
func runnerHeader(cfg config.Config, p config.Profile, r RunnerRecord, url, executor string) runnercfg.Runner {
	return runnercfg.Runner{
		Name:               runnerDescription(cfg, p),
		URL:                url,
		ID:                 r.ID,
		Token:              r.Token,
		TokenObtainedAt:    r.CreatedAt.UTC(),
		TokenExpiresAt:     r.TokenExpiresAt.UTC(),
		Executor:           executor,
		CloneURL:           url,
		Limit:              p.Concurrency,
		RequestConcurrency: requestConcurrency(p.Concurrency),
	}
}

// kubeTokenSecret names a kubernetes profile's service account token in the secret store.
func kubeTokenSecret(profile string) string { return "kubernetes/" + profile }

// kubernetesRunner is a profile whose jobs run as pods in a cluster. Pods reach GitLab as any
// machine outside the stack does: by the external URL. The runner stays on the NAS and talks to
// the API server with the profile's CA (copied like a remote engine's certificates) and token.
func kubernetesRunner(cfg config.Config, p config.Profile, r RunnerRecord, ext, token string) runnercfg.Runner {
	k := p.Kubernetes
	run := runnerHeader(cfg, p, r, ext, "kubernetes")
	run.Kubernetes = &runnercfg.Kubernetes{
		Host:          k.Host,
		CAFile:        runnerCertsPath(p.Name) + "/ca.pem",
		BearerToken:   token,
		Namespace:     k.Namespace,
		Image:         p.Image,
		Privileged:    p.Privileged,
		CPURequest:    k.CPURequest,
		CPULimit:      k.CPULimit,
		MemoryRequest: k.MemoryRequest,
		MemoryLimit:   k.MemoryLimit,
	}
	return run
}

// HelmValues are values for GitLab's gitlab-runner Helm chart that run profile's runner in a
// cluster instead of on the NAS: the external URL, the token forgebox registered for the
// profile (up must have run), and the profile's [runners.kubernetes] without the API server,
// CA and token, since a runner in the cluster uses its own service account.
func HelmValues(cfg config.Config, secrets interface{ Get(string) (string, bool) }, profile string) ([]byte, error) {
	i := slices.IndexFunc(cfg.Runner.Profiles, func(p config.Profile) bool { return p.Name == profile })
	if i < 0 {
		return nil, fmt.Errorf("no runner profile %q in the config", profile)
	}
	p := cfg.Runner.Profiles[i]
	if !p.OnKubernetes() {
		return nil, fmt.Errorf("profile %s runs on Docker, not Kubernetes: set executor = \"kubernetes\" and its [runner.profiles.kubernetes] namespace first", profile)
	}
	v, ok := secrets.Get(runnerSecretName(profile))
	if !ok {
		return nil, fmt.Errorf("profile %s has no registered runner yet: run forgebox up first", profile)
	}
	var r RunnerRecord
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return nil, fmt.Errorf("runner record of %s in the secret store is damaged: %w", profile, err)
	}
	ext, err := GitLabExternalURL(cfg)
	if err != nil {
		return nil, err
	}
	k := p.Kubernetes
	tmpl, err := runnercfg.KubernetesTemplate(ext, runnercfg.Kubernetes{Namespace: k.Namespace, Image: p.Image, Privileged: p.Privileged,
		CPURequest: k.CPURequest, CPULimit: k.CPULimit, MemoryRequest: k.MemoryRequest, MemoryLimit: k.MemoryLimit})
	if err != nil {
		return nil, err
	}
	return runnercfg.RenderHelm(runnercfg.HelmValues{GitLabURL: ext, RunnerToken: r.Token, Concurrent: p.Concurrency,
		RBAC: runnercfg.HelmRBAC{Create: true}, Runners: runnercfg.HelmRunners{Config: tmpl}})
}
