package stack_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/stack"
	"github.com/forgebox/forgebox/service/internal/testenv"
)

// arm64Engine is the real engine claiming to be arm64, as a DSM armv8 box's engine answers.
type arm64Engine struct{ *engine.Client }

func (e arm64Engine) Info(ctx context.Context) (engine.Info, error) {
	i, err := e.Client.Info(ctx)
	i.Arch = "arm64"
	return i, err
}

// TestSameersbnRefusedOnArm64: the architecture comes from the engine (Info), and sameersbn is
// refused there before anything changes, naming the omnibus flavour; a local image is judged by
// its own platform.
func TestSameersbnRefusedOnArm64(t *testing.T) {
	eng := testenv.Engine(t)
	im := testenv.TestImages(t)
	cfg := testenv.Config(t, eng, im)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	secrets, err := config.OpenSecrets(cfg.Stack.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	arm := arm64Engine{eng}

	// Not on the engine: sameersbn publishes amd64 only.
	cfg.GitLab.Flavour, cfg.GitLab.Image = "sameersbn", "sameersbn/gitlab:19.2.0-forgebox-test-absent"
	_, err = stack.New(cfg, arm, secrets, stack.Options{Version: "test"}).Up(ctx)
	if err == nil || !strings.Contains(err.Error(), `gitlab.flavour = "omnibus"`) || !strings.Contains(err.Error(), "arm64") {
		t.Fatalf("sameersbn on arm64: %v", err)
	}
	if _, found, _ := eng.FindNetwork(ctx, cfg.Stack.Name, cfg.NetworkName()); found {
		t.Error("the refused up created the stack network")
	}
	if _, err := stack.New(cfg, arm, secrets, stack.Options{Version: "test"}).Plan(ctx); err == nil || !strings.Contains(err.Error(), "omnibus") {
		t.Errorf("plan of sameersbn on arm64: %v", err)
	}

	// On the engine: its platform decides (the stand-in image is this engine's own, amd64).
	cfg.GitLab.Image = im.GitLab
	imageArch, err := eng.ImageArch(ctx, im.GitLab)
	if err != nil || imageArch == "" {
		t.Fatalf("ImageArch(%s) = %q, %v", im.GitLab, imageArch, err)
	}
	_, err = stack.New(cfg, arm, secrets, stack.Options{Version: "test"}).Up(ctx)
	if imageArch != "arm64" && (err == nil || !strings.Contains(err.Error(), "the local image "+im.GitLab+" is built for "+imageArch)) {
		t.Fatalf("local %s sameersbn image on arm64: %v", imageArch, err)
	}

	// The same config on the engine as it is: not refused for its arch.
	if _, err := stack.New(cfg, eng, secrets, stack.Options{Version: "test"}).Plan(ctx); err != nil {
		t.Errorf("plan on the real engine: %v", err)
	}
}
