package stack

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/runnercfg"
)

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		os.WriteFile(path, []byte(got), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./service/internal/stack -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestGitLabEnvGolden(t *testing.T) {
	for _, flavour := range []string{"sameersbn", "omnibus"} {
		for _, memory := range []string{"small", "standard"} {
			t.Run(flavour+"-"+memory, func(t *testing.T) {
				cfg := testConfig()
				cfg.GitLab.Flavour, cfg.GitLab.Memory = flavour, memory
				d := desiredFrom(t, cfg)
				gl, _ := d.Component("gitlab")
				var b strings.Builder
				for _, e := range gl.Spec.Env {
					b.WriteString(e)
					b.WriteString("\n")
				}
				for _, p := range gl.Spec.Ports {
					b.WriteString("# port " + strconv.Itoa(p.HostPort) + " -> " + strconv.Itoa(p.ContainerPort) + "\n")
				}
				for _, m := range gl.Spec.Binds {
					b.WriteString("# bind " + m.Source + " -> " + m.Target + "\n")
				}
				golden(t, "gitlab-env-"+flavour+"-"+memory+".golden", b.String())
			})
		}
	}
}

func TestGitLabEnvWiring(t *testing.T) {
	d := desiredFrom(t, testConfig())
	gl, _ := d.Component("gitlab")
	env := map[string]string{}
	for _, e := range gl.Spec.Env {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	checks := map[string]string{
		"DB_HOST": "postgres", "DB_USER": "gitlab", "DB_NAME": "gitlabhq_production", "DB_PASS": "secret-" + config.SecretPostgresGitLab,
		"REDIS_HOST": "redis", "GITLAB_HOST": testEnv.Host, "GITLAB_PORT": "30080", "GITLAB_SSH_PORT": "30022",
		"GITLAB_MONITORING_IP_WHITELIST": testEnv.Subnet, "GITLAB_ROOT_PASSWORD": "secret-" + config.SecretGitLabRootPassword,
	}
	for k, want := range checks {
		if env[k] != want {
			t.Errorf("%s = %q, want %q", k, env[k], want)
		}
	}
	for _, s := range sameersbnSecrets {
		v := env[s.env]
		if v == "" {
			t.Errorf("%s is not set: the image would generate it and lose it on recreate", s.env)
		}
		if strings.Contains(s.env, "ACTIVE_RECORD") && strings.HasSuffix(s.env, "_KEY") && !(strings.HasPrefix(v, `["`) && strings.HasSuffix(v, `"]`)) {
			t.Errorf("%s = %q, want a YAML array", s.env, v)
		}
	}
}

func TestRunnerConfigGolden(t *testing.T) {
	cfg := testConfig()
	cfg.Runner.HelperImage = "registry.example.lan/gitlab-runner-helper:x86_64-v18.5.0"
	cfg.Runner.Profiles = append(cfg.Runner.Profiles, config.Profile{
		Name: "dind", Image: "docker:27", Tags: []string{"docker", "dind"}, Privileged: true, CPUs: "2", Memory: "2g", Concurrency: 2,
	}, config.Profile{Name: "unregistered", Image: "alpine:3.22", Tags: []string{"x"}, Concurrency: 1})
	cfg.Runner.Concurrent = 3 // validation asks for one per profile
	records := map[string]RunnerRecord{
		"default": {ID: 1, Token: "glrt-default-token", CreatedAt: recordCreated},
		// GitLab gave this token an expiry (runner token expiration is on): config.toml carries it.
		"dind": {ID: 2, Token: "glrt-dind-token", CreatedAt: recordCreated, TokenExpiresAt: recordCreated.Add(30 * 24 * time.Hour)},
	}
	got, err := renderRunnerConfig(cfg, records)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "runner-config.golden", string(got))
	// What forgebox writes, the runner reads back strictly, unchanged.
	parsed, err := runnercfg.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if len(parsed.Runners) != 2 || parsed.Runners[1].Docker.NetworkMode != cfg.JobsNetworkName() || parsed.Runners[1].CloneURL != "http://gitlab" {
		t.Errorf("parsed back: %+v", parsed.Runners)
	}
	// Nothing for GitLab Runner to warn about (commands/multi.go checkConfigConcurrency at
	// v19.2.2): concurrent is not below the number of runners, and no runner has
	// request_concurrency 1 (with a limit of 2 or less, or at all). The runner stand-in's test
	// TestForgeboxGoldenConfigHasNoWarnings reads this golden file with the stand-in's rules.
	if parsed.Concurrent < len(parsed.Runners) {
		t.Errorf("concurrent %d < %d runners: Worker starvation bottleneck", parsed.Concurrent, len(parsed.Runners))
	}
	for _, r := range parsed.Runners {
		if max(1, r.RequestConcurrency) == 1 {
			t.Errorf("runner %s: request_concurrency 1 (limit %d): Long polling issues detected", r.Name, r.Limit)
		}
	}
	if !parsed.Runners[0].TokenExpiresAt.IsZero() || !parsed.Runners[1].TokenExpiresAt.Equal(records["dind"].TokenExpiresAt) {
		t.Errorf("token_expires_at parsed back: %v, %v", parsed.Runners[0].TokenExpiresAt, parsed.Runners[1].TokenExpiresAt)
	}
	again, _ := renderRunnerConfig(cfg, records)
	if string(again) != string(got) {
		t.Error("rendering twice gives different bytes: a converged stack would rewrite config.toml")
	}
}

func TestOmnibusInternalURLCarriesThePort(t *testing.T) {
	cfg := testConfig()
	cfg.GitLab.Flavour = "omnibus"
	if got := GitLabInternalURL(cfg); got != "http://gitlab:30080" {
		t.Errorf("omnibus internal URL %q: its nginx listens on the external port", got)
	}
	cfg.GitLab.Flavour = "sameersbn"
	if got := GitLabInternalURL(cfg); got != "http://gitlab" {
		t.Errorf("sameersbn internal URL %q", got)
	}
}
