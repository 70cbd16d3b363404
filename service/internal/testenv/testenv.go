// Package testenv gives tests a real Docker Engine, the locally built test images and a config
// for a throw-away stack, and cleans up after them. The images come from testimages/build.sh
// (real PostgreSQL and Redis from Debian packages), named in FORGEBOX_TEST_*_IMAGE by the test
// command. Without them a test is skipped, unless FORGEBOX_REQUIRE_ENGINE=1 (set by
// `./build.sh test`) turns the skip into a failure, so CI never passes by skipping.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
)

// Images are the test images to run in place of the registry ones: real PostgreSQL and Redis,
// and the contract stand-ins for GitLab and GitLab Runner (service/standins).
type Images struct {
	Postgres string
	Redis    string
	GitLab   string // stand-in
	Runner   string // stand-in
}

func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("FORGEBOX_REQUIRE_ENGINE") == "1" {
		t.Fatalf("%s (FORGEBOX_REQUIRE_ENGINE=1: run the tests with ./build.sh test)", why)
	}
	t.Skipf("%s; run ./build.sh test for the real-engine tests", why)
}

// Cannot ends a test that cannot do what it is for on this machine: a skip, or a failure under
// FORGEBOX_REQUIRE_ENGINE=1, so CI never passes by skipping.
func Cannot(t testing.TB, why string) {
	t.Helper()
	missing(t, why)
}

// Engine connects to the local engine or skips (fails under FORGEBOX_REQUIRE_ENGINE=1).
func Engine(t testing.TB) *engine.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := engine.Connect(ctx)
	if err != nil {
		missing(t, "no Docker Engine: "+err.Error())
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestImages returns the locally built images, or skips.
func TestImages(t testing.TB) Images {
	t.Helper()
	im := Images{
		Postgres: os.Getenv("FORGEBOX_TEST_POSTGRES_IMAGE"),
		Redis:    os.Getenv("FORGEBOX_TEST_REDIS_IMAGE"),
		GitLab:   os.Getenv("FORGEBOX_TEST_GITLAB_IMAGE"),
		Runner:   os.Getenv("FORGEBOX_TEST_RUNNER_IMAGE"),
	}
	if im.Postgres == "" || im.Redis == "" || im.GitLab == "" || im.Runner == "" {
		missing(t, "FORGEBOX_TEST_{POSTGRES,REDIS,GITLAB,RUNNER}_IMAGE are not all set")
	}
	return im
}

// Config returns a valid config for a stack of its own (a random name, a temporary data dir)
// running the test images, and removes the stack's containers and network when the test ends.
func Config(t testing.TB, eng *engine.Client, im Images) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Stack.Name = "fbt-" + randomHex(4)
	cfg.Stack.DataDir = t.TempDir()
	cfg.Stack.PullPolicy = "never"
	cfg.Postgres.Image = im.Postgres
	cfg.Redis.Image = im.Redis
	cfg.GitLab.Image = im.GitLab
	cfg.GitLab.Host = "forgebox-test.example"
	cfg.GitLab.HTTPPort, cfg.GitLab.SSHPort = FreePort(t), FreePort(t)
	cfg.Runner.Image = im.Runner
	// The runner needs its job helper image on the engine (the stand-in refuses jobs without it,
	// as the real runner would try to pull it from registry.gitlab.com); no registry is reachable
	// here, so a local image stands in for it: the stand-in checks that it is there, not what
	// it is.
	cfg.Runner.HelperImage = im.Runner
	// Any local image does as a job image: the runner stand-in brings its own fetch program.
	cfg.Runner.Profiles[0].Image = im.Redis
	t.Cleanup(func() { RemoveStack(t, eng, cfg.Stack.Name, cfg.NetworkName()) })
	return cfg
}

// RemoveStack force-removes whatever a test left of a stack: containers labelled with its name
// and its networks. Only for tests: forgebox itself never force-removes anything.
func RemoveStack(t testing.TB, eng *engine.Client, stack, network string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	list, err := eng.ListContainers(ctx, stack)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	for _, c := range list {
		eng.Stop(ctx, c.ID, 5*time.Second)
		if err := eng.Remove(ctx, c.ID); err != nil {
			t.Logf("cleanup: %v", err)
		}
	}
	if nw, ok, err := eng.FindNetwork(ctx, stack, network); err == nil && ok {
		eng.RemoveNetwork(ctx, nw.ID)
	}
	// The stack's other networks (the jobs network, an older single network).
	if nets, err := eng.ListNetworks(ctx, stack); err == nil {
		for _, nw := range nets {
			eng.RemoveNetwork(ctx, nw.ID)
		}
	}
}

// FreePort returns a TCP port for a published port that must not clash with tests running in
// parallel, in this process or another (the fault soak and several test binaries share the
// engine). It comes from below the kernel's ephemeral range (32768 and up), where an outgoing
// connection could take it between this check and the engine's bind, and is reserved with an
// flock on a file named after it until the test ends (a killed test's reservation ends with it).
func FreePort(t testing.TB) int {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "forgebox-test-ports")
	if err := os.MkdirAll(dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	for range 500 {
		port := portRangeLow + mrand.IntN(portRangeHigh-portRangeLow)
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			t.Fatal(err)
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			f.Close()
			continue
		}
		l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			f.Close()
			continue
		}
		l.Close()
		t.Cleanup(func() { f.Close() })
		return port
	}
	t.Fatal("no free TCP port between 20000 and 32000 after 500 tries")
	return 0
}

// The range FreePort draws from: above the well-known services, below the ephemeral ports.
const portRangeLow, portRangeHigh = 20000, 32000

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
