package stack_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/events"
)

// slowBoot is the GitLab stand-in image told to boot for 60 s (FORGEBOX_STANDIN_BOOT_DELAY),
// built once from the stand-in image under test.
func slowBoot(t *testing.T, base string) string {
	t.Helper()
	ref := base + "-boot60s"
	if exec.Command("docker", "image", "inspect", ref).Run() == nil {
		return ref
	}
	cmd := exec.Command("docker", "build", "-q", "-t", ref, "-")
	cmd.Env = append(cmd.Environ(), "DOCKER_BUILDKIT=0")
	cmd.Stdin = strings.NewReader("FROM " + base + "\nENV FORGEBOX_STANDIN_BOOT_DELAY=60s\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build %s: %v\n%s", ref, err, out)
	}
	return ref
}

// TestUpWaitsThroughASlowGitLabBoot: a GitLab that needs a minute to boot (the stand-in told to
// take 60 s; a real one takes minutes) is waited for with progress along the way, and the up
// then finishes its work (admin token, runners). Parallel, so its minute overlaps other tests.
func TestUpWaitsThroughASlowGitLabBoot(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.cfg.GitLab.Image = slowBoot(t, f.cfg.GitLab.Image)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	f.up(ctx)
	var booting int
	var ready bool
	for _, e := range f.rec.evs {
		booting += boolInt(e.Kind == events.KindWait && e.Component == "gitlab" && strings.HasPrefix(e.Message, "GitLab is booting"))
		ready = ready || (e.Component == "gitlab" && strings.HasPrefix(e.Message, "GitLab is ready"))
	}
	// Progress every 10 s through a 60 s boot: five or six, and at least three however slowly
	// each readiness poll returns on a loaded machine.
	if booting < 3 || !ready {
		t.Errorf("%d 'GitLab is booting' reports and ready=%v in an up of %s, want 3 or more and ready", booting, ready, time.Since(start).Round(time.Second))
	}
	if took := time.Since(start); took < 60*time.Second {
		t.Errorf("the up took %s: the stand-in's 60 s boot did not apply", took.Round(time.Second))
	}
	if plan := f.up(ctx); !plan.Empty() {
		t.Errorf("the next up planned:\n%s", plan)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
