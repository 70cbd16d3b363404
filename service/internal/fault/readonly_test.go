package fault_test

import (
	"strings"
	"syscall"
	"testing"

	"github.com/forgebox/forgebox/service/internal/testenv"
)

// TestReadOnlyDataDir makes the data dir of a running stack read-only the way a failing volume
// does (a read-only mount, not a chmod, which root would ignore): `up` must fail before it
// changes anything, with an error that names the directory and says what to do; `status` still
// works; and once the file system is writable again, `up` converges with nothing lost.
func TestReadOnlyDataDir(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	eng := testenv.Engine(t)
	s := newStack(t, testenv.Config(t, eng, testenv.TestImages(t)))
	s.must("up")
	before := s.noteBaseline()

	dir := s.cfg.Stack.DataDir
	if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("bind %s onto itself: %v", dir, err)
	}
	mounted := true
	unmount := func() {
		if mounted {
			if err := syscall.Unmount(dir, 0); err != nil {
				syscall.Unmount(dir, syscall.MNT_DETACH)
			}
			mounted = false
		}
	}
	t.Cleanup(unmount)
	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount %s read-only: %v", dir, err)
	}

	// A pending change, so `up` has something it would do.
	s.cfg.Runner.Concurrent++
	s.save()
	out, err := s.forgebox("up")
	if err == nil {
		t.Fatalf("up succeeded on a read-only data dir:\n%s", out)
	}
	for _, want := range []string{dir, "read-only file system", "check the volume's health", "stack.data_dir"} {
		if !strings.Contains(out, want) {
			t.Errorf("the error does not say %q:\n%s", want, out)
		}
	}
	t.Logf("up on a read-only data dir: %s", strings.TrimSpace(out))
	if rows := s.status(); len(rows) != len(components) {
		t.Errorf("status on a read-only data dir: %+v", rows)
	}
	s.assertSameContainers(before)
	s.assertSameFiles(before.files)

	unmount()
	s.assertRecovered(before, "the data dir became writable")
}
