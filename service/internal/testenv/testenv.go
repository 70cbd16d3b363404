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
	"os"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
)

// Images are the test images to run in place of the registry ones.
type Images struct {
	Postgres string
	Redis    string
}

func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("FORGEBOX_REQUIRE_ENGINE") == "1" {
		t.Fatalf("%s (FORGEBOX_REQUIRE_ENGINE=1: run the tests with ./build.sh test)", why)
	}
	t.Skipf("%s; run ./build.sh test for the real-engine tests", why)
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
	im := Images{Postgres: os.Getenv("FORGEBOX_TEST_POSTGRES_IMAGE"), Redis: os.Getenv("FORGEBOX_TEST_REDIS_IMAGE")}
	if im.Postgres == "" || im.Redis == "" {
		missing(t, "FORGEBOX_TEST_POSTGRES_IMAGE and FORGEBOX_TEST_REDIS_IMAGE are not set")
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
	t.Cleanup(func() { RemoveStack(t, eng, cfg.Stack.Name, cfg.NetworkName()) })
	return cfg
}

// RemoveStack force-removes whatever a test left of a stack: containers labelled with its name
// and its network. Only for tests: forgebox itself never force-removes anything.
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
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
