package main

// sameersbn's app:start restarts GitLab after the migrations. Its entrypoint (sameersbn/docker-gitlab
// entrypoint.sh at tag 18.5.1, lines 21-30) starts supervisord in the background (Puma, Sidekiq,
// Workhorse, nginx), runs migrate_database (assets/runtime/functions: gitlab:setup on an empty
// database, then db:migrate and `echo $GITLAB_VERSION > $GITLAB_TEMP_DIR/VERSION` whenever the
// data's VERSION differs from the image's), stops that supervisord with SIGTERM, and execs a new
// one as PID 1. So until the exec PID 1 is the entrypoint script, Puma may already answer
// readiness while root is not seeded yet, and then GitLab goes away for the restart. From tag
// 18.9.0 (commit 59af0561 "Stop puma and sidekiq before migrating database") the entrypoint stops
// Puma and Sidekiq before migrate_database, so readiness no longer passes during the migration;
// the restart stays.
//
// The stand-in boots the same way, and it is on by default for sameersbn
// (FORGEBOX_STANDIN_RESTART_AFTER_MIGRATION=false turns it off). The migration takes
// FORGEBOX_STANDIN_SETUP_TIME (default: the boot delay plus a second, so readiness passes while it
// runs) on a version's first boot and nothing otherwise, as migrate_database does nothing when the
// versions match; the restart pauses FORGEBOX_STANDIN_RESTART_GAP (default 500 ms), then the
// stand-in execs itself as /usr/bin/supervisord (PID 1's comm becomes "supervisord") and boots
// for the boot delay again.

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// supervisordPath is where the image has the stand-in as supervisord (testimages/standins.sh).
const supervisordPath = "/usr/bin/supervisord"

// pumaAnswersDuringMigration: before 18.9.0 the entrypoint leaves Puma running while it migrates.
func pumaAnswersDuringMigration(version string) bool {
	v, ok := parseSemver(version)
	return ok && v.less(semver{18, 9, 0})
}

// claimedVersion is the version for the first log line, before the config is validated.
func claimedVersion() string {
	if v := os.Getenv("FORGEBOX_STANDIN_VERSION"); v != "" {
		return v
	}
	if _, omnibus := os.LookupEnv("GITLAB_OMNIBUS_CONFIG"); !omnibus && os.Getenv("GITLAB_VERSION") != "" {
		return os.Getenv("GITLAB_VERSION")
	}
	return defaultVersion
}

// entrypointWithRestart is app:start with the restart; conn is closed before it returns. It
// returns only on failure or SIGTERM: on success it becomes supervisord.
func entrypointWithRestart(ctx context.Context, conn *pgx.Conn, cfg Config, firstBoot bool) int {
	defer conn.Close(context.Background())
	puma := pumaAnswersDuringMigration(cfg.Version)
	r, err := startServices(ctx, cfg, "entrypoint", puma)
	if err != nil {
		logf("refusing to start: %v", err)
		return 1
	}
	fail := func(err error) int {
		logf("refusing to start: %v", err)
		r.shutdown()
		return 1
	}
	old, err := readDataVersion(cfg.Flavour)
	if err != nil {
		return fail(fmt.Errorf("read %s: %w", versionFile(cfg.Flavour), err))
	}
	if _, err := checkUpgrade(cfg.Flavour, old, cfg.Version); err != nil {
		return fail(err)
	}
	// The schema comes first (db:setup loads it); root is seeded at the end of gitlab:setup.
	if err := createSchema(ctx, conn); err != nil {
		return fail(err)
	}
	if firstBoot || old != cfg.Version {
		what := "db:migrate"
		if firstBoot {
			what = "gitlab:setup"
		}
		pumaState := "Puma keeps running"
		if !puma {
			pumaState = "Puma and Sidekiq are stopped first"
		}
		logf("entrypoint: %s for %s takes %s (stand-in); %s; PID 1 is the entrypoint until the restart", what, cfg.Version, cfg.SetupTime, pumaState)
		select {
		case <-ctx.Done():
			r.shutdown()
			return 0
		case <-time.After(cfg.SetupTime):
		}
	}
	createdRoot, err := seedRoot(ctx, conn, cfg)
	if err != nil {
		return fail(err)
	}
	if createdRoot {
		logf("root user seeded")
	}
	if err := prepareData(ctx, conn, cfg); err != nil { // writes the data's VERSION last
		return fail(err)
	}
	conn.Close(context.Background())
	logf("entrypoint: migrations done; stopping supervisord and starting it again (GitLab goes away for %s)", cfg.RestartGap)
	r.shutdown()
	select {
	case <-ctx.Done():
		return 0
	case <-time.After(cfg.RestartGap):
	}
	err = syscall.Exec(supervisordPath, []string{"supervisord", "-nc", "/etc/supervisor/supervisord.conf"}, os.Environ())
	logf("refusing to start: exec %s: %v", supervisordPath, err)
	return 1
}

// serveSupervisord is the restarted PID 1: GitLab's services, without the migration.
func serveSupervisord() int {
	if os.Getpid() != 1 {
		return execFail("supervisord (stand-in) runs only as the container's PID 1, after the entrypoint's migration")
	}
	cfg, err := LoadConfig(osLookup)
	if err != nil {
		logf("refusing to start: %v", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logf("supervisord (stand-in): PID 1 now; starting GitLab's services after the migration")
	r, err := startServices(ctx, cfg, "supervisord", true)
	if err != nil {
		logf("refusing to start: %v", err)
		return 1
	}
	return r.runUntilStopped(ctx)
}

// runCat is coreutils cat for files, enough for `cat /proc/1/comm /home/git/data/tmp/VERSION`.
func runCat(args []string) int {
	code := 0
	for _, a := range args {
		b, err := os.ReadFile(a)
		if err != nil {
			fmt.Fprintf(os.Stderr, "cat: %s: No such file or directory\n", a)
			code = 1
			continue
		}
		os.Stdout.Write(b)
	}
	return code
}
