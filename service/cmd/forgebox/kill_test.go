package main

import (
	"bufio"
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/gitlab"
	"github.com/forgebox/forgebox/service/internal/testenv"
)

// buildBinary compiles forgebox once per test, so a kill -9 hits a real separate process.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "forgebox")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// upKilledAt runs `forgebox up` and SIGKILLs it as soon as it prints a line containing marker.
// It reports whether the marker was seen (the kill happened there).
func upKilledAt(t *testing.T, bin, cfgPath, marker string) bool {
	t.Helper()
	cmd := exec.Command(bin, "--config", cfgPath, "up")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if strings.Contains(sc.Text(), marker) {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
			break
		}
	}
	go func() { // drain, so a process that was not killed can finish
		for sc.Scan() {
		}
	}()
	cmd.Wait()
	return killed
}

func runBin(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("forgebox %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestKilledUpConvergesOnRerun kills `up` at named points (right after a container is created,
// in the middle of provisioning, while runners are registered) and checks that the next `up`
// converges with one container per component, no leftover runner in GitLab (the GitLab
// stand-in), and the data that was there before.
func TestKilledUpConvergesOnRerun(t *testing.T) {
	eng := testenv.Engine(t)
	im := testenv.TestImages(t)
	bin := buildBinary(t)
	ctx := context.Background()

	for _, marker := range []string{"==> wait postgres", "==> provision postgres", "==> runners gitlab"} {
		t.Run(strings.TrimPrefix(marker, "==> "), func(t *testing.T) {
			cfg := testenv.Config(t, eng, im)
			src, _ := config.Encode(cfg)
			cfgPath := filepath.Join(t.TempDir(), "forgebox.toml")
			os.WriteFile(cfgPath, src, 0o644)

			if !upKilledAt(t, bin, cfgPath, marker) {
				t.Fatalf("up finished without printing %q", marker)
			}
			runBin(t, bin, "--config", cfgPath, "up")
			if out := runBin(t, bin, "--config", cfgPath, "up"); !strings.Contains(out, "nothing to do") {
				t.Errorf("third up still had work:\n%s", out)
			}
			list, err := eng.ListContainers(ctx, cfg.Stack.Name)
			if err != nil {
				t.Fatal(err)
			}
			per := map[string]int{}
			for _, c := range list {
				if c.Component != "" {
					per[c.Component]++
				}
			}
			for _, comp := range []string{"postgres", "redis", "gitlab", "runner"} {
				if per[comp] != 1 {
					t.Errorf("%d %s containers after the rerun", per[comp], comp)
				}
			}
			checkRunnersMatchRecords(t, ctx, eng, cfg)
			writeAndKeepRow(t, ctx, eng, cfg, bin, cfgPath)
		})
	}
}

// checkRunnersMatchRecords: every runner GitLab has is one forgebox recorded, and vice versa.
func checkRunnersMatchRecords(t *testing.T, ctx context.Context, eng *engine.Client, cfg config.Config) {
	t.Helper()
	sec, _ := config.OpenSecrets(cfg.Stack.DataDir)
	token, _ := sec.Get(config.SecretGitLabAdminToken)
	api, err := gitlab.New(gitlabURL(t, ctx, eng, cfg), token)
	if err != nil {
		t.Fatal(err)
	}
	listed, err := api.ListRunners(ctx)
	if err != nil {
		t.Fatal(err)
	}
	records := 0
	for _, n := range sec.Names() {
		if strings.HasPrefix(n, "runner/") {
			records++
		}
	}
	if len(listed) != records || records != len(cfg.Runner.Profiles) {
		t.Errorf("GitLab has %d runners, forgebox recorded %d, for %d profiles: %+v", len(listed), records, len(cfg.Runner.Profiles), listed)
	}
}

func containerIP(t *testing.T, ctx context.Context, eng *engine.Client, cfg config.Config, component string) string {
	t.Helper()
	list, _ := eng.ListContainers(ctx, cfg.Stack.Name)
	for _, c := range list {
		if c.Component == component {
			det, err := eng.Inspect(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			return det.IPs[cfg.NetworkName()]
		}
	}
	t.Fatalf("no %s container", component)
	return ""
}

func gitlabURL(t *testing.T, ctx context.Context, eng *engine.Client, cfg config.Config) string {
	return "http://" + containerIP(t, ctx, eng, cfg, "gitlab")
}

// writeAndKeepRow writes a row, kills an `up` that recreates PostgreSQL (a changed image name)
// right after it starts the new container, and checks the row after the next `up`.
func writeAndKeepRow(t *testing.T, ctx context.Context, eng *engine.Client, cfg config.Config, bin, cfgPath string) {
	t.Helper()
	sec, _ := config.OpenSecrets(cfg.Stack.DataDir)
	pw, _ := sec.Get(config.SecretPostgresGitLab)
	connect := func() *pgx.Conn {
		u := url.URL{Scheme: "postgres", User: url.UserPassword("gitlab", pw), Path: "/gitlabhq_production", RawQuery: "sslmode=disable",
			Host: net.JoinHostPort(containerIP(t, ctx, eng, cfg, "postgres"), "5432")}
		var conn *pgx.Conn
		var err error
		for i := 0; i < 30; i++ {
			if conn, err = pgx.Connect(ctx, u.String()); err == nil {
				return conn
			}
			time.Sleep(time.Second)
		}
		t.Fatalf("connect as gitlab: %v", err)
		return nil
	}
	conn := connect()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS kill_test (v text); INSERT INTO kill_test VALUES ('kept')`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	retag := cfg.Postgres.Image + "-kill-" + cfg.Stack.Name
	if out, err := exec.Command("docker", "tag", cfg.Postgres.Image, retag).CombinedOutput(); err != nil {
		t.Fatalf("docker tag: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", retag).Run() })
	cfg.Postgres.Image = retag
	src, _ := config.Encode(cfg)
	os.WriteFile(cfgPath, src, 0o644)
	if !upKilledAt(t, bin, cfgPath, "==> wait postgres") {
		t.Fatal("up did not recreate postgres")
	}
	runBin(t, bin, "--config", cfgPath, "up")
	conn = connect()
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM kill_test WHERE v = 'kept'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("row after a killed recreate: %d rows, %v", n, err)
	}
}
