package stack

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/config"
)

// The upgrade's pulls go through Session.Pull: stack.pull_via decides, as it does for `up`.
// pull_via = "engine" asks the engine; pull_via = "forgebox" never does (the fake engine cannot
// load images, so forgebox's own download stops with that message, before any network use).
func TestSessionPullHonoursPullVia(t *testing.T) {
	f, mk := fakeStack(t)
	const img = "gitlab/gitlab-ce:99.0.0-ce.0"

	x, err := mk(func(c *config.Config) { c.Stack.PullVia = "engine" }).Begin("upgrade")
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Pull(context.Background(), "gitlab", img); err != nil {
		t.Fatalf("pull via the engine: %v", err)
	}
	x.End()
	if !slices.Contains(f.calls, "pull "+img) {
		t.Fatalf("pull_via=engine: the engine was not asked to pull; calls %v", f.calls)
	}

	f.calls = nil
	x, err = mk(func(c *config.Config) {
		c.Stack.PullVia = "forgebox"
		c.Stack.RegistryMirrors = []string{"https://mirror.example"}
	}).Begin("upgrade")
	if err != nil {
		t.Fatal(err)
	}
	defer x.End()
	err = x.Pull(context.Background(), "gitlab", img)
	if err == nil || !strings.Contains(err.Error(), "cannot load images") {
		t.Fatalf("pull_via=forgebox: want forgebox's own download (which needs an engine that loads images), got %v", err)
	}
	if slices.Contains(f.calls, "pull "+img) {
		t.Fatalf("pull_via=forgebox: the engine was asked to pull; calls %v", f.calls)
	}
}
