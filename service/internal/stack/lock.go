package stack

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
)

// LockFile is the lock's file name in the data dir.
const LockFile = "forgebox.lock"

// BusyError says another operation holds the stack, and which one.
type BusyError struct {
	Holder LockHolder
}

func (e *BusyError) Error() string {
	h := e.Holder
	if h.Op == "" {
		return "the stack is busy: another forgebox operation is changing it; wait for it to finish"
	}
	return fmt.Sprintf("the stack is busy: %q (pid %d) has been changing it since %s; wait for it to finish",
		h.Op, h.PID, h.Since.Format(time.TimeOnly))
}

// LockHolder is written into the lock file so a refused caller can say who holds it.
type LockHolder struct {
	Op    string    `json:"op"`
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
}

// Lock is held while one operation changes the stack. It is an flock(2) on a file in the data
// dir, so the CLI and the controller exclude each other, and a killed process releases it.
type Lock struct {
	f       *os.File
	dataDir string
}

// sweepLeftovers removes what a killed operation's atomic writes left in the data dir and the
// runner's dir (their targets are intact). It runs as the lock is taken and again as it is
// released: a file left by a kill just before is too young to be judged at the first sweep.
func sweepLeftovers(dataDir string) {
	for _, dir := range []string{dataDir, filepath.Join(dataDir, "runner")} {
		config.RemoveAtomicLeftovers(dir)
	}
}

// TryLock takes the stack lock for op without waiting; when another holds it, it returns a
// *BusyError naming the holder.
func TryLock(dataDir, op string) (*Lock, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dataDir, err)
	}
	path := filepath.Join(dataDir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			var h LockHolder
			if b, rerr := os.ReadFile(path); rerr == nil {
				_ = json.Unmarshal(b, &h) // best effort: an empty holder still says "busy"
			}
			return nil, &BusyError{Holder: h}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	b, _ := json.Marshal(LockHolder{Op: op, PID: os.Getpid(), Since: time.Now()})
	// The holder note is informative only; a full disk must not stop a "down".
	if err := f.Truncate(0); err == nil {
		f.WriteAt(b, 0)
	}
	sweepLeftovers(dataDir)
	return &Lock{f: f, dataDir: dataDir}, nil
}

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	sweepLeftovers(l.dataDir)
	l.f.Truncate(0)
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
	l.f = nil
	return err
}
