package download

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/testenv"
)

// A bundle saved from a registry on one machine loads into a second engine that reaches no
// registry (a private dockerd in a network namespace of its own, with only loopback), and `up`
// there converges on what the bundle brought: the pull policy lets it pull what is missing, and
// nothing is reachable to pull from, so every image must have come from the bundle.
func TestBundleBringsUpAStackOnAnEngineThatReachesNoRegistry(t *testing.T) {
	eng := testenv.Engine(t)
	im := testenv.TestImages(t)
	reg := startRegistry(t, registryOpts{})

	// The stack's images, as a registry serves them.
	cfg := testenv.Config(t, eng, im)
	at := func(local string) string { return reg.Addr + "/" + local }
	for _, local := range []string{im.Postgres, im.Redis, im.GitLab, im.Runner} {
		push(t, engineImage(t, local), at(local))
	}
	cfg.Postgres.Image, cfg.Redis.Image, cfg.GitLab.Image = at(im.Postgres), at(im.Redis), at(im.GitLab)
	cfg.Runner.Image, cfg.Runner.HelperImage = at(im.Runner), at(im.Runner)
	cfg.Runner.Profiles[0].Image = at(im.Redis)
	cfg.Stack.PullPolicy = "missing"
	cfgPath := filepath.Join(t.TempDir(), "forgebox.toml")
	if err := config.Save(cfgPath, cfg); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "forgebox")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/forgebox/forgebox/service/cmd/forgebox").CombinedOutput(); err != nil {
		t.Fatalf("go build forgebox: %v\n%s", err, out)
	}

	// "Another machine": saves the bundle from the registry into a cache of its own.
	bundle := filepath.Join(t.TempDir(), "stack.bundle")
	run := func(prefix []string, env []string, args ...string) (string, error) {
		all := append(append(prefix, bin, "--config", cfgPath), args...)
		cmd := exec.Command(all[0], all[1:]...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(nil, nil, "bundle", "save", "--cache", t.TempDir(), bundle); err != nil {
		t.Fatalf("bundle save: %v\n%s", err, out)
	}

	// The NAS: a second engine that reaches no registry.
	pe := testenv.StartPrivateEngine(t, testenv.PrivateEngineOptions{})
	onNAS := func(args ...string) (string, error) {
		return run(pe.NetnsPrefix(), []string{"DOCKER_HOST=" + pe.Host()}, args...)
	}
	for _, img := range []string{cfg.Postgres.Image, cfg.GitLab.Image} {
		if out, err := exec.Command("docker", "-H", pe.Host(), "image", "inspect", img).CombinedOutput(); err == nil {
			t.Fatalf("the second engine has %s before the bundle is loaded: %s", img, out)
		}
	}
	if out, err := onNAS("bundle", "load", bundle); err != nil {
		t.Fatalf("bundle load on the second engine: %v\n%s", err, out)
	}
	if out, err := onNAS("up"); err != nil {
		t.Fatalf("up on the second engine after the bundle: %v\n%s", err, out)
	}
	out, err := onNAS("up")
	if err != nil || !strings.Contains(out, "nothing to do") {
		t.Fatalf("a second up on the second engine: %v\n%s", err, out)
	}
	ps, err := exec.Command("docker", "-H", pe.Host(), "ps", "--filter", "label=io.forgebox.stack="+cfg.Stack.Name, "--format", "{{.Names}} {{.Image}}").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range []string{cfg.Postgres.Image, cfg.Redis.Image, cfg.GitLab.Image, cfg.Runner.Image} {
		if !strings.Contains(string(ps), " "+img+"\n") {
			t.Errorf("no running container of %s on the second engine:\n%s", img, ps)
		}
	}
}
