package config

import (
	"path/filepath"
	"testing"
)

// SyncDir says when it could not sync (the download caller returns that error).
func TestSyncDir(t *testing.T) {
	dir := t.TempDir()
	if err := SyncDir(dir); err != nil {
		t.Fatalf("SyncDir(%s): %v", dir, err)
	}
	if err := SyncDir(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("SyncDir on a missing directory returned nil")
	}
}
