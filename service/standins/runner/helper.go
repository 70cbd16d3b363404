package main

import (
	"context"
	"fmt"
	"regexp"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
)

// The docker executor's helper image (gitlab-runner v18.5.0 to v19.2.2):
//   - executors/docker/docker.go getHelperImage: with [runners.docker] helper_image set, that image
//     is fetched through the pull manager (pull_policy applies); without it the runner looks for
//     <GitLabRegistryName>:<tag> on the engine, then for a prebuilt tarball next to its binary
//     (the gitlab/gitlab-runner image has none: dockerfiles/runner/Dockerfile copies the binary
//     only), then pulls it from registry.gitlab.com. It needs it for every job (clone, artifacts,
//     cache), so on a box that cannot reach that registry every job stalls, then fails.
//   - helpers/container/helperimage/info.go GitLabRegistryName and linux_info.go: the tag is
//     <arch>-v<version> for the default (alpine) flavour, arch from the engine's Info
//     (x86_64 stays, aarch64 -> arm64, armv6l/armv7l -> arm, amd64 -> x86_64), version the
//     runner's own.
//
// The stand-in refuses a job whose helper image the engine does not have, at once, instead of
// pulling: no registry is reachable from the test machines, and a pull that stalls would only
// make the test slow. It checks that the image is there, not what it is.
const helperRegistryName = "registry.gitlab.com/gitlab-org/gitlab-runner/gitlab-runner-helper"

// defaultVersion is the GitLab Runner version the stand-in claims, as the real runner's is
// compiled in (that of forgebox's default runner image); FORGEBOX_STANDIN_VERSION (or
// FORGEBOX_STANDIN_RUNNER_VERSION) overrides it for tests of other versions (trace.go).
const defaultVersion = "19.2.2"

var versionPattern = regexp.MustCompile(`^\d+\.\d+\.\d+$`)

func standinVersion() string { return claimedVersion() }

// helperArch maps the engine's Info architecture as helperimage/linux_info.go does.
func helperArch(arch string) string {
	switch arch {
	case "armv6l", "armv7l":
		return "arm"
	case "aarch64":
		return "arm64"
	case "amd64":
		return "x86_64"
	}
	return arch
}

// jobHelperImage is the helper image a job of this [runners.docker] uses, and whether it was
// configured (the runner's log says "overridden" then).
func jobHelperImage(ctx context.Context, c *client.Client, d Docker) (string, bool, error) {
	if d.HelperImage != "" {
		return d.HelperImage, true, nil
	}
	info, err := c.Info(ctx)
	if err != nil {
		return "", false, fmt.Errorf("engine info: %w", err)
	}
	return fmt.Sprintf("%s:%s-v%s", helperRegistryName, helperArch(info.Architecture), standinVersion()), false, nil
}

// checkHelperImage refuses a job whose helper image is not on the engine.
func checkHelperImage(ctx context.Context, c *client.Client, d Docker) (string, error) {
	ref, configured, err := jobHelperImage(ctx, c, d)
	if err != nil {
		return "", err
	}
	if _, err := c.ImageInspect(ctx, ref); err == nil {
		return ref, nil
	} else if !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("inspect helper image %s: %w", ref, err)
	}
	where := "helper_image is empty, so the runner would pull it from registry.gitlab.com now"
	if configured {
		where = "[runners.docker] helper_image names it, so the runner would pull it now"
	}
	return "", fmt.Errorf("helper image %s is not on the engine: the docker executor starts it beside every job; %s, and stall or fail where that registry cannot be reached (stand-in: refused without pulling)", ref, where)
}
