package stack

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
)

// The seven secrets of the sameersbn image (docs/gitlab-contract.md §1.3). Left unset, the image
// generates them inside the container, where they are lost on the next recreate.
var sameersbnSecrets = []struct{ env, secret string }{
	{"GITLAB_SECRETS_DB_KEY_BASE", "gitlab_secrets_db_key_base"},
	{"GITLAB_SECRETS_SECRET_KEY_BASE", "gitlab_secrets_secret_key_base"},
	{"GITLAB_SECRETS_OTP_KEY_BASE", "gitlab_secrets_otp_key_base"},
	{"GITLAB_SECRETS_ENCRYPTED_SETTINGS_KEY_BASE", "gitlab_secrets_encrypted_settings_key_base"},
	{"GITLAB_SECRETS_ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY", "gitlab_secrets_ar_primary_key"},
	{"GITLAB_SECRETS_ACTIVE_RECORD_ENCRYPTION_DETERMINISTIC_KEY", "gitlab_secrets_ar_deterministic_key"},
	{"GITLAB_SECRETS_ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT", "gitlab_secrets_ar_key_derivation_salt"},
}

// gitlabHTTPPort is the port GitLab's web server listens on inside its container: fixed at 80
// for sameersbn, the external URL's port for Omnibus (its nginx listens there).
func gitlabHTTPPort(cfg config.Config) int {
	if cfg.GitLab.Flavour == "omnibus" {
		return cfg.GitLab.HTTPPort
	}
	return 80
}

// GitLabInternalURL is GitLab as the runner and CI jobs reach it on the jobs network (the
// runner's url and clone_url): by its network alias, so it never depends on the NAS's name or
// address.
func GitLabInternalURL(cfg config.Config) string {
	if p := gitlabHTTPPort(cfg); p != 80 {
		return "http://gitlab:" + strconv.Itoa(p)
	}
	return "http://gitlab"
}

func gitlabComponent(cfg config.Config, secrets SecretSource, env Env) (Component, error) {
	dbPassword, err := secrets.Ensure(config.SecretPostgresGitLab)
	if err != nil {
		return Component{}, err
	}
	rootPassword, err := secrets.Ensure(config.SecretGitLabRootPassword)
	if err != nil {
		return Component{}, err
	}
	share := cfg.GitLabDir()
	c := Component{
		Name:        "gitlab",
		Stage:       1,
		Deadline:    20 * time.Minute, // first boot loads the schema; slow NAS CPUs take long
		StopTimeout: 120 * time.Second,
		Spec: engine.ContainerSpec{
			Name:        cfg.Stack.Name + "-gitlab",
			Image:       cfg.GitLab.Image,
			Aliases:     []string{"gitlab"},
			Restart:     "unless-stopped",
			StopTimeout: 120,
		},
	}
	switch cfg.GitLab.Flavour {
	case "omnibus":
		redisPassword, err := redisPasswordFor(cfg, secrets)
		if err != nil {
			return Component{}, err
		}
		c.Spec.Env = []string{"GITLAB_OMNIBUS_CONFIG=" + omnibusConfig(cfg, env, dbPassword, rootPassword, redisPassword)}
		c.Spec.Binds = []engine.Bind{
			{Source: filepath.Join(share, "config"), Target: "/etc/gitlab"},
			{Source: filepath.Join(share, "data"), Target: "/var/opt/gitlab"},
			{Source: filepath.Join(share, "logs"), Target: "/var/log/gitlab"},
		}
		c.Spec.ShmSize = 256 << 20 // Omnibus' documented --shm-size
	default:
		envs, err := sameersbnEnv(cfg, env, secrets, dbPassword, rootPassword)
		if err != nil {
			return Component{}, err
		}
		c.Spec.Env = envs
		c.Spec.Binds = []engine.Bind{
			{Source: filepath.Join(share, "data"), Target: "/home/git/data"},
			{Source: filepath.Join(share, "logs"), Target: "/var/log/gitlab"},
		}
	}
	c.Spec.Ports = []engine.Port{
		{HostPort: cfg.GitLab.HTTPPort, ContainerPort: gitlabHTTPPort(cfg)},
		{HostPort: cfg.GitLab.SSHPort, ContainerPort: 22},
	}
	for _, b := range c.Spec.Binds {
		c.Dirs = append(c.Dirs, Dir{Path: b.Source, Mode: 0o755})
	}
	return c, nil
}

