package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/config"
)

// TestRunnerExportHelm writes the chart's values for a kubernetes profile: the file is 0600 and
// carries the registered runner's token, which is never printed; a docker profile is refused.
func TestRunnerExportHelm(t *testing.T) {
	data := t.TempDir()
	cfgPath := writeFile(t, `version = 1
[stack]
name = "fbhelm"
data_dir = "`+data+`"
[gitlab]
host = "nas.example"
[runner]
concurrent = 2
[[runner.profiles]]
name = "default"
image = "alpine:3.22"
run_untagged = true
[[runner.profiles]]
name = "k8s"
image = "golang:1.26"
tags = ["k8s"]
executor = "kubernetes"
[runner.profiles.kubernetes]
host = "https://k8s.example:6443"
ca_file = "/etc/k8s/ca.pem"
token_file = "/etc/k8s/token"
namespace = "gitlab-ci"
cpu_limit = "2"
memory_limit = "4Gi"
`)
	store, err := config.OpenSecrets(data)
	if err != nil {
		t.Fatal(err)
	}
	const token = "glrt-k8s-registered-token"
	if err := store.Set("runner/k8s", `{"id":7,"token":"`+token+`","description":"fbhelm-k8s","tags":["k8s"]}`); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "values.yaml")
	code, stdout, stderr := runCLI(t, "--config", cfgPath, "runner", "export-helm", "k8s", "--output", out)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, token) {
		t.Error("the runner token was printed")
	}
	b, _ := os.ReadFile(out)
	for _, want := range []string{"gitlabUrl: http://nas.example:30080", "runnerToken: " + token, "namespace = \"gitlab-ci\"", "memory_limit = \"4Gi\""} {
		if !strings.Contains(string(b), want) {
			t.Errorf("values lack %q:\n%s", want, b)
		}
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("values file mode: %v %v", fi, err)
	}
	if code, _, stderr := runCLI(t, "--config", cfgPath, "runner", "export-helm", "default", "--output", out+"2"); code == 0 || !strings.Contains(stderr, "runs on Docker") {
		t.Errorf("export-helm of a docker profile: exit %d %s", code, stderr)
	}
}
