package stack

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/upgradepath"
)

type memSecrets map[string]string

func (m memSecrets) Ensure(n string) (string, error) { return m[n], nil }
func (m memSecrets) Get(n string) (string, bool)     { v, ok := m[n]; return v, ok }
func (m memSecrets) Names() []string                 { return nil }
func (m memSecrets) Set(n, v string) error           { m[n] = v; return nil }
func (m memSecrets) Delete(n string) error           { delete(m, n); return nil }

// An `up` with a gitlab.image that would skip a stop or downgrade is refused before the engine
// is touched (the engine here is nil: any call would panic).
func TestUpRefusesSkippingAStopOrDowngrading(t *testing.T) {
	for _, c := range []struct {
		flavour, image, data, want string
	}{
		{"sameersbn", "sameersbn/gitlab:19.2.0", "18.2.8", "skip the required upgrade stop(s) 18.5.7, 18.8.11, 18.11.7"},
		{"sameersbn", "sameersbn/gitlab:18.2.8", "18.5.7", "cannot be downgraded"},
		{"omnibus", "gitlab/gitlab-ce:18.8.11-ce.0", "18.2.8-ee", "skip the required upgrade stop(s) 18.5.7"},
	} {
		cfg := config.Default()
		cfg.Stack.DataDir = t.TempDir()
		cfg.GitLab.Flavour, cfg.GitLab.Image = c.flavour, c.image
		p, err := hostPath(cfg, "gitlab", GitLabDataVersionFile(c.flavour))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(c.data+"\n"), 0o644)
		_, err = New(cfg, nil, memSecrets{}, Options{}).Up(context.Background())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s on %s data: %v, want %q", c.image, c.data, err, c.want)
		}
		var skip *upgradepath.SkipError
		var down *upgradepath.DowngradeError
		if !errors.As(err, &skip) && !errors.As(err, &down) {
			t.Errorf("error %T is neither a skip nor a downgrade", err)
		}
	}
}

func TestVersionGuardAllowsHopsAndUnknowns(t *testing.T) {
	cfg := config.Default()
	cfg.Stack.DataDir = t.TempDir()
	st := New(cfg, nil, memSecrets{}, Options{})
	if err := st.checkGitLabVersion(context.Background()); err != nil { // no data yet
		t.Errorf("new data: %v", err)
	}
	p, _ := hostPath(cfg, "gitlab", GitLabDataVersionFile("sameersbn"))
	if want := filepath.Join(cfg.ShareDir(), "gitlab", "data", "tmp", "VERSION"); p != want {
		t.Errorf("sameersbn VERSION on the host: %s, want %s", p, want)
	}
	os.MkdirAll(filepath.Dir(p), 0o755)
	for data, image := range map[string]string{"18.5.1": "sameersbn/gitlab:18.8.11", "18.2.8": "sameersbn/gitlab:18.5.7", "18.5.1\n": "forgebox-test/standin:abc123"} {
		os.WriteFile(p, []byte(data), 0o644)
		st.cfg.GitLab.Image = image
		if err := st.checkGitLabVersion(context.Background()); err != nil {
			t.Errorf("%s on %q: %v", image, data, err)
		}
	}
	os.WriteFile(p, []byte("garbage"), 0o644)
	st.cfg.GitLab.Image = "sameersbn/gitlab:18.8.11"
	if err := st.checkGitLabVersion(context.Background()); err == nil {
		t.Error("an unreadable VERSION file passed")
	}
}

// While an upgrade is half done, only the upgrade's own converges may change the stack: an `up`
// after a crash in the middle of a PostgreSQL switch would otherwise start an empty database.
func TestUpIsRefusedWhileAnUpgradeIsInProgress(t *testing.T) {
	cfg := config.Default()
	cfg.Stack.DataDir = t.TempDir()
	os.WriteFile(filepath.Join(cfg.Stack.DataDir, UpgradeStateFile), []byte("{}"), 0o600)
	st := New(cfg, nil, memSecrets{}, Options{})
	_, err := st.Up(context.Background())
	var busy *UpgradeInProgressError
	if !errors.As(err, &busy) || !strings.Contains(err.Error(), "forgebox upgrade apply") {
		t.Fatalf("up during an upgrade: %v", err)
	}
	if err := st.checkGitLabVersion(withUpgrade(context.Background())); err != nil {
		t.Errorf("the upgrade's own converge: %v", err)
	}
}
