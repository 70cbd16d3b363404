// Package advicetest is the table of causes package advice knows, each wrapped as the layers
// wrap it, with the advice it must get exactly once. The advice package's test and the API
// edge's test walk the same table, so a cause added to one is checked at both.
package advicetest

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// Case is one error as it reaches an edge.
type Case struct {
	Name  string
	Err   error
	Code  string // the advice's code; "" when forgebox knows nothing to say
	Words string // words of the English advice, which must appear once
}

// Cases are the known causes, wrapped by one to three layers, and two it does not know.
func Cases() []Case {
	full := &os.PathError{Op: "write", Path: "/volume1/forgebox/secrets.json", Err: syscall.ENOSPC}
	return []Case{
		{"disk full", fmt.Errorf("admin-token gitlab: %w", fmt.Errorf("provision: %w", fmt.Errorf("store secret gitlab_admin_token: %w", full))), "advice.diskFull", "free space there"},
		{"disk full under the runner", fmt.Errorf("runners gitlab: %w", fmt.Errorf("write runner config: %w", &os.PathError{Op: "write", Path: "/volume1/forgebox/runner/config.toml", Err: syscall.ENOSPC})), "advice.diskFull", "free space there"},
		{"postgres full", fmt.Errorf("provision: %w", &pgconn.PgError{Code: "53100", Message: "could not extend file"}), "advice.diskFull", "free space there"},
		{"read-only", fmt.Errorf("write config.toml: %w", &os.PathError{Op: "open", Path: "/x", Err: syscall.EROFS}), "advice.readOnly", "Storage Manager"},
		{"permission", fmt.Errorf("create data directory: %w", &os.PathError{Op: "mkdir", Path: "/x", Err: syscall.EACCES}), "advice.permission", "run forgebox as root"},
		{"no known cause", fmt.Errorf("pull postgres: %w", errors.New("manifest unknown")), "", ""},
		{"a deadline", fmt.Errorf("pull: %w", os.ErrDeadlineExceeded), "", ""},
	}
}
