package stack

import (
	"encoding/json"
	"testing"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/runnercfg"
)

// scaleConfig has a profile on another Docker Engine and one on Kubernetes besides the default.
func scaleConfig() config.Config {
	cfg := testConfig()
	cfg.GitLab.Host = "nas.example.lan"
	// What desired.go writes for runner.helper_image = "" on an amd64 NAS: the remote profile
	// leaves it out (helper.go remoteHelperImage).
	cfg.Runner.HelperImage = HelperRegistryName + ":x86_64-v19.2.2"
	cfg.Runner.Profiles = append(cfg.Runner.Profiles, config.Profile{
		Name: "build1", Image: "golang:1.26", Tags: []string{"big"}, CPUs: "8", Memory: "16g", Concurrency: 4,
		DockerHost: "tcp://build1.example.lan:2376", DockerCertDir: "/volume1/forgebox/certs/build1",
	}, config.Profile{
		Name: "k8s", Image: "golang:1.26", Tags: []string{"k8s"}, Concurrency: 8, Executor: "kubernetes",
		Kubernetes: &config.Kubernetes{Host: "https://k8s.example.lan:6443", CAFile: "/volume1/forgebox/k8s/ca.pem",
			TokenFile: "/volume1/forgebox/k8s/token", Namespace: "gitlab-ci",
			CPURequest: "500m", CPULimit: "2", MemoryRequest: "512Mi", MemoryLimit: "4Gi"},
	})
	cfg.Runner.Concurrent = 13
	return cfg
}

func scaleRecords() map[string]RunnerRecord {
	return map[string]RunnerRecord{
		"default": {ID: 1, Token: "glrt-default-token", CreatedAt: recordCreated},
		"build1":  {ID: 2, Token: "glrt-build1-token", CreatedAt: recordCreated},
		"k8s":     {ID: 3, Token: "glrt-k8s-token", CreatedAt: recordCreated},
	}
}

func TestRunnerConfigGoldenRemoteDockerAndKubernetes(t *testing.T) {
	cfg := scaleConfig()
	src, _ := config.Encode(cfg)
	if _, err := config.Parse(src); err != nil {
		t.Fatalf("the test's config is invalid: %v", err)
	}
	got, err := renderRunnerConfigWith(cfg, scaleRecords(), map[string]string{"k8s": "sa-token-of-k8s"})
	if err != nil {
		t.Fatal(err)
	}
	// runnercfg's TestGoldenConfigsKeepToUpstreamSchema checks this file against gitlab-runner's
	// own key names and types.
	golden(t, "runner-config-scale.golden", string(got))
	parsed, err := runnercfg.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]runnercfg.Runner{}
	for _, r := range parsed.Runners {
		byName[r.Name] = r
	}
	remote, k8s := byName[cfg.Stack.Name+"-build1"], byName[cfg.Stack.Name+"-k8s"]
	ext := "http://nas.example.lan:30080"
	if remote.Docker == nil || remote.Docker.Host != "tcp://build1.example.lan:2376" || !remote.Docker.TLSVerify ||
		remote.Docker.NetworkMode != "" || remote.CloneURL != ext || remote.URL != ext {
		t.Errorf("remote docker runner: %+v %+v", remote, remote.Docker)
	}
	if k8s.Docker != nil || k8s.Kubernetes == nil || k8s.Executor != "kubernetes" || k8s.Kubernetes.BearerToken != "sa-token-of-k8s" || k8s.CloneURL != ext {
		t.Errorf("kubernetes runner: %+v %+v", k8s, k8s.Kubernetes)
	}
}

func TestHelmValuesGolden(t *testing.T) {
	cfg := scaleConfig()
	rec, _ := json.Marshal(scaleRecords()["k8s"])
	secrets := fixedStore{runnerSecretName("k8s"): string(rec)}
	got, err := HelmValues(cfg, secrets, "k8s")
	if err != nil {
		t.Fatal(err)
	}
	// runnercfg's TestHelmValuesKeepToTheChart checks this file's keys and its runners.config.
	golden(t, "helm-values.golden", string(got))

	if _, err := HelmValues(cfg, secrets, "build1"); err == nil {
		t.Error("export-helm of a docker profile worked")
	}
	if _, err := HelmValues(cfg, fixedStore{}, "k8s"); err == nil {
		t.Error("export-helm of an unregistered profile worked")
	}
}

type fixedStore map[string]string

func (f fixedStore) Get(n string) (string, bool) { v, ok := f[n]; return v, ok }
