package config

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// A writer killed mid-write leaves ".<name>.tmp-<pid>-<random>"; the sweep removes it once its
// writer is gone and it is older than leftoverAge, and keeps live writers' and young files.
func TestRemoveAtomicLeftovers(t *testing.T) {
	dir := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := strconv.Itoa(dead.Process.Pid)
	old := time.Now().Add(-time.Minute)
	files := map[string]time.Time{
		".secrets.json.tmp-" + deadPID + "-123":                  old,        // killed writer: removed
		".secrets.json.tmp-" + deadPID + "-456":                  time.Now(), // too young to judge
		".forgebox.toml.tmp-" + strconv.Itoa(os.Getpid()) + "-7": old,        // a live writer's
		".config.toml.tmp-abc":                                   old,        // not ours (no pid)
		"secrets.json":                                           old,
	}
	for name, mtime := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	removed := RemoveAtomicLeftovers(dir)
	if want := []string{".secrets.json.tmp-" + deadPID + "-123"}; !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	for name := range files {
		_, err := os.Stat(filepath.Join(dir, name))
		if gone := os.IsNotExist(err); gone != slices.Contains(removed, name) {
			t.Errorf("%s: gone=%v", name, gone)
		}
	}
}

// A failed atomic write leaves no temporary file, and the sweep never takes a live writer's.
func TestFailedAtomicWriteAndLiveWriterTemps(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "x.json")
	// A directory named like the target makes the rename fail after the temp file was written.
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "keep"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(target, []byte("{}"), 0o600); err == nil {
		t.Fatal("rename over a non-empty directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "x.json" {
			t.Errorf("a failed write left %s", e.Name())
		}
	}
	// A temporary file named as this (live) process would name it.
	f, err := os.CreateTemp(dir, ".x.json"+tempInfix+strconv.Itoa(os.Getpid())+"-*")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	old := time.Now().Add(-time.Minute)
	os.Chtimes(f.Name(), old, old)
	if removed := RemoveAtomicLeftovers(dir); len(removed) != 0 {
		t.Errorf("the sweep removed a live writer's file: %v", removed)
	}
}
