package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/testenv"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "forgebox.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "forgebox ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestConfigValidateNamesKeyAndLine(t *testing.T) {
	p := writeFile(t, "version = 1\n[gitlab]\nhttp_port = 443\nsssh_port = 2222\n")
	code, out, errOut := runCLI(t, "config", "validate", p)
	if code != 1 {
		t.Fatalf("exit %d, want 1; out %q", code, out)
	}
	for _, want := range []string{"gitlab.sssh_port (line 4): unknown key", "allowed in [gitlab]"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	p = writeFile(t, "version = 1\n[gitlab]\nhttp_port = 443\n")
	_, _, errOut = runCLI(t, "config", "validate", p)
	if !strings.Contains(errOut, "gitlab.http_port (line 3): port 443 is taken by DSM") {
		t.Errorf("stderr:\n%s", errOut)
	}
	p = writeFile(t, "version = 1\n")
	if code, out, _ := runCLI(t, "config", "validate", p); code != 0 || !strings.Contains(out, "valid") {
		t.Errorf("valid file: exit %d %q", code, out)
	}
}

func TestExplicitMissingConfigIsAnError(t *testing.T) {
	code, _, errOut := runCLI(t, "--config", filepath.Join(t.TempDir(), "nope.toml"), "config", "show")
	if code != 1 || !strings.Contains(errOut, "no such file") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

func TestConfigShowNeverPrintsSecrets(t *testing.T) {
	dir := t.TempDir()
	sec, err := config.OpenSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	value, _ := sec.Ensure(config.SecretPostgresSuperuser)
	p := writeFile(t, "version = 1\n[stack]\ndata_dir = \""+dir+"\"\n")
	code, out, _ := runCLI(t, "--config", p, "config", "show")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if strings.Contains(out, value) {
		t.Fatal("config show printed a secret value")
	}
	if !strings.Contains(out, config.SecretPostgresSuperuser+" = ********") {
		t.Errorf("config show does not list the secret's name:\n%s", out)
	}
}

func TestUnknownCommand(t *testing.T) {
	if code, _, errOut := runCLI(t, "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

func TestDoctorWithoutEngine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	p := writeFile(t, "version = 1\n[stack]\ndata_dir = \""+t.TempDir()+"\"\n")
	code, out, _ := runCLI(t, "--config", p, "doctor", "--json")
	if code != 1 {
		t.Errorf("doctor with no engine exited %d, want 1", code)
	}
	var checks []struct{ Name, Status, Detail, Fix string }
	if err := json.Unmarshal([]byte(out), &checks); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, out)
	}
	byName := map[string]string{}
	for _, c := range checks {
		byName[c.Name] = c.Status
	}
	if byName["engine"] != "fail" || byName["disk"] == "" || byName["memory"] == "" {
		t.Errorf("checks %v", byName)
	}
}

// TestStatusJSONOnRealEngine brings a stack up through the CLI and checks that status --json
// describes it and holds no secret value.
func TestStatusJSONOnRealEngine(t *testing.T) {
	eng := testenv.Engine(t)
	cfg := testenv.Config(t, eng, testenv.TestImages(t))
	src, err := config.Encode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := writeFile(t, string(src))
	if code, out, errOut := runCLI(t, "--config", p, "up"); code != 0 {
		t.Fatalf("up: exit %d\n%s\n%s", code, out, errOut)
	} else if !strings.Contains(out, "provision postgres") || !strings.Contains(out, "stack is up") {
		t.Errorf("up output lacks plan steps:\n%s", out)
	}
	code, out, errOut := runCLI(t, "--config", p, "status", "--json")
	if code != 0 {
		t.Fatalf("status: %d %s", code, errOut)
	}
	var rows []struct {
		Component, State, Health string
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || rows[0].Component != "postgres" || rows[0].State != "running" || rows[0].Health != "healthy" {
		t.Errorf("status rows %+v", rows)
	}
	values := testenv.SecretLeaves(t, cfg.Stack.DataDir)
	if !slices.ContainsFunc(values, func(v string) bool { return strings.HasPrefix(v, "glrt-") }) {
		t.Fatal("after a whole-stack up no runner token is among the values searched for")
	}
	for _, v := range values {
		if strings.Contains(out, v) {
			t.Errorf("status --json holds a secret value %s…", v[:5])
		}
	}
	if code, out, _ := runCLI(t, "--config", p, "up"); code != 0 || !strings.Contains(out, "nothing to do") {
		t.Errorf("second up: exit %d\n%s", code, out)
	}
	if code, _, errOut := runCLI(t, "--config", p, "down"); code != 0 {
		t.Errorf("down: %s", errOut)
	}
}

// config validate accepts a privileged profile but prints what it means, with key and line;
// the defaults print no warning.
func TestConfigValidateWarnsAboutPrivilegedProfiles(t *testing.T) {
	def, err := config.Encode(config.Default())
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "config", "validate", writeFile(t, string(def)))
	if code != 0 || strings.Contains(out, "warning") {
		t.Fatalf("defaults: exit %d\n%s%s", code, out, errOut)
	}
	src := strings.Replace(string(def), "privileged = false", "privileged = true", 1)
	code, out, errOut = runCLI(t, "config", "validate", writeFile(t, src))
	if code != 0 || !strings.Contains(out, "valid") ||
		!strings.Contains(out, "warning: runner.profiles[0].privileged (line ") || !strings.Contains(out, "the whole NAS") {
		t.Errorf("privileged profile: exit %d\n%s%s", code, out, errOut)
	}
}
