package advice

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestAdviceAppearsOnce: a storage cause wrapped by several layers gets its advice exactly
// once at the edge, and an error with no known cause gets none.
func TestAdviceAppearsOnce(t *testing.T) {
	bottom := &os.PathError{Op: "write", Path: "/volume1/forgebox/secrets.json", Err: syscall.ENOSPC}
	middle := fmt.Errorf("store secret gitlab_admin_token: %w", bottom)
	top := fmt.Errorf("admin-token gitlab: %w", fmt.Errorf("provision: %w", middle))
	for name, tc := range map[string]struct {
		err  error
		want string
	}{
		"disk full":         {top, "free space there"},
		"postgres full":     {fmt.Errorf("provision: %w", &pgconn.PgError{Code: "53100", Message: "could not extend file"}), "free space there"},
		"read-only":         {fmt.Errorf("write config.toml: %w", &os.PathError{Op: "open", Path: "/x", Err: syscall.EROFS}), "Storage Manager"},
		"permission":        {fmt.Errorf("create data directory: %w", &os.PathError{Op: "mkdir", Path: "/x", Err: syscall.EACCES}), "run forgebox as root"},
		"no known cause":    {fmt.Errorf("pull postgres: %w", errors.New("manifest unknown")), ""},
		"nil":               {nil, ""},
		"already explained": {errors.New(Explain(top)), ""}, // a string that says it once is not told again
	} {
		got := Explain(tc.err)
		n := 0
		if tc.want != "" {
			n = strings.Count(got, tc.want)
		}
		switch {
		case tc.want != "" && n != 1:
			t.Errorf("%s: %q has the advice %d times, want once", name, got, n)
		case tc.want == "" && tc.err != nil && got != tc.err.Error():
			t.Errorf("%s: %q got advice it should not have", name, got)
		}
	}
}
