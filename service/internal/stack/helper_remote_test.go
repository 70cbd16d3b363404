package stack

import (
	"testing"

	"github.com/forgebox/forgebox/service/internal/runnercfg"
)

// A profile on another Docker Engine gets no default helper_image, so the runner picks the
// helper of that engine's architecture; a helper named in runner.helper_image (a mirror) and
// the NAS's own profiles keep theirs. (The runner stand-in's TestRemoteProfileHelperFollowsEngineArch
// reads the golden file and shows that an arm64 engine then gets the arm64 helper.)
func TestRemoteProfileHelperImage(t *testing.T) {
	helpers := func(helper string) map[string]string {
		t.Helper()
		cfg := scaleConfig()
		cfg.Runner.HelperImage = helper
		got, err := renderRunnerConfigWith(cfg, scaleRecords(), map[string]string{"k8s": "t"})
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := runnercfg.Parse(got)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, r := range parsed.Runners {
			if r.Docker != nil {
				out[r.Name[len(cfg.Stack.Name)+1:]] = r.Docker.HelperImage
			}
		}
		return out
	}
	for _, tc := range []struct {
		name, helper, nas, remote string
	}{
		{"the default helper for an amd64 NAS", HelperRegistryName + ":x86_64-v19.2.2", HelperRegistryName + ":x86_64-v19.2.2", ""},
		{"the default helper for an arm64 NAS", HelperRegistryName + ":arm64-v19.2.2", HelperRegistryName + ":arm64-v19.2.2", ""},
		{"a mirror", "registry.example.lan/gitlab-runner-helper:x86_64-v19.2.2", "registry.example.lan/gitlab-runner-helper:x86_64-v19.2.2", "registry.example.lan/gitlab-runner-helper:x86_64-v19.2.2"},
		{"another flavour", HelperRegistryName + ":ubuntu-x86_64-v19.2.2", HelperRegistryName + ":ubuntu-x86_64-v19.2.2", HelperRegistryName + ":ubuntu-x86_64-v19.2.2"},
		{"another runner version's", HelperRegistryName + ":x86_64-v18.5.0", HelperRegistryName + ":x86_64-v18.5.0", HelperRegistryName + ":x86_64-v18.5.0"},
	} {
		got := helpers(tc.helper)
		if got["default"] != tc.nas || got["build1"] != tc.remote {
			t.Errorf("%s: NAS profile %q, remote profile %q; want %q, %q", tc.name, got["default"], got["build1"], tc.nas, tc.remote)
		}
	}
}
