package doctor

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/config"
)

func TestMemoryCheckThresholds(t *testing.T) {
	cases := map[string]Status{"1500000": Fail, "3000000": Warn, "8000000": OK} // kB
	for kb, want := range cases {
		p := filepath.Join(t.TempDir(), "meminfo")
		os.WriteFile(p, []byte("MemFree: 1 kB\nMemTotal:       "+kb+" kB\n"), 0o644)
		if got := memoryCheck(p); got.Status != want {
			t.Errorf("MemTotal %s kB: %s (%s), want %s", kb, got.Status, got.Detail, want)
		}
	}
}

func TestPortCheckFindsATakenPort(t *testing.T) {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := config.Default()
	cfg.GitLab.HTTPPort = l.Addr().(*net.TCPAddr).Port
	free, _ := net.Listen("tcp", ":0")
	cfg.GitLab.SSHPort = free.Addr().(*net.TCPAddr).Port
	free.Close()
	checks := portChecks(context.Background(), cfg, nil)
	if len(checks) != 2 {
		t.Fatalf("checks %+v", checks)
	}
	if checks[0].Status != Fail || !strings.Contains(checks[0].Fix, "gitlab.http_port") || !strings.Contains(checks[0].Name, strconv.Itoa(cfg.GitLab.HTTPPort)) {
		t.Errorf("taken port: %+v", checks[0])
	}
	if checks[1].Status != OK {
		t.Errorf("free port: %+v", checks[1])
	}
}

func TestDiskCheckLooksAtTheNearestExistingParent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "yet")
	c := diskCheck(dir)
	if c.Status == Fail || !strings.Contains(c.Detail, "free in") {
		t.Errorf("%+v", c)
	}
}

func TestRunWithoutEngineFailsTheEngineCheck(t *testing.T) {
	cfg := config.Default()
	cfg.Stack.DataDir = t.TempDir()
	checks := Run(context.Background(), cfg, nil, errors.New("no engine here"))
	if !Failed(checks) || checks[0].Name != "engine" || checks[0].Status != Fail || checks[0].Detail != "no engine here" {
		t.Errorf("%+v", checks)
	}
}

// A privileged profile is a warning that says its jobs get the NAS; the defaults have none.
func TestPrivilegedProfileWarning(t *testing.T) {
	cfg := config.Default()
	if got := profileChecks(cfg); len(got) != 1 || got[0].Status != OK {
		t.Errorf("defaults: %+v, want one passing check", got)
	}
	cfg.Runner.Profiles = append(cfg.Runner.Profiles, config.Profile{Name: "dind", Image: "docker:27", Tags: []string{"dind"}, Privileged: true, Concurrency: 1})
	got := profileChecks(cfg)
	if len(got) != 1 || got[0].Status != Warn || !strings.Contains(got[0].Detail, `"dind"`) ||
		!strings.Contains(got[0].Detail, "the whole NAS") || got[0].Fix == "" {
		t.Errorf("with a privileged profile: %+v, want a warning naming it and saying what it gives", got)
	}
}
