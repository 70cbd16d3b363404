//go:build linux

package dsm

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/testenv"
)

type engineImages struct{ eng *engine.Client }

func (s engineImages) ImageTags(ctx context.Context, repo, key, value string) ([]ImageTag, error) {
	tags, err := s.eng.ImageTags(ctx, repo, key, value)
	out := make([]ImageTag, len(tags))
	for i, t := range tags {
		out[i] = ImageTag{Ref: t.Ref, ID: t.ID}
	}
	return out, err
}

func (s engineImages) RemoveImageTag(ctx context.Context, ref string) error {
	return s.eng.RemoveImageTag(ctx, ref)
}

// TestRemoveOldControllerImages runs the cleanup on the real engine, on dummy images of a
// repository of its own: older labelled tags go; the current tag, another tag of the current
// image, a tag a container still uses and an image without the label stay.
func TestRemoveOldControllerImages(t *testing.T) {
	eng := testenv.Engine(t)
	im := testenv.TestImages(t)
	docker, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	ctx := context.Background()
	repo := "forgebox-test/controller-" + randomHex(4)
	base, err := docker.ContainerCreate(ctx, &container.Config{Image: im.Redis}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer docker.ContainerRemove(ctx, base.ID, container.RemoveOptions{Force: true})
	commit := func(tag string, labelled bool) {
		t.Helper()
		labels := map[string]string{"io.forgebox-test.dummy": tag}
		if labelled {
			labels[ControllerImageLabel] = ControllerImageTitle
		}
		_, err := docker.ContainerCommit(ctx, base.ID, container.CommitOptions{Reference: repo + ":" + tag,
			Config: &container.Config{Image: im.Redis, Labels: labels}})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, tag := range []string{"0.1.0-0001", "0.1.0-0002", "0.1.0-0003", "0.1.0-0004"} {
		commit(tag, true)
	}
	commit("users-own", false)
	if err := docker.ImageTag(ctx, repo+":0.1.0-0004", repo+":latest"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, tag := range []string{"0.1.0-0001", "0.1.0-0002", "0.1.0-0003", "0.1.0-0004", "latest", "users-own"} {
			docker.ImageRemove(context.Background(), repo+":"+tag, image.RemoveOptions{Force: true, PruneChildren: true})
		}
	})
	user, err := docker.ContainerCreate(ctx, &container.Config{Image: repo + ":0.1.0-0002"}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer docker.ContainerRemove(ctx, user.ID, container.RemoveOptions{Force: true})

	removed, err := RemoveOldControllerImages(ctx, engineImages{eng}, repo+":0.1.0-0004", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	if want := []string{repo + ":0.1.0-0001", repo + ":0.1.0-0003"}; !slices.Equal(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	for tag, want := range map[string]bool{"0.1.0-0001": false, "0.1.0-0002": true, "0.1.0-0003": false, "0.1.0-0004": true, "latest": true, "users-own": true} {
		_, err := docker.ImageInspect(ctx, repo+":"+tag)
		if got := err == nil; got != want {
			t.Errorf("%s:%s present %v, want %v", repo, tag, got, want)
		}
	}
}

func TestOldControllerImagesPlan(t *testing.T) {
	tags := []ImageTag{{"r:1", "a"}, {"r:2", "b"}, {"r:3", "c"}, {"r:latest", "c"}}
	if got := OldControllerImages("r:3", tags); !slices.Equal(got, []string{"r:1", "r:2"}) {
		t.Errorf("plan %v", got)
	}
	if got := OldControllerImages("r:9", tags); len(got) != 0 {
		t.Errorf("with the current tag absent, plan %v", got)
	}
}
