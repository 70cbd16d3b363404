package main

// The PostgreSQL client programs each image version bundles, and which of them GitLab's backup
// runs against an external server. GitLab's database backup is `pg_dump` (gitlabhq
// lib/backup/targets/database.rb, Gitlab::Backup::Cli::Utils::PgDump), and pg_dump refuses a
// server of a newer major: "server version: X; pg_dump version: Y" then "aborting because of
// server version mismatch" (postgres/postgres src/bin/pg_dump/pg_backup_db.c,
// _check_database_version). The restore runs `psql`, which only warns about a newer server, and
// only on a terminal (src/bin/psql/command.c, connection_warnings), so the stand-in refuses
// database dumps only.
//
// sameersbn/docker-gitlab, Dockerfile at each tag (the postgresql-client-N packages):
//
//	15.11.4 .. 15.11.x   12 13 14 15
//	16.0.0  .. 17.4.1    13 14 15
//	17.4.2  .. 17.6.x    13 14 15 16
//	17.7.0  .. 18.x      13 14 15 16 17
//	19.0.0  ..           17 18
//
// and assets/runtime/functions gitlab_generate_postgresqlrc picks the client of the server's
// major, or else the newest installed one ("WARNING - Suitable client not installed ...").
//
// gitlabhq/omnibus-gitlab, config/software/postgresql*.rb at each tag <v>+ce.0 (the bundled
// majors; the one whose definition has the "link bin files" block is linked into
// /opt/gitlab/embedded/bin):
//
//	15.0  .. 16.1    12 13*
//	16.2  .. 16.6    12 13* 14
//	16.7  .. 16.11   12 13 14*
//	17.0  .. 17.3    14*
//	17.4  .. 17.9    14* 16
//	17.10 .. 17.11   14 16*
//	18.0  .. 18.8    16*
//	18.9  .. 18.10   16* 17
//	18.11            16 17*
//	19.0  .. 19.2    17*
//
// files/gitlab-cookbooks/postgresql/recipes/bin.rb links the client of postgresql['version'],
// or of the bundled server's data (none with an external database), else keeps the linked
// default ("We do not ship client binaries for PostgreSQL N, defaulting to M"). The stand-in
// does not read postgresql['version'] (forgebox never sets it): known gap.

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

type clientRange struct {
	from   semver // first version of the range
	majors []int
	linked int // Omnibus: the one linked into /opt/gitlab/embedded/bin
}

var sameersbnClients = []clientRange{
	{semver{15, 11, 4}, []int{12, 13, 14, 15}, 0},
	{semver{16, 0, 0}, []int{13, 14, 15}, 0},
	{semver{17, 4, 2}, []int{13, 14, 15, 16}, 0},
	{semver{17, 7, 0}, []int{13, 14, 15, 16, 17}, 0},
	{semver{19, 0, 0}, []int{17, 18}, 0},
}

var omnibusClients = []clientRange{
	{semver{15, 0, 0}, []int{12, 13}, 13},
	{semver{16, 2, 0}, []int{12, 13, 14}, 13},
	{semver{16, 7, 0}, []int{12, 13, 14}, 14},
	{semver{17, 0, 0}, []int{14}, 14},
	{semver{17, 4, 0}, []int{14, 16}, 14},
	{semver{17, 10, 0}, []int{14, 16}, 16},
	{semver{18, 0, 0}, []int{16}, 16},
	{semver{18, 9, 0}, []int{16, 17}, 16},
	{semver{18, 11, 0}, []int{16, 17}, 17},
	{semver{19, 0, 0}, []int{17}, 17},
}

// dumpClient is the pg_dump major the image of flavour and version runs against a server of
// major server, with the image's own warning when it has no client of that major.
func dumpClient(flavour, version string, server int) (client int, warning string, err error) {
	v, ok := parseSemver(version)
	if !ok {
		return 0, "", fmt.Errorf("version %q", version)
	}
	table := sameersbnClients
	if flavour == flavourOmnibus {
		table = omnibusClients
	}
	var r *clientRange
	for i := range table {
		if !v.less(table[i].from) {
			r = &table[i]
		}
	}
	if r == nil {
		return 0, "", fmt.Errorf("the stand-in does not know the PostgreSQL clients of GitLab %s (%s)", version, flavour)
	}
	if flavour == flavourOmnibus {
		if r.linked != server {
			warning = fmt.Sprintf("pg_dump %d (the image's linked client; postgresql['version'] is not set) against PostgreSQL %d", r.linked, server)
		}
		return r.linked, warning, nil
	}
	if slices.Contains(r.majors, server) {
		return server, "", nil
	}
	newest := slices.Max(r.majors)
	return newest, fmt.Sprintf("gitlab_generate_postgresqlrc(): WARNING - Suitable client not installed. postgresql-client-%d will be used but you may face issue (database in backup will be empty, for example)", newest), nil
}

// serverMajor asks the connected server its major.
func serverMajor(ctx context.Context, conn *pgx.Conn) (int, string, error) {
	var num int
	var text string
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int, current_setting('server_version')`).Scan(&num, &text); err != nil {
		return 0, "", err
	}
	return num / 10000, text, nil
}

// checkDumpClient is pg_dump's version check: nil when the image's client may dump the server.
func checkDumpClient(ctx context.Context, conn *pgx.Conn, cfg Config) error {
	server, serverText, err := serverMajor(ctx, conn)
	if err != nil {
		return fmt.Errorf("ask PostgreSQL its version: %w", err)
	}
	client, warning, err := dumpClient(cfg.Flavour, cfg.Version, server)
	if err != nil {
		return err
	}
	if warning != "" {
		fmt.Println(warning)
	}
	if client < server {
		return fmt.Errorf("pg_dump: error: server version: %s; pg_dump version: %d (bundled in this GitLab %s image)\npg_dump: error: aborting because of server version mismatch (stand-in rule: pg_dump refuses a newer server)", serverText, client, cfg.Version)
	}
	return nil
}
