package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// tempInfix marks WriteFileAtomic's temporary files: ".<name>.tmp-<pid>-<random>". The pid lets
// RemoveAtomicLeftovers tell a killed writer's file from one still being written.
const tempInfix = ".tmp-"

// WriteFileAtomic writes data to path so that readers see the old content or the new, never a
// mix: a temporary file in the same directory, fsynced, renamed over path, and the directory
// fsynced so the rename survives a power cut. On error the old file is left as it was.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+tempInfix+strconv.Itoa(os.Getpid())+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	SyncDir(dir) // best effort: the rename is done, and some file systems refuse a directory sync
	return nil
}

// SyncDir flushes dir's entries (a rename or link into it) to disk, so the new name survives a
// power cut. It is the one copy: atomic writes, backups, the PostgreSQL upgrade and downloads.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// leftoverAge is how old a dead writer's temporary file must be before it is removed: a
// safety margin for a writer in another pid namespace (the controller's container and the
// host's CLI share the data dir), whose pid means nothing here; a write takes milliseconds.
const leftoverAge = 2 * time.Second

// RemoveAtomicLeftovers removes the temporary files that WriteFileAtomic left in dir when its
// process was killed mid-write (the target itself is intact: the rename never happened). It
// keeps files of live writers and young files, and returns the names it removed.
func RemoveAtomicLeftovers(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		name := e.Name()
		i := strings.LastIndex(name, tempInfix)
		if !strings.HasPrefix(name, ".") || i < 0 || !e.Type().IsRegular() {
			continue
		}
		pidText, _, ok := strings.Cut(name[i+len(tempInfix):], "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		if info, err := e.Info(); err != nil || time.Since(info.ModTime()) < leftoverAge {
			continue
		}
		if os.Remove(filepath.Join(dir, name)) == nil {
			removed = append(removed, name)
		}
	}
	return removed
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
