package dsm

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/dsm/front"
)

// Files of the package's own in its var dir, beside the config.
const (
	StartedMarkerName = front.StartedMarkerName // written by start, removed by stop; status answers from it
	StatusLogName     = "status.log"            // the recent status answers, for `forgebox dsm report`
	statusLogLines    = 50
)

// StatusLog is the path of the recent status answers.
func (e Env) StatusLog() string { return filepath.Join(e.VarDir, StatusLogName) }

// recordStatus appends one answer to the status log, keeping the last lines: how often DSM
// polls, and whether the controller answered meanwhile, are facts only a NAS can tell. A
// failure to write is ignored, because status must answer whatever happens.
func (e Env) recordStatus(code int, health string) {
	path := e.StatusLog()
	old, _ := os.ReadFile(path)
	lines := bytes.SplitAfter(old, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) >= statusLogLines {
		lines = lines[len(lines)-statusLogLines+1:]
	}
	line := fmt.Sprintf("%s status=%d controller=%s\n", time.Now().UTC().Format(time.RFC3339), code, health)
	out := append(bytes.Join(lines, nil), line...)
	config.WriteFileAtomic(path, out, 0o644)
}
