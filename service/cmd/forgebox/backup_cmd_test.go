package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// backup list and restore's refusals need no engine: the backup directory, names, and a
// confirmation that cannot be asked without a terminal.
func TestBackupCommandsWithoutEngine(t *testing.T) {
	dir := t.TempDir()
	backups := filepath.Join(dir, "backups")
	cfg := writeFile(t, fmt.Sprintf("version = 1\n[stack]\ndata_dir = %q\n[backup]\ndir = %q\n", dir, backups))

	code, out, _ := runCLI(t, "--config", cfg, "backup", "list")
	if code != 0 || !strings.Contains(out, "no backups in "+backups) {
		t.Fatalf("empty list: %d %q", code, out)
	}
	code, out, _ = runCLI(t, "--config", cfg, "backup", "list", "--json")
	var page struct {
		Dir     string            `json:"dir"`
		Backups []json.RawMessage `json:"backups"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &page) != nil || page.Dir != backups || page.Backups == nil || len(page.Backups) != 0 {
		t.Fatalf("empty list as JSON: %d %q", code, out)
	}
	os.MkdirAll(backups, 0o700)
	os.WriteFile(filepath.Join(backups, "fb-junk.tar.gz"), []byte("not a backup"), 0o600)
	code, out, _ = runCLI(t, "--config", cfg, "backup", "list")
	if code != 0 || !strings.Contains(out, "fb-junk") || !strings.Contains(out, "unreadable") {
		t.Errorf("list with an unreadable file: %d %q", code, out)
	}

	code, _, errOut := runCLI(t, "--config", cfg, "backup", "restore", "fb-missing")
	if code != 1 || !strings.Contains(errOut, `no backup "fb-missing"`) {
		t.Errorf("restore of a missing backup: %d %q", code, errOut)
	}
	code, _, errOut = runCLI(t, "--config", cfg, "backup", "restore", "fb-junk")
	if code != 1 || !strings.Contains(errOut, "not a forgebox backup") {
		t.Errorf("restore of junk: %d %q", code, errOut)
	}
	code, _, errOut = runCLI(t, "--config", cfg, "backup", "restore")
	if code != 1 || !strings.Contains(errOut, "Usage:") {
		t.Errorf("restore without a name: %d %q", code, errOut)
	}
	code, _, errOut = runCLI(t, "--config", cfg, "backup", "frobnicate")
	if code != 1 || !strings.Contains(errOut, `unknown backup command "frobnicate"`) {
		t.Errorf("unknown subcommand: %d %q", code, errOut)
	}
	code, _, errOut = runCLI(t, "--config", cfg, "upgrade", "apply", "extra")
	if code != 1 || !strings.Contains(errOut, "unexpected arguments extra") {
		t.Errorf("upgrade with an extra argument: %d %q", code, errOut)
	}
	code, out, _ = runCLI(t, "upgrade", "help")
	if code != 0 || !strings.Contains(out, "forgebox upgrade apply") {
		t.Errorf("upgrade help: %d %q", code, out)
	}
}
