package stack

import (
	"path/filepath"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/pgprov"
)

// GitLab's database and the role it logs in as; both flavours expect these names.
const (
	GitLabDatabase = "gitlabhq_production"
	GitLabRole     = "gitlab"
	postgresPort   = 5432
)

func postgresDataDir(cfg config.Config) string { return filepath.Join(cfg.Stack.DataDir, "postgres") }

func postgresComponent(cfg config.Config, secrets SecretSource, _ Env) (Component, error) {
	password, err := secrets.Ensure(config.SecretPostgresSuperuser)
	if err != nil {
		return Component{}, err
	}
	data := postgresDataDir(cfg)
	return Component{
		Name: "postgres",
		Spec: engine.ContainerSpec{
			Name:  cfg.Stack.Name + "-postgres",
			Image: cfg.Postgres.Image,
			Env: []string{
				"POSTGRES_USER=" + cfg.Postgres.Superuser,
				"POSTGRES_PASSWORD=" + password,
				// A subdirectory, so the bind mount's own directory (maybe with lost+found on
				// a volume root) is never PGDATA itself, as the official image advises.
				"PGDATA=/var/lib/postgresql/data/pgdata",
			},
			Aliases: []string{"postgres"},
			Binds:   []engine.Bind{{Source: data, Target: "/var/lib/postgresql/data"}},
			Health: &engine.Healthcheck{
				// Over TCP, not the socket: during first-start initialisation the official
				// image runs a socket-only server that would already answer on the socket.
				Test:        []string{"CMD", "pg_isready", "-U", cfg.Postgres.Superuser, "-d", "postgres", "-h", "127.0.0.1"},
				Interval:    2 * time.Second,
				Timeout:     5 * time.Second,
				StartPeriod: 2 * time.Minute,
				Retries:     5,
			},
			Restart:     "unless-stopped",
			StopSignal:  "SIGINT", // PostgreSQL's "fast" shutdown: clean, and quick
			StopTimeout: 60,
		},
		// 0755, not 0700: PGDATA is a subdirectory that the entrypoint creates 0700 and gives to
		// the postgres user, who must be able to pass through this one to reach it.
		Dirs:        []Dir{{Path: data, Mode: 0o755}},
		Deadline:    3 * time.Minute,
		StopTimeout: 60 * time.Second,
	}, nil
}

// provisionTarget is what pgprov needs to reach PostgreSQL at host (the container's address on
// the stack network) and set up GitLab's database.
func provisionTarget(cfg config.Config, secrets SecretSource, host string) (pgprov.Target, error) {
	super, err := secrets.Ensure(config.SecretPostgresSuperuser)
	if err != nil {
		return pgprov.Target{}, err
	}
	role, err := secrets.Ensure(config.SecretPostgresGitLab)
	if err != nil {
		return pgprov.Target{}, err
	}
	return pgprov.Target{
		Host:          host,
		Port:          postgresPort,
		Superuser:     cfg.Postgres.Superuser,
		SuperPassword: super,
		Role:          GitLabRole,
		RolePassword:  role,
		Database:      GitLabDatabase,
		Extensions:    pgprov.Extensions,
	}, nil
}
