package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/compose"
	"github.com/forgebox/forgebox/service/internal/config"
)

// TestExportCompose runs `forgebox export compose` on a stack that never ran: it generates the
// secrets `up` would, writes them to .env only, and refuses to overwrite without --force.
func TestExportCompose(t *testing.T) {
	data := t.TempDir()
	cfgPath := writeFile(t, "version = 1\n[stack]\nname = \"fbexport\"\ndata_dir = \""+data+"\"\n[gitlab]\nhost = \"nas.example\"\n")
	out := filepath.Join(t.TempDir(), "compose")
	args := []string{"--config", cfgPath, "export", "compose", "--output", out, "--subnet", "10.77.3.9/24"}

	code, stdout, stderr := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	store, err := config.OpenSecrets(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(store.Names()) < 5 {
		t.Fatalf("the export did not generate the stack's secrets: %v", store.Names())
	}
	yml, _ := os.ReadFile(filepath.Join(out, compose.ComposeFile))
	env, _ := os.ReadFile(filepath.Join(out, compose.EnvFile))
	for _, name := range store.Names() {
		v, _ := store.Get(name)
		if strings.Contains(stdout+stderr, v) || strings.Contains(string(yml), v) {
			t.Errorf("secret %s was printed or written into compose.yaml", name)
		}
	}
	pw, _ := store.Get(config.SecretPostgresSuperuser)
	if !strings.Contains(string(env), "FORGEBOX_POSTGRES_SUPERUSER_PASSWORD="+pw+"\n") {
		t.Errorf(".env lacks the superuser password from the store:\n%s", env)
	}
	if fi, err := os.Stat(filepath.Join(out, compose.EnvFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf(".env: %v %v", fi.Mode(), err)
	}
	for _, want := range []string{"subnet: 10.77.3.0/24", "GITLAB_MONITORING_IP_WHITELIST: 10.77.3.0/24", "name: fbexport-internal", "name: fbexport-jobs", "GITLAB_HOST: nas.example"} {
		if !strings.Contains(string(yml), want) {
			t.Errorf("compose.yaml lacks %q", want)
		}
	}
	if !strings.Contains(stdout, "docker compose --project-directory "+out+" up -d --wait") {
		t.Errorf("stdout does not say how to start it:\n%s", stdout)
	}

	code, _, stderr = runCLI(t, args...)
	if code != 1 || !strings.Contains(stderr, "--force") {
		t.Fatalf("second export without --force: exit %d\n%s", code, stderr)
	}
	if again, _ := os.ReadFile(filepath.Join(out, compose.EnvFile)); string(again) != string(env) {
		t.Error("a refused export changed .env")
	}
	if code, _, stderr = runCLI(t, append(args, "--force")...); code != 0 {
		t.Fatalf("--force: exit %d\n%s", code, stderr)
	}
	// Same store, same secrets: Compose and a later `forgebox up` agree.
	if again, _ := os.ReadFile(filepath.Join(out, compose.EnvFile)); string(again) != string(env) {
		t.Error("a second export changed the secrets")
	}

	if code, _, stderr = runCLI(t, "--config", cfgPath, "export", "helm"); code != 1 || !strings.Contains(stderr, "export compose") {
		t.Errorf("unknown format: exit %d %s", code, stderr)
	}
	if code, _, stderr = runCLI(t, "--config", cfgPath, "export", "compose", "--subnet", "nonsense", "--output", t.TempDir()); code != 1 || !strings.Contains(stderr, "--subnet") {
		t.Errorf("bad subnet: exit %d %s", code, stderr)
	}
}
