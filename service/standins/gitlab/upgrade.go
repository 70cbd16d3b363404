package main

// The version in the data, and what a new version does on its first boot: refuse a downgrade
// (both images do) or, for Omnibus, a jump over a required stop (its `gitlab-ctl upgrade-check`),
// queue batched background migrations and run them in the background for a few seconds, and
// write the version into the data the way the real image does.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// versionFile is where each image keeps the version that last ran on the data:
// sameersbn's entrypoint compares GITLAB_VERSION with /home/git/data/tmp/VERSION
// (docs/gitlab-contract.md §1.4), Omnibus's init-container reads /var/opt/gitlab/gitlab-rails/VERSION
// for `gitlab-ctl upgrade-check` (omnibus-gitlab docker/assets/init-container).
func versionFile(flavour string) string {
	if flavour == flavourOmnibus {
		return "/var/opt/gitlab/gitlab-rails/VERSION"
	}
	return "/home/git/data/tmp/VERSION"
}

// standinStops are GitLab's required upgrade stops as Omnibus's upgrade-check knows them. The
// stand-in keeps its own copy on purpose: it checks forgebox's walk, so it must not share
// forgebox's table.
var standinStops = []string{"15.11", "16.3", "16.7", "16.11", "17.3", "17.5", "17.8", "17.11", "18.2", "18.5", "18.8", "18.11", "19.2"}

type semver [3]int

func parseSemver(s string) (semver, bool) {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return semver{}, false
	}
	var v semver
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return semver{}, false
		}
		v[i] = n
	}
	return v, true
}

func (v semver) less(o semver) bool {
	for i := range v {
		if v[i] != o[i] {
			return v[i] < o[i]
		}
	}
	return false
}

func (v semver) minorLess(o semver) bool {
	return v[0] < o[0] || (v[0] == o[0] && v[1] < o[1])
}

// skippedStops lists the stops strictly between old and new, by minor.
func skippedStops(old, new semver) []string {
	var out []string
	for _, s := range standinStops {
		sv, _ := parseSemver(s)
		if old.minorLess(sv) && sv.minorLess(new) {
			out = append(out, s)
		}
	}
	return out
}

// checkUpgrade applies the image's rules to a data version (empty: none yet) and the image's.
func checkUpgrade(flavour, old, new string) (warning string, err error) {
	if old == "" || old == new {
		return "", nil
	}
	ov, ok1 := parseSemver(old)
	nv, ok2 := parseSemver(new)
	if !ok1 || !ok2 {
		return "", fmt.Errorf("cannot compare the data's version %q with this image's %q", old, new)
	}
	if nv.less(ov) {
		if flavour == flavourOmnibus {
			return "", fmt.Errorf("gitlab-ctl upgrade-check: downgrading from %s to %s is not supported", old, new)
		}
		return "", fmt.Errorf("the data was migrated by GitLab %s; this image is %s: only upgrades are allowed", old, new)
	}
	if skipped := skippedStops(ov, nv); len(skipped) > 0 {
		msg := fmt.Sprintf("upgrading from %s to %s skips the required upgrade stop(s) %s", old, new, strings.Join(skipped, ", "))
		if flavour == flavourOmnibus {
			return "", fmt.Errorf("gitlab-ctl upgrade-check: %s; upgrade to the latest %s patch release first", msg, skipped[0])
		}
		// sameersbn's entrypoint does not check stops; GitLab's migrations may then fail.
		return "warning: " + msg + " (this image does not check stops; GitLab's migrations may fail)", nil
	}
	return "", nil
}

func readDataVersion(flavour string) (string, error) {
	b, err := os.ReadFile(versionFile(flavour))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return strings.TrimSpace(string(b)), err
}

func writeDataVersion(flavour, v string) error {
	p := versionFile(flavour)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(v+"\n"), 0o644); err != nil {
		return err
	}
	if flavour == flavourSameersbn {
		os.Chown(tmp, gitUID, gitUID)
	}
	return os.Rename(tmp, p)
}

