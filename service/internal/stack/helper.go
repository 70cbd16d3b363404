package stack

import (
	"context"
	"fmt"
	"github.com/forgebox/forgebox/service/internal/msg"
	"regexp"
	"strings"

	"github.com/distribution/reference"

	"github.com/forgebox/forgebox/service/internal/config"
)

// HelperRegistryName is where GitLab Runner's docker executor pulls its helper image from when
// config.toml names none (gitlab-runner helpers/container/helperimage/info.go GitLabRegistryName,
// v18.5.0 to v19.2.2). The gitlab/gitlab-runner image ships no prebuilt helper
// (dockerfiles/runner/Dockerfile copies the binary only), so every job of a runner without
// helper_image pulls it from there.
const HelperRegistryName = "registry.gitlab.com/gitlab-org/gitlab-runner/gitlab-runner-helper"

// runnerTagVersion finds the runner version in gitlab/gitlab-runner's tags: v19.2.2,
// alpine-v19.2.2, ubuntu-v19.2.2, alpine3.21-v19.2.2.
var runnerTagVersion = regexp.MustCompile(`(?:^|-)v(\d+\.\d+\.\d+)$`)

// RunnerVersion is the GitLab Runner version a runner image's tag names, e.g. "19.2.2".
func RunnerVersion(image string) (string, bool) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", false
	}
	tagged, ok := named.(reference.Tagged)
	if !ok {
		return "", false
	}
	m := runnerTagVersion.FindStringSubmatch(tagged.Tag())
	if m == nil {
		return "", false
	}
	return m[1], true
}

// helperArch is the architecture token of the helper's tag for an engine architecture, as the
// runner maps the engine's: aarch64 -> arm64, armv6l/armv7l -> arm, amd64 -> x86_64, anything
// else as it is (helperimage/linux_info.go architecture()). forgebox hears Go's names from the
// engine, so arm64 and arm map to themselves.
func helperArch(arch string) string {
	switch arch {
	case "amd64", "x86_64":
		return "x86_64"
	case "arm64", "aarch64":
		return "arm64"
	case "arm", "armv6l", "armv7l":
		return "arm"
	}
	return arch
}

// DefaultHelperImage is the helper image GitLab Runner of the runner image's version picks on an
// engine of arch with the default (alpine) helper flavour: <registry>:<arch>-v<version>
// (helperimage/linux_info.go: the alpine flavour adds no prefix to the tag).
func DefaultHelperImage(runnerImage, arch string) (string, error) {
	v, ok := RunnerVersion(runnerImage)
	if !ok {
		return "", fmt.Errorf("runner.image %q has no GitLab Runner version in its tag (like alpine-v19.2.2), so the helper image that matches it is unknown: set runner.helper_image", runnerImage)
	}
	if arch == "" {
		return "", fmt.Errorf("the engine's architecture is unknown")
	}
	return fmt.Sprintf("%s:%s-v%s", HelperRegistryName, helperArch(arch), v), nil
}

// remoteHelperImage is the helper_image of a profile on another Docker Engine. That engine may
// be another architecture than the NAS's, and the runner, when config.toml names no helper,
// picks <registry>:<arch>-v<version> from the architecture of the engine it drives
// (gitlab-runner v19.2.2 executors/docker/docker.go prepareHelperImage passes e.info, the
// connected engine's Info, to helperimage.Get). So the default helper, which forgebox resolved
// for the NAS's engine, is left out; an image named in runner.helper_image (a mirror) is kept.
func remoteHelperImage(cfg config.Config) string {
	ref := cfg.Runner.HelperImage
	v, ok := RunnerVersion(cfg.Runner.Image)
	if !ok {
		return ref
	}
	arch, found := strings.CutPrefix(ref, HelperRegistryName+":")
	if arch, found = strings.CutSuffix(arch, "-v"+v); found && arch != "" && !strings.Contains(arch, "-") {
		return ""
	}
	return ref
}

// resolveHelperImage is runner.helper_image, or the runner's default helper for the engine's
// arch. When neither is known it is "", with the reason: config.toml then names no helper and
// the runner picks (and pulls) one itself at job time.
func resolveHelperImage(cfg config.Config, arch string) (string, msg.Msg) {
	if cfg.Runner.HelperImage != "" {
		return cfg.Runner.HelperImage, msg.New("helper.configured")
	}
	ref, err := DefaultHelperImage(cfg.Runner.Image, arch)
	if err != nil {
		return "", msg.New("helper.unknown", "error", msg.Raw(err.Error()))
	}
	v, _ := RunnerVersion(cfg.Runner.Image)
	return ref, msg.New("helper.matching", "version", v, "arch", arch)
}

// engineArch asks the engine for its architecture once per Stack: the runner's helper image and
// the GitLab flavour depend on what the engine runs, not on what forgebox was built for.
func (s *Stack) engineArch(ctx context.Context) (string, error) {
	s.archMu.Lock()
	defer s.archMu.Unlock()
	if s.arch != "" {
		return s.arch, nil
	}
	info, err := s.eng.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("ask the engine for its architecture: %w", err)
	}
	s.arch = config.NormalizeArch(info.Arch)
	return s.arch, nil
}

// checkFlavourArch refuses a GitLab flavour whose image cannot run on the engine: sameersbn on
// arm64. A local image is judged by its own platform.
func (s *Stack) checkFlavourArch(ctx context.Context) error {
	arch, err := s.engineArch(ctx)
	if err != nil {
		return err
	}
	imageArch, err := s.eng.ImageArch(ctx, s.cfg.GitLab.Image)
	if err != nil {
		return err
	}
	return config.CheckFlavourArch(s.cfg.GitLab.Flavour, s.cfg.GitLab.Image, arch, imageArch)
}

// planHelper pulls the runner's helper image in the runner's stage, before the runner starts,
// as stack.pull_policy says for every image.
func planHelper(acts []Action, d Desired, o Observed, pullPolicy string, pulled map[string]bool) []Action {
	ref := d.HelperImage
	if ref == "" || pulled[ref] {
		return acts
	}
	code := ""
	switch {
	case pullPolicy == "always":
		code = "plan.helper.always"
	case o.Images[ref] == "" && pullPolicy != "never":
		code = "plan.helper.missing"
	default:
		return acts
	}
	pulled[ref] = true
	return append(acts, newAction(ActPull, "runner", ref, msg.New(code, "image", ref, "source", d.HelperWhy)))
}

// helperAvailable refuses an up that would leave the runner without its helper image: with
// pull_policy "never" forgebox may not pull it, and the runner would try to at every job.
func helperAvailable(d Desired, o Observed, pullPolicy string) error {
	if d.HelperImage == "" || o.Images[d.HelperImage] != "" || pullPolicy != "never" {
		return nil
	}
	return fmt.Errorf("the runner's helper image %s (%s) is not on this engine and stack.pull_policy is \"never\": load it (docker load -i FILE), or set runner.helper_image to a helper image the engine has; the runner needs it for every job", d.HelperImage, d.HelperWhy)
}
