package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// patScript is the one Rails runner script the stand-in executes: the admin-token script forgebox
// sends (docs/gitlab-contract.md §4.4, with the expiry as a literal date).
var patScript = regexp.MustCompile(`^u = User\.find_by_username\('root'\); ` +
	`abort '` + noRootMarker + `' if u\.nil\?; ` +
	`t = u\.personal_access_tokens\.create!\(name: '([A-Za-z0-9][A-Za-z0-9 ._:-]{0,254})', ` +
	`scopes: \[(:[a-z_]+(?:, :[a-z_]+)*)\], ` +
	`expires_at: Date\.parse\('([0-9]{4}-[0-9]{2}-[0-9]{2})'\)\); ` +
	`puts "FORGEBOX_TOKEN=#\{t\.token\}"$`)

// noRootMarker is what the script aborts with (stderr, exit 1) while root does not exist: on
// sameersbn's first boot until gitlab:setup seeds it (restart.go).
const noRootMarker = "FORGEBOX_NO_ROOT"

// patScopes are the scopes forgebox may ask for.
var patScopes = []string{"api", "create_runner", "read_api", "admin_mode", "sudo"}

// maxPATLifetime is GitLab's default maximum token lifetime.
const maxPATLifetime = 365

// PATRequest is what a recognised script asks for.
type PATRequest struct {
	Name      string
	Scopes    []string
	ExpiresAt time.Time
}

// ParsePATScript recognises the admin-token script and validates it as GitLab would, with today
// as the current date (UTC).
func ParsePATScript(script string, today time.Time) (PATRequest, error) {
	m := patScript.FindStringSubmatch(script)
	if m == nil {
		return PATRequest{}, fmt.Errorf("the script is not the admin-token script the stand-in knows " +
			"(u = User.find_by_username('root'); abort '" + noRootMarker + "' if u.nil?; t = u.personal_access_tokens.create!(name: '...', scopes: [:api, ...], " +
			"expires_at: Date.parse('YYYY-MM-DD')); puts \"FORGEBOX_TOKEN=#{t.token}\"); the stand-in runs no other Ruby")
	}
	req := PATRequest{Name: m[1]}
	for _, s := range strings.Split(m[2], ", ") {
		s = strings.TrimPrefix(s, ":")
		if !slices.Contains(patScopes, s) {
			return PATRequest{}, fmt.Errorf("Validation failed: Scopes can only contain available scopes (%q is not one of %s)", s, strings.Join(patScopes, ", "))
		}
		if slices.Contains(req.Scopes, s) {
			return PATRequest{}, fmt.Errorf("scope %q is listed twice", s)
		}
		req.Scopes = append(req.Scopes, s)
	}
	d, err := time.Parse("2006-01-02", m[3])
	if err != nil {
		return PATRequest{}, fmt.Errorf("Date::Error (invalid date %q)", m[3])
	}
	today = today.UTC().Truncate(24 * time.Hour)
	switch {
	case !d.After(today):
		return PATRequest{}, fmt.Errorf("Validation failed: Expiration date must be in the future (got %s)", m[3])
	case d.After(today.AddDate(0, 0, maxPATLifetime)):
		return PATRequest{}, fmt.Errorf("Validation failed: Expiration date must be before %s", today.AddDate(0, 0, maxPATLifetime+1).Format("2006-01-02"))
	}
	req.ExpiresAt = d
	return req, nil
}

// execFail prints msg on stderr (the exec's output, not the container log) and returns 1.
func execFail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "forgebox GitLab stand-in: "+format+"\n", args...)
	return 1
}

const sameersbnWorkdir = "/home/git/gitlab"