// Batched background migrations, with GitLab's status numbers
// (Gitlab::Database::BackgroundMigration::BatchedMigration): 0 paused, 1 active, 3 finished,
// 4 failed, 5 finalizing, 6 finalized.
const bbmSchema = `
CREATE TABLE IF NOT EXISTS batched_background_migrations (
	id                       bigserial PRIMARY KEY,
	created_at               timestamptz NOT NULL DEFAULT now(),
	updated_at               timestamptz NOT NULL DEFAULT now(),
	min_value                bigint NOT NULL DEFAULT 1,
	max_value                bigint NOT NULL,
	batch_size               integer NOT NULL,
	sub_batch_size           integer NOT NULL,
	"interval"               smallint NOT NULL,
	status                   smallint NOT NULL DEFAULT 0,
	job_class_name           text NOT NULL,
	batch_class_name         text NOT NULL DEFAULT 'PrimaryKeyBatchingStrategy',
	table_name               text NOT NULL,
	column_name              text NOT NULL,
	job_arguments            jsonb NOT NULL DEFAULT '[]',
	total_tuple_count        bigint,
	started_at               timestamptz,
	finished_at              timestamptz,
	gitlab_schema            text NOT NULL DEFAULT 'gitlab_main',
	queued_migration_version text
);`

// migrationsPerVersion is how many batched migrations each new version queues.
const migrationsPerVersion = 3

// migrationTime is how long the queued migrations of one version take together:
// FORGEBOX_STANDIN_MIGRATION_TIME (a Go duration or seconds), default 4 s.
func migrationTime() time.Duration {
	if v := os.Getenv("FORGEBOX_STANDIN_MIGRATION_TIME"); v != "" {
		if d, err := parseDelay(v); err == nil {
			return d
		}
	}
	return 4 * time.Second
}

// queueMigrations adds this version's batched migrations, once per version.
func queueMigrations(ctx context.Context, conn *pgx.Conn, version string) (int, error) {
	if _, err := conn.Exec(ctx, bbmSchema); err != nil {
		return 0, fmt.Errorf("create batched_background_migrations: %w", err)
	}
	v, _ := parseSemver(version)
	n := 0
	for i := 1; i <= migrationsPerVersion; i++ {
		class := fmt.Sprintf("BackfillStandin%d%dStep%d", v[0], v[1], i)
		queued := fmt.Sprintf("%04d%02d%02d%06d", 2000+v[0], v[1]+1, v[2]%28+1, i)
		tag, err := conn.Exec(ctx, `
			INSERT INTO batched_background_migrations
				(max_value, batch_size, sub_batch_size, "interval", status, job_class_name, table_name, column_name, queued_migration_version)
			SELECT 1000, 100, 10, 2, 1, $1, 'standin_runners', 'id', $2
			WHERE NOT EXISTS (SELECT 1 FROM batched_background_migrations WHERE job_class_name = $1)`, class, queued)
		if err != nil {
			return n, fmt.Errorf("queue %s: %w", class, err)
		}
		n += int(tag.RowsAffected())
	}
	return n, nil
}

