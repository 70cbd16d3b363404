package fault_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/testenv"
)

// diskSize is the tmpfs the data dir lives on. PostgreSQL 17's initdb and one WAL segment take
// about 42 MiB, so a 16 MiB disk could never hold a stack at all; this one holds it with room to
// spare until the test fills it.
const diskSize = "128m"

// TestDiskFull runs the stack on a small tmpfs as its data dir and fills it:
//
//   - a first `up` on the full disk fails with "disk is full", naming the file it could not
//     write, and leaves no half-written file; after space is freed, `up` converges;
//   - with the stack running, the disk fills again and a config change needs a write (the
//     runner's config.toml): `up` fails the same clear way, the old file stays as it was, status
//     still answers; after space is freed, `up` carries out the change, and no row, secret or
//     container was lost.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	eng := testenv.Engine(t)
	cfg := testenv.Config(t, eng, testenv.TestImages(t))
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+diskSize+",mode=0755"); err != nil {
		t.Fatalf("mount a %s tmpfs on %s: %v", diskSize, dir, err)
	}
	// Cleanups run last-registered first: the containers (testenv) must be gone before the
	// file system under them is unmounted, so register the unmount first.
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	cfg.Stack.DataDir = dir
	s := newStack(t, cfg)
	t.Cleanup(func() { testenv.RemoveStack(t, eng, cfg.Stack.Name, cfg.NetworkName()) })

	filler := filepath.Join(dir, "filler") // what fills the disk: not forgebox's
	fill := func() {
		t.Helper()
		f, err := os.OpenFile(filler, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		buf := make([]byte, 1<<20)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
		}
		var st syscall.Statfs_t
		syscall.Statfs(dir, &st)
		if st.Bavail != 0 {
			t.Fatalf("the disk is not full: %d blocks free", st.Bavail)
		}
	}
	free := func() {
		t.Helper()
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("cold up on a full disk", func(t *testing.T) {
		s.t = t
		fill()
		out, err := s.forgebox("up")
		if err == nil {
			t.Fatalf("up succeeded on a full disk:\n%s", out)
		}
		for _, want := range []string{"no space left on device", "the disk is full", dir} {
			if !strings.Contains(out, want) {
				t.Errorf("the error does not say %q:\n%s", want, out)
			}
		}
		t.Logf("up on a full disk: %s", lastLine(out))
		// The secret store is all or nothing: absent, or whole and valid.
		if b, err := os.ReadFile(filepath.Join(dir, config.SecretsFile)); err == nil {
			var m map[string]string
			if err := json.Unmarshal(b, &m); err != nil {
				t.Errorf("a half-written secret store: %v", err)
			}
		}
		s.assertNoTempFiles()
		free()
		s.must("up")
		s.assertConverged()
	})
	if t.Failed() {
		return
	}

	t.Run("full disk under a running stack", func(t *testing.T) {
		s.t = t
		before := s.noteBaseline()
		fill()
		s.cfg.Runner.Concurrent++ // only the runner's config.toml changes
		s.save()
		out, err := s.forgebox("up")
		if err == nil {
			t.Fatalf("up succeeded on a full disk:\n%s", out)
		}
		// The full disk is met where the first write lands: the runner's config.toml, or
		// PostgreSQL's own data dir when observing it needs a write (SQLSTATE 53100).
		for _, want := range []string{"no space left on device", "the disk is full"} {
			if !strings.Contains(strings.ToLower(out), want) {
				t.Errorf("the error does not say %q:\n%s", want, out)
			}
		}
		if !strings.Contains(out, filepath.Join(dir, "runner")) && !strings.Contains(out, "SQLSTATE 53100") {
			t.Errorf("the error names neither the runner's directory nor PostgreSQL's full disk:\n%s", out)
		}
		t.Logf("up on a full disk: %s", lastLine(out))
		s.assertSameFiles(before.files)
		if rows := s.status(); len(rows) != len(components) {
			t.Errorf("status on a full disk: %+v", rows)
		}
		free()
		s.assertRecovered(before, "space was freed")
		sec, _ := os.ReadFile(filepath.Join(dir, config.SecretsFile))
		if string(sec) != string(before.files[filepath.Join(dir, config.SecretsFile)]) {
			t.Error("the secret store changed")
		}
	})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