// runBundle is `bundle exec rails runner -e production '<ruby>'`, the sameersbn exec path
// (docker exec --user git; WORKDIR /home/git/gitlab).
func runBundle(args []string) int {
	if _, ok := os.LookupEnv("GITLAB_OMNIBUS_CONFIG"); ok {
		fmt.Fprintln(os.Stderr, `forgebox GitLab stand-in (omnibus flavour): exec: "bundle": executable file not found in $PATH (the gitlab/gitlab-ce image has no bundle in PATH; use gitlab-rails runner)`)
		return 127
	}
	if u, err := user.Current(); err != nil || u.Username != "git" {
		name := "uid " + fmt.Sprint(os.Getuid())
		if err == nil {
			name = u.Username
		}
		return execFail("bundle must run as user git (docker exec --user git), not %s: the sameersbn image's Rails runs as git", name)
	}
	if wd, _ := os.Getwd(); wd != sameersbnWorkdir {
		return execFail("Could not locate Gemfile or .bundle/ directory (working directory %s, not %s)", wd, sameersbnWorkdir)
	}
	if len(args) >= 2 && args[0] == "exec" && args[1] == "rake" {
		return runRake(args[2:]) // backup.go
	}
	if len(args) != 6 || !slices.Equal(args[:5], []string{"exec", "rails", "runner", "-e", "production"}) {
		return execFail("the stand-in's bundle accepts exactly: bundle exec rails runner -e production '<script>' (got %d arguments: %s)", len(args), clipArgs(args))
	}
	return runScript(args[5], flavourSameersbn)
}

// runGitlabRails is `gitlab-rails runner '<ruby>'`, the Omnibus exec path (as root).
func runGitlabRails(args []string) int {
	if _, ok := os.LookupEnv("GITLAB_OMNIBUS_CONFIG"); !ok {
		fmt.Fprintln(os.Stderr, `forgebox GitLab stand-in (sameersbn flavour): exec: "gitlab-rails": executable file not found in $PATH (the sameersbn image has no gitlab-rails; use bundle exec rails runner -e production as user git)`)
		return 127
	}
	if os.Getuid() != 0 {
		return execFail("gitlab-rails must run as root in the Omnibus image (it switches to git itself); running as uid %d", os.Getuid())
	}
	if len(args) != 2 || args[0] != "runner" {
		return execFail("the stand-in's gitlab-rails accepts exactly: gitlab-rails runner '<script>' (got %d arguments: %s)", len(args), clipArgs(args))
	}
	return runScript(args[1], flavourOmnibus)
}

func clipArgs(args []string) string {
	var out []string
	for _, a := range args {
		out = append(out, fmt.Sprintf("%q", clip(a)))
	}
	return strings.Join(out, " ")
}

// runScript mints the token the script asks for, in the container's database, and prints the
// FORGEBOX_TOKEN= line.
func runScript(script, flavour string) int {
	cfg, err := LoadConfig(osLookup)
	if err != nil {
		return execFail("the container's environment is invalid: %v", err)
	}
	if cfg.Flavour != flavour {
		return execFail("flavour mismatch")
	}
	if !serverReady() {
		return execFail("GitLab is not ready (the stand-in is still booting or not running)")
	}
	req, err := ParsePATScript(script, time.Now())
	if err != nil {
		return execFail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := connectWithRetry(ctx, cfg, 0, func(string, ...any) {})
	if err != nil {
		return execFail("%v", err)
	}
	defer conn.Close(context.Background())
	token, err := createPAT(ctx, conn, "root", req)
	if errors.Is(err, pgx.ErrNoRows) {
		// Kernel#abort prints its message on stderr and exits 1.
		fmt.Fprintln(os.Stderr, noRootMarker)
		return 1
	}
	if err != nil {
		return execFail("create token: %v", err)
	}
	fmt.Printf("FORGEBOX_TOKEN=%s\n", token)
	return 0
}

// createPAT stores a new token for username (its sha256 digest only) and returns it.
func createPAT(ctx context.Context, conn *pgx.Conn, username string, req PATRequest) (string, error) {
	var uid int64
	if err := conn.QueryRow(ctx, `SELECT id FROM standin_users WHERE username = $1`, username).Scan(&uid); err != nil {
		return "", err
	}
	token := randomToken("glpat-", 20)
	_, err := conn.Exec(ctx, `INSERT INTO standin_personal_access_tokens (user_id, name, token_digest, scopes, expires_at)
		VALUES ($1, $2, $3, $4, $5)`, uid, req.Name, digest(token), req.Scopes, req.ExpiresAt)
	return token, err
}
