package api

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestInternalErrorAdviceOnce: a storage cause wrapped through the layers reaches the API's
// error response with its advice said once, as a code too, and the layers below add none.
func TestInternalErrorAdviceOnce(t *testing.T) {
	cause := &os.PathError{Op: "write", Path: "/volume1/forgebox/runner/config.toml", Err: syscall.ENOSPC}
	err := fmt.Errorf("runners gitlab: %w", fmt.Errorf("write runner config: %w", cause))
	if strings.Contains(err.Error(), "free space there") {
		t.Fatalf("the middle layers already give advice: %q", err)
	}
	e := classify(err)
	if n := strings.Count(e.detail.Message, "free space there"); n != 1 {
		t.Errorf("the response says the advice %d times: %q", n, e.detail.Message)
	}
	if e.detail.Advice.Code != "advice.diskFull" {
		t.Errorf("advice code %q", e.detail.Advice.Code)
	}
	if e := classify(fmt.Errorf("pull: %w", os.ErrDeadlineExceeded)); e.detail.Advice.Code != "" || strings.Contains(e.detail.Message, "(") {
		t.Errorf("advice for a cause forgebox knows nothing about: %+v", e.detail)
	}
}