// drainMigrations runs the active migrations one after the other, each taking its share of
// migrationTime, until none is left; a restarted container takes up where the last one stopped.
func (s *server) drainMigrations(ctx context.Context) {
	step := migrationTime() / migrationsPerVersion
	for {
		var id int64
		var class string
		err := s.db.with(ctx, func(c *pgx.Conn) error {
			return c.QueryRow(ctx, `UPDATE batched_background_migrations SET started_at = coalesce(started_at, now()), updated_at = now()
				WHERE id = (SELECT id FROM batched_background_migrations WHERE status = 1 ORDER BY id LIMIT 1)
				RETURNING id, job_class_name`).Scan(&id, &class)
		})
		if errors.Is(err, pgx.ErrNoRows) {
			return
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.logf("batched background migrations: %v; retrying", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(step):
		}
		err = s.db.with(ctx, func(c *pgx.Conn) error {
			_, err := c.Exec(ctx, `UPDATE batched_background_migrations SET status = 3, finished_at = now(), updated_at = now()
				WHERE id = $1 AND status = 1`, id)
			return err
		})
		if err == nil {
			s.logf("batched background migration %s finished", class)
		}
	}
}

// prepareData runs after the stand-in's tables exist: the version rules, the migrations a new
// version queues, GitLab's generated files (SSH host keys; Omnibus's gitlab-secrets.json), the
// encryption canary, and finally the version written into the data.
func prepareData(ctx context.Context, conn *pgx.Conn, c Config) error {
	if err := prepareDirs(c); err != nil {
		return err
	}
	old, err := readDataVersion(c.Flavour)
	if err != nil {
		return fmt.Errorf("read %s: %w", versionFile(c.Flavour), err)
	}
	warning, err := checkUpgrade(c.Flavour, old, c.Version)
	if err != nil {
		return err
	}
	if warning != "" {
		logf("%s", warning)
	}
	if err := prepareSecrets(ctx, conn, c); err != nil {
		return err
	}
	if old != c.Version {
		n, err := queueMigrations(ctx, conn, c.Version)
		if err != nil {
			return err
		}
		if old == "" {
			logf("version %s on new data: %d batched background migrations queued", c.Version, n)
		} else {
			logf("upgrade from %s to %s: database migrated; %d batched background migrations queued", old, c.Version, n)
		}
		if err := writeDataVersion(c.Flavour, c.Version); err != nil {
			return fmt.Errorf("write %s: %w", versionFile(c.Flavour), err)
		}
	} else if _, err := conn.Exec(ctx, bbmSchema); err != nil {
		return err
	}
	return nil
}

// gitUID is user git in the sameersbn image (docs/gitlab-contract.md §1.2).
const gitUID = 1000

// prepareDirs makes the data directories the images make, owned as they own them: sameersbn's
// entrypoint gives its data dir to git, whose rake tasks write backups there.
func prepareDirs(c Config) error {
	if c.Flavour == flavourOmnibus {
		for _, d := range []string{"/var/opt/gitlab/backups", "/var/opt/gitlab/gitlab-rails", "/etc/gitlab"} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		return os.Chmod("/var/opt/gitlab/backups", 0o700)
	}
	for _, d := range []string{"/home/git/data/backups", "/home/git/data/tmp", "/home/git/data/ssh"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, d := range []string{"/home/git/data", "/home/git/data/backups", "/home/git/data/tmp"} {
		if err := os.Chown(d, gitUID, gitUID); err != nil {
			return fmt.Errorf("chown %s to git: %w", d, err)
		}
	}
	return nil
}

// handleState is GET /api/v4/standin/state (stand-in only, admin token): the version this image
// claims and the one in the data, the batched migrations by status, whether the running
// db_key_base matches the data's, the SSH host key digest, and the boot phase serving the call
// (restart.go) with the time it began.
func (s *server) handleState(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authAs(w, r, true, "api", "read_api"); !ok {
		return
	}
	dataVersion, _ := readDataVersion(s.cfg.Flavour)
	byStatus := map[string]int{}
	err := s.db.with(r.Context(), func(c *pgx.Conn) error {
		rows, err := c.Query(r.Context(), `SELECT status::text, count(*) FROM batched_background_migrations GROUP BY status`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var st string
			var n int
			if err := rows.Scan(&st, &n); err != nil {
				return err
			}
			byStatus[st] = n
		}
		return rows.Err()
	})
	if err != nil {
		s.internalError(w, "read migrations", err)
		return
	}
	keys.mu.Lock()
	hostKey := keys.hostKeySHA
	keys.mu.Unlock()
	dbOK, otpOK := s.keysMatch(r.Context())
	writeJSON(w, http.StatusOK, map[string]any{
		"standin":              true,
		"flavour":              s.cfg.Flavour,
		"version":              s.cfg.Version,
		"data_version":         dataVersion,
		"migrations_by_status": byStatus,
		"secrets_match_data":   s.secretsMatch(r.Context()) && otpOK,
		"db_key_base_matches":  dbOK,
		"otp_key_base_matches": otpOK,
		"ssh_host_key":         hostKey,
		"puma_stopped":         serviceStopped("puma"),
		"sidekiq_stopped":      serviceStopped("sidekiq"),
		"boot_phase":           s.phase,
		"boot_phase_since":     s.since.Format(time.RFC3339Nano),
	})
}
