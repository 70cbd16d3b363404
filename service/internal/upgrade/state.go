package upgrade

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/pgupgrade"
	"github.com/forgebox/forgebox/service/internal/stack"
)

// StateFile is the upgrade's progress in the data dir, while one is in progress.
const StateFile = stack.UpgradeStateFile

// Steps of a hop, in order; State.Step is the last one finished.
const (
	StepReady      = "ready"      // the stack is up and the previous migrations are done
	StepPulled     = "pulled"     // the hop's images are on the engine
	StepBackedUp   = "backed-up"  // the pre-upgrade backup is written
	StepPostgres   = "postgres"   // PostgreSQL runs the major this hop needs
	StepSwitched   = "switched"   // the config names the hop's images
	StepConverged  = "converged"  // the hop's GitLab is ready and reports its version
	StepMigrations = "migrations" // its batched background migrations are done: next hop
)

// State is the upgrade in progress, written atomically after every step.
type State struct {
	Format    int              `json:"format"`
	Target    string           `json:"target"`
	From      string           `json:"from"`
	StartedAt time.Time        `json:"started_at"`
	UpdatedAt time.Time        `json:"updated_at"`
	Hops      []Hop            `json:"hops"`
	Current   int              `json:"current"` // index of the hop in progress
	Step      string           `json:"step"`    // last step of it that finished; "" none
	Backups   []string         `json:"backups"`
	Postgres  *pgupgrade.State `json:"postgres,omitempty"`  // a PostgreSQL upgrade in progress
	KeptDirs  []string         `json:"kept_dirs,omitempty"` // old PostgreSQL data directories, for the user to remove
}

func statePath(dataDir string) string { return filepath.Join(dataDir, StateFile) }

// LoadState reads the upgrade in progress; nil when there is none.
func LoadState(dataDir string) (*State, error) {
	b, err := os.ReadFile(statePath(dataDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the upgrade state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("the upgrade state %s is damaged (%v): the upgrade cannot resume safely; see which GitLab runs (forgebox upgrade plan after moving the file away) and decide", statePath(dataDir), err)
	}
	if s.Format != 1 || len(s.Hops) == 0 || s.Current < 0 || s.Current > len(s.Hops) {
		return nil, fmt.Errorf("the upgrade state %s is not one this forgebox understands", statePath(dataDir))
	}
	return &s, nil
}

func saveState(dataDir string, s *State) error {
	s.UpdatedAt = time.Now().UTC().Truncate(time.Second)
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := config.WriteFileAtomic(statePath(dataDir), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save the upgrade state: %w", err)
	}
	return nil
}

func removeState(dataDir string) error {
	err := os.Remove(statePath(dataDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
