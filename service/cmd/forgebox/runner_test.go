package main

import (
	"encoding/json"
	"fmt"
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

// TestExportSecrets writes the sameersbn stack's Rails secrets for Omnibus and for the GitLab
// chart: every value is the store's, under the other flavour's key, in a 0600 file, never printed.
func TestExportSecrets(t *testing.T) {
	data := t.TempDir()
	cfgPath := writeFile(t, "version = 1\n[stack]\nname = \"fbsec\"\ndata_dir = \""+data+"\"\n[gitlab]\nflavour = \"sameersbn\"\nhost = \"nas.example\"\n")
	store, err := config.OpenSecrets(data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, n := range []string{"gitlab_secrets_secret_key_base", "gitlab_secrets_db_key_base", "gitlab_secrets_otp_key_base",
		"gitlab_secrets_encrypted_settings_key_base", "gitlab_secrets_ar_primary_key", "gitlab_secrets_ar_deterministic_key", "gitlab_secrets_ar_key_derivation_salt"} {
		v, err := store.Ensure(n)
		if err != nil {
			t.Fatal(err)
		}
		want[n] = v
	}
	dir := t.TempDir()
	omni := filepath.Join(dir, "gitlab-secrets.json")
	code, stdout, stderr := runCLI(t, "--config", cfgPath, "export", "secrets", "--format", "omnibus", "--output", omni)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	var got struct {
		Rails map[string]any `json:"gitlab_rails"`
	}
	b, _ := os.ReadFile(omni)
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Rails["db_key_base"] != want["gitlab_secrets_db_key_base"] || got.Rails["otp_key_base"] != want["gitlab_secrets_otp_key_base"] ||
		fmt.Sprint(got.Rails["active_record_encryption_primary_key"]) != "["+want["gitlab_secrets_ar_primary_key"]+"]" || len(got.Rails) != 7 {
		t.Errorf("gitlab-secrets.json: %v", got.Rails)
	}
	helm := filepath.Join(dir, "rails-secret.yaml")
	code, stdout2, stderr2 := runCLI(t, "--config", cfgPath, "export", "secrets", "--format", "helm", "--release", "gl", "--output", helm)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout2, stderr2)
	}
	hb, _ := os.ReadFile(helm)
	for _, s := range []string{"name: gl-rails-secret", "kind: Secret", "secrets.yml: |", "production:", "secret_key_base: " + want["gitlab_secrets_secret_key_base"]} {
		if !strings.Contains(string(hb), s) {
			t.Errorf("rails-secret.yaml lacks %q:\n%s", s, hb)
		}
	}
	for _, p := range []string{omni, helm} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", p, fi, err)
		}
	}
	for _, v := range want {
		if strings.Contains(stdout+stderr+stdout2+stderr2, v) {
			t.Error("a secret was printed")
		}
	}
	if code, _, stderr := runCLI(t, "--config", cfgPath, "export", "secrets", "--format", "rpm", "--output", filepath.Join(dir, "x")); code == 0 || !strings.Contains(stderr, "use omnibus") {
		t.Errorf("--format rpm: exit %d %s", code, stderr)
	}
}
