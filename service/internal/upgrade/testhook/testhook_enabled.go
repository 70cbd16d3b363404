//go:build forgebox_testhooks

// Package testhook marks the points where the crash tests kill forgebox in the middle of an
// upgrade. Only a binary built with -tags forgebox_testhooks acts on them; in every other build
// After does nothing.
package testhook

import (
	"fmt"
	"os"
	"syscall"
)

// After kills the process with SIGKILL, no cleanup of any kind, when FORGEBOX_TEST_KILL_AFTER
// names the step that just finished.
func After(point string) {
	if os.Getenv("FORGEBOX_TEST_KILL_AFTER") == point {
		fmt.Fprintf(os.Stderr, "testhook: SIGKILL after %s\n", point)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}
