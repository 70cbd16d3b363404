package doctor

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/stack"
)

type portEngine struct{ users map[int]string }

func (portEngine) Info(ctx context.Context) (engine.Info, error) { return engine.Info{}, nil }
func (portEngine) ListContainers(ctx context.Context, stack string) ([]engine.Container, error) {
	return nil, nil
}
func (p portEngine) PortUsers(ctx context.Context) (map[int]string, error) { return p.users, nil }

// TestPortCheckInsideTheControllerContainer: in forgebox's own container the port check asks the
// engine who publishes the port instead of listening in the container's namespace, and says what
// it cannot see; without an engine it says it cannot check (issue 16 item 6).
func TestPortCheckInsideTheControllerContainer(t *testing.T) {
	if controllerContainerEnv != stack.ControllerContainerEnv {
		t.Fatalf("doctor reads %s, the stack sets %s", controllerContainerEnv, stack.ControllerContainerEnv)
	}
	t.Setenv(controllerContainerEnv, "forgebox-controller")
	// Taken in this process's namespace: the old check would fail it; here it says nothing.
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := config.Default()
	cfg.GitLab.HTTPPort = l.Addr().(*net.TCPAddr).Port
	cfg.GitLab.SSHPort = 40022

	checks := portChecks(context.Background(), cfg, portEngine{users: map[int]string{40022: "someones-gitea"}})
	if len(checks) != 2 {
		t.Fatalf("checks %+v", checks)
	}
	if c := checks[0]; c.Status != OK || !strings.Contains(c.Detail, "published by no container") || !strings.Contains(c.Detail, "cannot be seen") {
		t.Errorf("a port no container publishes: %+v", c)
	}
	if c := checks[1]; c.Status != Fail || !strings.Contains(c.Detail, "someones-gitea") || !strings.Contains(c.Fix, "gitlab.ssh_port") {
		t.Errorf("a port another container publishes: %+v", c)
	}
	for _, c := range portChecks(context.Background(), cfg, nil) {
		if c.Status != Warn || !strings.Contains(c.Detail, "cannot check") {
			t.Errorf("without an engine: %+v", c)
		}
	}
}
