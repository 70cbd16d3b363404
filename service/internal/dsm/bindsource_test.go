//go:build linux

package dsm

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"

	"github.com/forgebox/forgebox/service/internal/testenv"
)

// TestMissingBindSourceRefusedAtCreate is why the share's bind in spk/compose/compose.yaml
// keeps create_host_path: on the real engine, a bind through the Mounts API (what Compose uses
// for create_host_path: false) whose source is missing makes the container's *creation* fail,
// so the docker-project worker, which creates the project at WHEN_POSTINST before data-share
// links the shared folder, would fail the install; through the Binds API (create_host_path:
// true) creation succeeds and nothing is made on the host until the container starts.
func TestMissingBindSourceRefusedAtCreate(t *testing.T) {
	testenv.Engine(t)
	im := testenv.TestImages(t)
	docker, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "shares", "forgebox")
	name := "fbt-bind-" + randomHex(4)
	_, err = docker.ContainerCreate(ctx, &container.Config{Image: im.Redis}, &container.HostConfig{
		Mounts: []mount.Mount{{Type: mount.TypeBind, Source: missing, Target: "/share"}},
	}, nil, nil, name)
	if err == nil {
		docker.ContainerRemove(ctx, name, container.RemoveOptions{Force: true})
		t.Fatal("the engine created a container whose bind source is missing")
	}
	if !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("create with a missing bind source: %v", err)
	}
	_, err = docker.ContainerCreate(ctx, &container.Config{Image: im.Redis}, &container.HostConfig{
		Binds: []string{missing + ":/share"},
	}, nil, nil, name)
	if err != nil {
		t.Fatalf("create through Binds with a missing source: %v", err)
	}
	docker.ContainerRemove(ctx, name, container.RemoveOptions{Force: true})
	if _, err := os.Stat(missing); err == nil {
		t.Error("creating the container made the host path; only starting it should")
	}
}
