package fault_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/testenv"
)

// TestEngineRestart restarts the Docker daemon under a running stack. The containers must come
// back by themselves (restart policy unless-stopped), the same containers, not new ones; `up`
// must then end converged (waiting for GitLab, which boots again), with every row, secret and
// runner registration kept. The stack's networking is checked on the way: forgebox reaches
// PostgreSQL and GitLab at their addresses (host to container), GitLab reaches PostgreSQL and
// Redis and the runner reaches GitLab by their aliases (container to container).
func TestEngineRestart(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	im := testenv.TestImages(t)
	forgeboxBinary(t)
	pe := testenv.StartPrivateEngine(t, testenv.PrivateEngineOptions{})
	pe.Load(im.Postgres, im.Redis, im.GitLab, im.Runner)

	s := newStack(t, testenv.Config(t, eng, im))
	s.host, s.wrap = pe.Host(), pe.NetnsPrefix()
	start := time.Now()
	s.must("up")
	t.Logf("cold up on the private engine: %s", time.Since(start).Round(100*time.Millisecond))
	s.assertConverged()
	waitFor(t, 60*time.Second, "the runner (stand-in) verifies its token with GitLab by alias", func() (bool, string) {
		logs, _ := s.docker("logs", s.container("runner"))
		return strings.Contains(logs, "verified at http://gitlab"), lastLine(logs + "\n-")
	})
	marker := s.writeMarker()
	files := s.dataFiles()
	before := s.containers()
	for _, c := range components {
		if p := s.mustDocker("inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", s.container(c)); p != "unless-stopped" {
			t.Errorf("%s has restart policy %q", c, p)
		}
	}

	start = time.Now()
	pe.Restart()
	t.Logf("dockerd restarted in %s", time.Since(start).Round(100*time.Millisecond))
	waitFor(t, 90*time.Second, "every container runs again", func() (bool, string) {
		out := s.mustDocker("ps", "-a", "--filter", "label=io.forgebox.stack="+s.cfg.Stack.Name, "--format", "{{.Names}}={{.State}}")
		return strings.Count(out, "=running") == len(components), out
	})
	after := s.containers()
	for _, c := range components {
		if len(after[c]) != 1 || after[c][0] != before[c][0] {
			t.Errorf("%s: container %v before the restart, %v after", c, before[c], after[c])
		}
	}
	out, err := s.forgebox("up")
	if err != nil {
		t.Fatalf("up after the engine restart: %v\n%s", err, out)
	}
	t.Logf("up after the engine restart:\n%s", out)
	s.assertConverged()
	s.assertMarker(marker)
	s.assertSameFiles(files)
	// Inside the namespace, GitLab (the stand-in) answers on its published port (the engine's
	// userland proxy; no iptables), and its readiness at its own address on the internal
	// network, whose subnet is the monitoring allowlist (host to container). Through the
	// published port a request comes from outside the allowlist, so readiness there is 404, as
	// GitLab answers it; any HTTP answer shows the port is forwarded.
	ip := s.mustDocker("inspect", "-f", `{{(index .NetworkSettings.Networks "`+s.cfg.NetworkName()+`").IPAddress}}`, s.container("gitlab"))
	published := fmt.Sprintf("127.0.0.1:%d", s.cfg.GitLab.HTTPPort)
	if status, err := pe.HTTPGet(published, "/-/readiness"); err != nil || !strings.HasPrefix(status, "HTTP/1.") {
		t.Errorf("GET http://%s/-/readiness inside the namespace: %q %v", published, status, err)
	}
	if status, err := pe.HTTPGet(ip+":80", "/-/readiness"); err != nil || !strings.Contains(status, " 200 ") {
		t.Errorf("GET http://%s:80/-/readiness inside the namespace: %q %v", ip, status, err)
	}
}
