package stack

import (
	"fmt"
	"path/filepath"
	"strings"
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

// postgresConfDir holds the pg_hba.conf forgebox writes; mounted read-only at PostgresConfMount.
func postgresConfDir(cfg config.Config) string {
	return filepath.Join(cfg.Stack.DataDir, "postgres-conf")
}

// PostgresConfMount is where PostgreSQL reads forgebox's pg_hba.conf (hba_file).
const PostgresConfMount = "/etc/forgebox-postgres"

// pgHBA is the only client authentication PostgreSQL uses (hba_file points here, so the
// pg_hba.conf in the data directory, where the image's entrypoint opens `host all all all`, is
// never read). Network logins come from the internal network only: GitLab, the controller, and
// forgebox on the host through the network's gateway address. A CI job is not there.
func pgHBA(subnet string) []byte {
	var b strings.Builder
	b.WriteString("# Written by forgebox; rewritten whenever the container is recreated.\n")
	b.WriteString("# Local socket: as the image's initdb leaves it (only processes inside the container).\n")
	b.WriteString("local all all trust\n")
	b.WriteString("host all all 127.0.0.1/32 scram-sha-256\n")
	b.WriteString("host all all ::1/128 scram-sha-256\n")
	if subnet != "" {
		b.WriteString("# The stack's internal network.\n")
		fmt.Fprintf(&b, "host all all %s scram-sha-256\n", subnet)
	}
	return []byte(b.String())
}

func postgresComponent(cfg config.Config, secrets SecretSource, env Env) (Component, error) {
	password, err := secrets.Ensure(config.SecretPostgresSuperuser)
	if err != nil {
		return Component{}, err
	}
	data := postgresDataDir(cfg)
	confDir := postgresConfDir(cfg)
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
			// Extra server arguments reach the server (and the entrypoint's first-start
			// temporary server) as the official image's docker-entrypoint.sh passes them.
			Cmd:     []string{"postgres", "-c", "hba_file=" + PostgresConfMount + "/pg_hba.conf"},
			Aliases: []string{"postgres"},
			Binds: []engine.Bind{
				{Source: data, Target: "/var/lib/postgresql/data"},
				{Source: confDir, Target: PostgresConfMount, ReadOnly: true},
			},
			Health: &engine.Healthcheck{
				// Over TCP, not the socket: during first-start initialisation the official
				// image runs a socket-only server that would already answer on the socket.
				Test:        []string{"CMD", "pg_isready", "-U", cfg.Postgres.Superuser, "-d", "postgres", "-h", "127.0.0.1"},
				Interval:    2 * time.Second,
				Timeout:     5 * time.Second,
				// Long: on a slow NAS the first start (initdb) can outlast minutes, and an
				// "unhealthy" verdict then would make the next up restart it in the middle of
				// initdb, leaving a data dir PostgreSQL cannot start from. It costs nothing:
				// the container is healthy at the first probe that passes.
				StartPeriod: 10 * time.Minute,
				Retries:     5,
			},
			Restart:     "unless-stopped",
			StopSignal:  "SIGINT", // PostgreSQL's "fast" shutdown: clean, and quick
			StopTimeout: 60,
		},
		// 0755, not 0700: PGDATA is a subdirectory that the entrypoint creates 0700 and gives to
		// the postgres user, who must be able to pass through this one to reach it.
		Dirs: []Dir{{Path: data, Mode: 0o755}, {Path: confDir, Mode: 0o755}},
		// Subnets only, no secret: readable by the server's own user.
		Files:       []File{{Path: filepath.Join(confDir, "pg_hba.conf"), Mode: 0o644, Content: pgHBA(env.Subnet)}},
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
