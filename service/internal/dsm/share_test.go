package dsm

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/config"
)

func TestUnderVolume(t *testing.T) {
	for _, c := range []struct {
		share, resolved string
		want            bool
	}{
		{"/var/packages/forgebox/shares/forgebox", "/volume1/forgebox", true},
		{"/var/packages/forgebox/shares/forgebox", "/volume12/data/forgebox", true},
		{"/var/packages/forgebox/shares/forgebox", "/var/packages/forgebox/shares/forgebox", false},
		{"/var/packages/forgebox/shares/forgebox", "/volume1", false},
		{"/var/packages/forgebox/shares/forgebox", "/volumeUSB1/usbshare", false},
		{"/var/packages/forgebox/shares/forgebox", "/tmp/volume1/forgebox", false},
		{"/scratch/var/packages/forgebox/shares/forgebox", "/scratch/volume1/forgebox", true},
		{"/scratch/var/packages/forgebox/shares/forgebox", "/volume1/forgebox", false},
	} {
		if got := UnderVolume(c.share, c.resolved); got != c.want {
			t.Errorf("UnderVolume(%s, %s) = %v", c.share, c.resolved, got)
		}
	}
}

// TestStartRefusesShareOffVolume: when the share's path is a directory of its own (what Docker
// makes if it starts the controller before DSM links the shared folder), start refuses, says
// what to do, leaves the package stopped, and never asks the controller for up.
func TestStartRefusesShareOffVolume(t *testing.T) {
	f := newScriptFixture(t)
	ctrl := &fakeOps{secret: "s3cret-s3cret-s3cret", state: map[string]string{}}
	srv := httptest.NewServer(ctrl)
	defer srv.Close()
	f.vars[EnvControllerURL] = srv.URL
	if code, msg := f.run(t, "postinst", nil); code != 0 {
		t.Fatal(msg)
	}
	env := f.env()
	os.WriteFile(filepath.Join(env.DataDir, "front.secret"), []byte(ctrl.secret), 0o640)
	os.Remove(env.ShareDir)
	os.MkdirAll(env.ShareDir, 0o755)
	code, msg := f.run(t, "start", map[string]string{"SYNOPKG_PKG_STATUS": "START"})
	if code == 0 || !strings.Contains(msg, "not on a volume") || !strings.Contains(msg, "sudo rm -rf "+env.ShareDir) {
		t.Errorf("start: %d %q", code, msg)
	}
	if code, _ := f.run(t, "status", nil); code != StatusNotRunning {
		t.Errorf("status after a refused start: %d", code)
	}
	ctrl.mu.Lock()
	if len(ctrl.calls) != 0 {
		t.Errorf("the controller was asked %v", ctrl.calls)
	}
	ctrl.mu.Unlock()
	if _, err := os.Stat(filepath.Join(env.VarDir, ShareRecordName)); err == nil {
		t.Error("a record vouches for the wrong directory")
	}
}

// TestShareCheck is the controller's side: it brings the stack up only with a record, written
// by start, of this config's share under a volume, naming the very directory it sees.
func TestShareCheck(t *testing.T) {
	f := newScriptFixture(t)
	env := f.env()
	cfg := config.Default()
	cfg.Stack.ShareDir = env.ShareDir
	check := ShareCheck{VarDir: env.VarDir}
	if err := check.Check(cfg); err == nil || !strings.Contains(err.Error(), "Package Center") {
		t.Errorf("no record: %v", err)
	}
	rec, err := RecordShare(env)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(rec.Resolved, "/volume1/forgebox") {
		t.Errorf("record %+v", rec)
	}
	if err := check.Check(cfg); err != nil {
		t.Errorf("the good share refused: %v", err)
	}
	other := cfg
	other.Stack.ShareDir = filepath.Join(f.dir, "elsewhere")
	if err := check.Check(other); err == nil || !strings.Contains(err.Error(), "share_dir") {
		t.Errorf("another share_dir: %v", err)
	}
	// The controller sees another directory at that path than start saw.
	os.Remove(env.ShareDir)
	os.MkdirAll(env.ShareDir, 0o755)
	if err := check.Check(cfg); err == nil || !strings.Contains(err.Error(), "not the shared folder") {
		t.Errorf("another directory: %v", err)
	}
	// A record of a path off the volumes (written by hand, or by an older start).
	rec.Resolved = env.ShareDir
	b, _ := json.Marshal(rec)
	os.WriteFile(filepath.Join(env.VarDir, ShareRecordName), b, 0o644)
	if err := check.Check(cfg); err == nil || !strings.Contains(err.Error(), "not on a volume") {
		t.Errorf("a record off the volumes: %v", err)
	}
}
