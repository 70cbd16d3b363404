package fault_test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/testenv"
)

// TestComponentKilled hurts single components of a converged stack, each in the way it happens:
//
//   - `docker kill` of Redis. Docker records a kill as a stop by the user, so the restart policy
//     (unless-stopped) rightly leaves it down: `forgebox status` must report it not running, and
//     `forgebox up` must start it again.
//   - GitLab's process crashing (SIGKILL to its PID on the host). The restart policy restarts
//     it at once, and `up` run right away meets GitLab still booting: it must wait for it, not
//     fail on the admin-token step.
//   - PostgreSQL's process crashing, and `up` run at once: it meets PostgreSQL exiting,
//     being restarted by the engine, or recovering, and must wait rather than fail; crash
//     recovery must keep every committed row.
func TestComponentKilled(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	eng := testenv.Engine(t)
	s := newStack(t, testenv.Config(t, eng, testenv.TestImages(t)))
	s.must("up")
	before := s.noteBaseline()

	t.Run("docker kill redis", func(t *testing.T) {
		s.t = t
		s.mustDocker("kill", s.container("redis"))
		waitFor(t, 30*time.Second, "redis exits", func() (bool, string) {
			st := s.mustDocker("inspect", "-f", "{{.State.Status}}", s.container("redis"))
			return st == "exited", st
		})
		time.Sleep(3 * time.Second) // give the restart policy the chance it must not take
		if st := s.statusOf("redis"); st.State != "exited" {
			t.Fatalf("status reports redis %q after docker kill; Docker treats a kill as a user's stop, so it stays exited", st.State)
		}
		out := s.must("up")
		if !strings.Contains(out, "start redis: container is exited") {
			t.Errorf("up did not start redis again:\n%s", out)
		}
		s.assertConverged()
	})

	t.Run("gitlab process crashes", func(t *testing.T) {
		s.t = t
		restarts := atoi(s.mustDocker("inspect", "-f", "{{.RestartCount}}", s.container("gitlab")))
		pid := atoi(s.mustDocker("inspect", "-f", "{{.State.Pid}}", s.container("gitlab")))
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the restart policy restarts gitlab", func() (bool, string) {
			n := atoi(s.mustDocker("inspect", "-f", "{{.RestartCount}}", s.container("gitlab")))
			st := s.mustDocker("inspect", "-f", "{{.State.Status}}", s.container("gitlab"))
			return n > restarts && st == "running", st
		})
		out, err := s.forgebox("up") // GitLab is booting again right now
		if err != nil {
			t.Fatalf("up while GitLab boots after a crash: %v\n%s", err, out)
		}
		t.Logf("up right after the crash:\n%s", out)
		s.assertConverged()
	})

	t.Run("postgres process crashes", func(t *testing.T) {
		s.t = t
		restarts := atoi(s.mustDocker("inspect", "-f", "{{.RestartCount}}", s.container("postgres")))
		pid := atoi(s.mustDocker("inspect", "-f", "{{.State.Pid}}", s.container("postgres")))
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// At once: `up` meets PostgreSQL exiting, restarting (the engine's backoff) or
		// recovering, whichever comes; each must end converged.
		out, err := s.forgebox("up")
		if err != nil {
			t.Fatalf("up right after PostgreSQL crashed: %v\n%s", err, out)
		}
		t.Logf("up right after the crash:\n%s", out)
		if n := atoi(s.mustDocker("inspect", "-f", "{{.RestartCount}}", s.container("postgres"))); n <= restarts {
			t.Errorf("restart count %d -> %d: the restart policy did not bring PostgreSQL back", restarts, n)
		}
		s.assertConverged()
		s.assertMarker(before.marker)
	})

	// Healing never recreated anything, and nothing forgebox keeps on disk changed.
	s.t = t
	s.assertSameContainers(before)
	s.assertSameFiles(before.files)
	s.assertMarker(before.marker)
}
