package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/docker/docker/client"
)

// armEngine answers the two calls the helper choice makes, as a Docker Engine on an arm64
// machine does: /info says aarch64 (the kernel's name, what dockerd reports).
func armEngine(t *testing.T) *client.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/info"):
			w.Write([]byte(`{"Architecture":"aarch64","OSType":"linux"}`))
		default:
			w.Write([]byte(`{}`))
		}
	}))
	t.Cleanup(srv.Close)
	c, err := client.NewClientWithOpts(client.WithHost("tcp://"+srv.Listener.Addr().String()), client.WithVersion("1.41"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRemoteProfileHelperFollowsEngineArch reads the config.toml forgebox writes for a profile on
// another Docker Engine (the stack package's golden file, an amd64 NAS) and asks which helper a
// job of it needs on an arm64 engine: the arm64 helper of the runner's version, since forgebox
// leaves helper_image out there; the NAS's own profile keeps the x86_64 helper forgebox named.
func TestRemoteProfileHelperFollowsEngineArch(t *testing.T) {
	b, err := os.ReadFile("../../internal/stack/testdata/runner-config-scale.golden")
	if err != nil {
		t.Fatal(err)
	}
	// Only the docker runners: the stand-in emulates no kubernetes executor.
	var docker []string
	for _, part := range strings.Split(string(b), "\n[[runners]]") {
		if !strings.Contains(part, `executor = "kubernetes"`) {
			docker = append(docker, part)
		}
	}
	c, err := ParseConfig([]byte(strings.Join(docker, "\n[[runners]]")))
	if err != nil {
		t.Fatal(err)
	}
	eng := armEngine(t)
	got := map[string]string{}
	for _, r := range c.Runners {
		ref, _, err := jobHelperImage(context.Background(), eng, *r.Docker)
		if err != nil {
			t.Fatal(err)
		}
		got[r.Name] = ref
	}
	if want := helperRegistryName + ":arm64-v" + defaultVersion; got["forgebox-build1"] != want {
		t.Errorf("remote profile on an arm64 engine: helper %q, want %q", got["forgebox-build1"], want)
	}
	if want := helperRegistryName + ":x86_64-v" + defaultVersion; got["forgebox-default"] != want {
		t.Errorf("NAS profile: helper %q, want %q (the one forgebox named)", got["forgebox-default"], want)
	}
}