func sameersbnEnv(cfg config.Config, env Env, secrets SecretSource, dbPassword, rootPassword string) ([]string, error) {
	e := []string{
		"DB_HOST=postgres",
		"DB_PORT=5432",
		"DB_NAME=" + GitLabDatabase,
		// Explicit: the image defaults DB_USER to root, the classic `role "root" does not exist`.
		"DB_USER=" + GitLabRole,
		"DB_PASS=" + dbPassword,
		"REDIS_HOST=redis",
		"REDIS_PORT=6379",
		"GITLAB_HOST=" + env.Host,
		"GITLAB_PORT=" + strconv.Itoa(cfg.GitLab.HTTPPort),
		"GITLAB_SSH_PORT=" + strconv.Itoa(cfg.GitLab.SSHPort),
		"GITLAB_HTTPS=false",
		"GITLAB_ROOT_PASSWORD=" + rootPassword,
		"GITLAB_ROOT_EMAIL=" + cfg.GitLab.AdminEmail,
		"GITLAB_EMAIL=" + cfg.GitLab.AdminEmail,
		// One CIDR only: the image writes it as a single allowlist entry. The internal
		// network's: CI jobs reach GitLab from the jobs network and must not read its metrics.
		"GITLAB_MONITORING_IP_WHITELIST=" + env.Subnet,
	}
	if env.TimeZone != "" {
		// TZ is the container's (cron, logs), GITLAB_TIMEZONE Rails' (sameersbn
		// assets/runtime/env-defaults and functions at 19.2.0; both default to UTC).
		e = append(e, "TZ="+env.TimeZone, "GITLAB_TIMEZONE="+env.TimeZone)
	}
	for _, s := range sameersbnSecrets {
		v, err := secrets.Ensure(s.secret)
		if err != nil {
			return nil, err
		}
		if strings.HasSuffix(s.env, "_KEY") && strings.Contains(s.env, "ACTIVE_RECORD") {
			v = `["` + v + `"]` // a YAML array, and no other quotes (the image's README)
		}
		e = append(e, s.env+"="+v)
	}
	if cfg.GitLab.Memory == "small" {
		// GitLab's memory-constrained settings; one Puma worker rather than single mode, which
		// this image's template does not document.
		e = append(e, "PUMA_WORKERS=1", "PUMA_THREADS_MAX=4", "SIDEKIQ_CONCURRENCY=10",
			"PUMA_PER_WORKER_MAX_MEMORY_MB=1024")
	}
	sort.Strings(e)
	return e, nil
}

// omnibusConfig writes GITLAB_OMNIBUS_CONFIG: Ruby evaluated by the image before gitlab.rb.
// Values are hex secrets, numbers and validated host names, so single quotes need no escaping.
func omnibusConfig(cfg config.Config, env Env, dbPassword, rootPassword, redisPassword string) string {
	lines := []string{
		fmt.Sprintf("external_url 'http://%s:%d'", env.Host, cfg.GitLab.HTTPPort),
		fmt.Sprintf("gitlab_rails['gitlab_shell_ssh_port'] = %d", cfg.GitLab.SSHPort),
		fmt.Sprintf("gitlab_rails['initial_root_password'] = '%s'", rootPassword),
		"gitlab_rails['store_initial_root_password'] = false",
		"gitlab_rails['display_initial_root_password'] = false",
		fmt.Sprintf("gitlab_rails['gitlab_email_from'] = '%s'", cfg.GitLab.AdminEmail),
		"postgresql['enable'] = false",
		"gitlab_rails['db_adapter'] = 'postgresql'",
		"gitlab_rails['db_encoding'] = 'utf8'",
		"gitlab_rails['db_host'] = 'postgres'",
		"gitlab_rails['db_port'] = 5432",
		fmt.Sprintf("gitlab_rails['db_database'] = '%s'", GitLabDatabase),
		fmt.Sprintf("gitlab_rails['db_username'] = '%s'", GitLabRole),
		fmt.Sprintf("gitlab_rails['db_password'] = '%s'", dbPassword),
		"redis['enable'] = false",
		"gitlab_rails['redis_host'] = 'redis'",
		"gitlab_rails['redis_port'] = 6379",
		fmt.Sprintf("gitlab_rails['redis_password'] = '%s'", redisPassword),
		// The internal network only: CI jobs reach GitLab from the jobs network, and must not
		// read its metrics or readiness.
		fmt.Sprintf("gitlab_rails['monitoring_whitelist'] = ['127.0.0.0/8', '::1/128', '%s']", env.Subnet),
	}
	if env.TimeZone != "" {
		// gitlab.rb.template at 19.2.4+ce.0; validated as a tz name, so no quote can reach here.
		lines = append(lines, fmt.Sprintf("gitlab_rails['time_zone'] = '%s'", env.TimeZone))
	}
	if cfg.GitLab.Memory == "small" {
		// "Running GitLab in a memory-constrained environment" (docs/gitlab-contract.md §2.3).
		lines = append(lines,
			"puma['worker_processes'] = 0",
			"sidekiq['concurrency'] = 10",
			"prometheus_monitoring['enable'] = false",
			"gitlab_kas['enable'] = false",
		)
	}
	return strings.Join(lines, "\n") + "\n"
}
