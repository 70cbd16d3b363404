// Package advice says what to do about an error, once, at the edge: the CLI's last line and the
// API's error responses add it; the layers below only wrap with "<context>: %w". The causes it
// knows are the bottom layers' own typed errors (errno values from the file system, PostgreSQL's
// SQLSTATE), so a cause wrapped any number of times still gets its advice exactly once.
package advice

import (
	"errors"
	"os"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/forgebox/forgebox/service/internal/msg"
)

// For is the advice for err's cause, when forgebox knows what to do about it.
func For(err error) (msg.Msg, bool) {
	switch {
	case err == nil:
		return msg.Msg{}, false
	case errors.Is(err, syscall.ENOSPC) || pgDiskFull(err):
		return msg.New("advice.diskFull"), true
	case errors.Is(err, syscall.EROFS):
		return msg.New("advice.readOnly"), true
	case errors.Is(err, os.ErrPermission):
		return msg.New("advice.permission"), true
	}
	return msg.Msg{}, false
}

// Explain is err's text with its advice, if any, added once in English.
func Explain(err error) string {
	if err == nil {
		return ""
	}
	if m, ok := For(err); ok {
		return err.Error() + " (" + m.String() + ")"
	}
	return err.Error()
}

// pgDiskFull is PostgreSQL's own report of a full disk (SQLSTATE 53100, disk_full), which
// reaches forgebox as a server error rather than as ENOSPC.
func pgDiskFull(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "53100"
}
