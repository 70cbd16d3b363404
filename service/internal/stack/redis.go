package stack

import (
	"path/filepath"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
)

// redisComponent has no password: neither GitLab image can give Redis one, so Redis is kept on
// the stack network only and never published.
func redisComponent(cfg config.Config, _ SecretSource, _ Env) (Component, error) {
	data := filepath.Join(cfg.Stack.DataDir, "redis")
	return Component{
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
	}, nil
}
