package stack

import (
	"path/filepath"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
)

// redisPasswordFor is the password Redis requires, or "" when the flavour cannot send one.
// Omnibus takes gitlab_rails['redis_password']; sameersbn's resque.yml template has a host and
// a port and no password, so there Redis relies on isolation: it is on the internal network
// only, which CI jobs never join, and is never published.
func redisPasswordFor(cfg config.Config, secrets SecretSource) (string, error) {
	if cfg.GitLab.Flavour != "omnibus" {
		return "", nil
	}
	return secrets.Ensure(config.SecretRedisPassword)
}

func redisComponent(cfg config.Config, secrets SecretSource, _ Env) (Component, error) {
	password, err := redisPasswordFor(cfg, secrets)
	if err != nil {
		return Component{}, err
	}
	data := filepath.Join(cfg.Stack.DataDir, "redis")
	c := Component{
		Name:  "redis",
		Stage: 0,
		Spec: engine.ContainerSpec{
			Name:    cfg.Stack.Name + "-redis",
			Image:   cfg.Redis.Image,
			Cmd:     []string{"redis-server", "--appendonly", "yes"},
			Aliases: []string{"redis"},
			Binds:   []engine.Bind{{Source: data, Target: "/data"}},
			Health: &engine.Healthcheck{
				Test:        []string{"CMD", "redis-cli", "ping"},
				Interval:    2 * time.Second,
				Timeout:     5 * time.Second,
				StartPeriod: 30 * time.Second,
				Retries:     5,
			},
			Restart:     "unless-stopped",
			StopTimeout: 30,
		},
		Dirs:        []Dir{{Path: data, Mode: 0o750}},
		Deadline:    2 * time.Minute,
		StopTimeout: 30 * time.Second,
	}
	if password != "" {
		// redis-server replaces its process title (proc-title-template), so the password
		// leaves the process list once it runs; the healthcheck's redis-cli reads it from
		// REDISCLI_AUTH rather than its argv.
		c.Spec.Cmd = append(c.Spec.Cmd, "--requirepass", password)
		c.Spec.Env = []string{"REDISCLI_AUTH=" + password}
	}
	return c, nil
}
