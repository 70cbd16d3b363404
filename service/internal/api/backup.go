package api

// Backups, restores and upgrades over the API. Each change is an operation like up or down: 202
// with the operation, its progress in the activity feed, 409 busy while another runs (here or
// from the CLI). The controller also takes the scheduled backups (backup.schedule).

import (
	"context"
	"errors"
	"fmt"
	"github.com/forgebox/forgebox/service/internal/msg"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/forgebox/forgebox/service/internal/backup"
	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/stack"
	"github.com/forgebox/forgebox/service/internal/upgrade"
	"github.com/forgebox/forgebox/service/internal/upgradepath"
)

// backupState is the server's part for backups: the scheduler.
type backupState struct {
	once  sync.Once
	sched atomic.Pointer[backup.Scheduler]
}

// longOps may run longer than opTimeout: GitLab's backup of a big instance, its restore, and an
// upgrade that walks several stops and waits for background migrations take hours on a NAS.
var longOps = map[string]time.Duration{
	"backup":             8 * time.Hour,
	"backup (scheduled)": 8 * time.Hour,
	"restore":            8 * time.Hour,
	"upgrade":            72 * time.Hour,
	"bundle load":        4 * time.Hour, // bundles.go: a few GiB verified and loaded on a slow NAS disk
}

// opTimeoutFor is how long an operation may run.
func opTimeoutFor(op string) time.Duration {
	if d, ok := longOps[op]; ok {
		return d
	}
	return opTimeout
}

func (s *Server) backupRoutes(v1 *gin.RouterGroup) {
	v1.GET("/backups", s.getBackups)
	v1.POST("/backups", s.postBackup)
	v1.POST("/backups/:name/restore", s.postRestore)
	v1.GET("/upgrade", s.getUpgrade)
	v1.POST("/upgrade", s.postUpgrade)
}

// BackupsPage is GET api/v1/backups.
type BackupsPage struct {
	Dir      string         `json:"dir"`
	Schedule string         `json:"schedule"` // "HH:MM", "" when none
	Keep     int            `json:"keep"`
	Next     *time.Time     `json:"next_scheduled,omitempty"`
	Backups  []backup.Entry `json:"backups"`
}

func (s *Server) getBackups(c *gin.Context) {
	cfg := s.config()
	list, err := backup.List(cfg.BackupDir())
	if err != nil {
		fail(c, err)
		return
	}
	page := BackupsPage{Dir: cfg.BackupDir(), Schedule: cfg.Backup.Schedule, Keep: cfg.Backup.Keep, Backups: list}
	if sch := s.backups.sched.Load(); sch != nil {
		if n := sch.Next(); !n.IsZero() {
			page.Next = &n
		}
	} else if n, ok := backup.NextRun(cfg.Backup.Schedule, time.Now()); ok {
		page.Next = &n
	}
	c.JSON(http.StatusOK, page)
}

func (s *Server) postBackup(c *gin.Context) {
	s.startOperation(c, "backup", "", func(ctx context.Context, st *stack.Stack) error {
		return s.takeBackup(ctx, st, backup.KindManual)
	})
}

func (s *Server) takeBackup(ctx context.Context, st *stack.Stack, kind string) error {
	x, err := st.Begin("backup")
	if err != nil {
		return err
	}
	defer x.End()
	_, err = backup.Create(ctx, x, kind)
	return err
}

// RestoreRequest is POST api/v1/backups/:name/restore: confirm repeats the backup's name.
type RestoreRequest struct {
	Confirm string `json:"confirm"`
}

func (s *Server) postRestore(c *gin.Context) {
	name := c.Param("name")
	var req RestoreRequest
	if err := decodeJSON(c, &req); err != nil {
		fail(c, err)
		return
	}
	cfg := s.config()
	file, err := backup.Resolve(cfg.BackupDir(), name)
	var nf *backup.NotFoundError
	if errors.As(err, &nf) || strings.ContainsRune(name, '/') {
		abort(c, codedError(http.StatusNotFound, CodeNotFound, msg.New("api.noBackup", "name", msg.Q(name), "dir", cfg.BackupDir())))
		return
	}
	if err != nil {
		abort(c, codedError(http.StatusBadRequest, CodeInvalidRequest, msg.New("api.badBackupName", "error", msg.Raw(err.Error()))))
		return
	}
	if req.Confirm != strings.TrimSuffix(name, backup.Extension) {
		abort(c, codedError(http.StatusBadRequest, CodeInvalidRequest, msg.New("api.confirmRestore")))
		return
	}
	m, err := backup.ReadManifest(file)
	if err != nil {
		abort(c, codedError(http.StatusConflict, CodeConflict, msg.New("api.badManifest", "error", msg.Raw(err.Error()))))
		return
	}
	// What can be told without the engine is told now, not as a failed operation.
	// (Another flavour is no refusal: the restore carries GitLab's secrets across.)
	if v, ok := upgradepath.VersionFromImage(cfg.GitLab.Image); ok && v.String() != m.GitLab.Version {
		img := ""
		if bv, err := upgradepath.Parse(m.GitLab.Version); err == nil {
			img, _ = upgradepath.ImageFor(cfg.GitLab.Image, bv)
		}
		abort(c, codedError(http.StatusConflict, CodeConflict, (&backup.VersionMismatchError{Backup: m.GitLab.Version, Running: v.String(), Image: img}).Msg()))
		return
	}
	s.startOperation(c, "restore", "", func(ctx context.Context, st *stack.Stack) error {
		x, err := st.Begin("restore")
		if err != nil {
			return err
		}
		defer x.End()
		_, err = backup.Restore(ctx, x, file, s.saveOpConfig)
		return err
	})
}

// saveOpConfig saves what an operation changed in the config (images, runner profiles) over the
// config as it is now, so an edit made meanwhile through PUT config is not undone.
func (s *Server) saveOpConfig(opCfg config.Config) error {
	s.cfgWrite.Lock()
	defer s.cfgWrite.Unlock()
	path := s.configPath()
	if path == "" {
		return errors.New("the controller was started without a config file path, so it cannot save the config")
	}
	next := stack.WithOperationChanges(s.config(), opCfg)
	if err := config.Save(path, next); err != nil {
		return err
	}
	s.setConfig(next, path)
	s.log.Info("config saved by an operation", "path", path)
	return nil
}

// UpgradePage is GET api/v1/upgrade[?to=VERSION&postgres_image=IMAGE].
type UpgradePage struct {
	Running  string        `json:"running,omitempty"`
	Source   string        `json:"source,omitempty"`
	Latest   string        `json:"latest"`
	UpToDate bool          `json:"up_to_date"`
	Plan     *upgrade.Plan `json:"plan,omitempty"`
	Text     string        `json:"text,omitempty"` // the plan as the CLI prints it
	Problem  string        `json:"problem,omitempty"`
	// ProblemText is Problem's coded part, for the web app's languages (zero when it has none).
	ProblemText msg.Msg  `json:"problem_text,omitzero"`
	Stops       []string `json:"stops"`
}

func (s *Server) getUpgrade(c *gin.Context) {
	tab := upgradepath.LoadFor(s.config().GitLab.Flavour)
	page := UpgradePage{Latest: tab.Latest.String()}
	for _, st := range tab.Stops {
		page.Stops = append(page.Stops, st.String())
	}
	to := c.Query("to")
	if to != "" {
		if _, err := upgradepath.Parse(to); err != nil {
			abort(c, codedError(http.StatusBadRequest, CodeInvalidRequest, msg.New("api.badVersion", "version", msg.Q(to), "error", msg.Raw(err.Error()))))
			return
		}
	}
	eng, err := s.engine()
	if err != nil {
		abort(c, errNoEngine)
		return
	}
	st, err := s.newStack(eng, s.config(), "upgrade plan")
	if err != nil {
		fail(c, err)
		return
	}
	ctx, cancel := context.WithTimeout(c, 30*time.Second)
	defer cancel()
	x := st.View()
	if v, src, err := upgrade.RunningVersion(ctx, x); err == nil {
		page.Running, page.Source = v.String(), src
	}
	p, err := upgrade.PlanFor(ctx, x, to, c.Query("postgres_image"))
	var cur *upgradepath.CurrentError
	switch {
	case errors.As(err, &cur):
		page.UpToDate = true
	case err != nil:
		page.Problem = err.Error()
		var me *msg.Error
		if errors.As(err, &me) {
			page.ProblemText = me.Msg
		}
	default:
		page.Plan, page.Text = &p, p.String()
	}
	c.JSON(http.StatusOK, page)
}

// UpgradeRequest is POST api/v1/upgrade.
type UpgradeRequest struct {
	To            string `json:"to"`             // "" = the newest forgebox knows (or the upgrade in progress)
	PostgresImage string `json:"postgres_image"` // "" = derived from postgres.image
	Confirm       bool   `json:"confirm"`
}

func (s *Server) postUpgrade(c *gin.Context) {
	var req UpgradeRequest
	if err := decodeJSON(c, &req); err != nil {
		fail(c, err)
		return
	}
	if !req.Confirm {
		abort(c, codedError(http.StatusBadRequest, CodeInvalidRequest, msg.New("api.confirmUpgrade")))
		return
	}
	if req.To != "" {
		if _, err := upgradepath.Parse(req.To); err != nil {
			abort(c, codedError(http.StatusBadRequest, CodeInvalidRequest, msg.New("api.badVersion", "version", msg.Q(req.To), "error", msg.Raw(err.Error()))))
			return
		}
	}
	s.startOperation(c, "upgrade", "", func(ctx context.Context, st *stack.Stack) error {
		x, err := st.Begin("upgrade")
		if err != nil {
			return err
		}
		defer x.End()
		_, err = upgrade.Apply(ctx, x, upgrade.Options{To: req.To, PostgresImage: req.PostgresImage, SaveConfig: s.saveOpConfig})
		return err
	})
}

// startBackupSchedule starts the scheduler (once).
func (s *Server) startBackupSchedule() {
	s.backups.once.Do(func() {
		sched := &backup.Scheduler{
			Config: s.config,
			Run:    s.runScheduledBackup,
			Note: func(m msg.Msg) {
				s.feed.Emit(events.Event{Kind: events.KindError, Status: events.Error, Op: "backup (scheduled)"}.With(m))
			},
			Log: s.log,
		}
		s.backups.sched.Store(sched)
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			sched.Loop(s.ctx, 30*time.Second)
		}()
	})
}

// runScheduledBackup runs one scheduled backup as an operation of the controller, and waits for
// it: the scheduler decides from the result whether to try again.
func (s *Server) runScheduledBackup(ctx context.Context) error {
	const op = "backup (scheduled)"
	eng, err := s.engine()
	if err != nil {
		return fmt.Errorf("the Docker Engine is not reachable: %w", err)
	}
	cfg := s.config()
	started, other := s.ops.begin(Operation{Op: op, By: "schedule"})
	if other != nil {
		return fmt.Errorf("%w: %s", backup.ErrOperationRunning, other.Op)
	}
	st, err := s.newStack(eng, cfg, op)
	if err == nil {
		s.ops.started(s.feed, &started, events.Event{Kind: events.KindStep, Status: events.Working, Op: op}.With(msg.New("schedule.started", "id", started.ID, "schedule", cfg.Backup.Schedule)))
		octx, cancel := context.WithTimeout(ctx, opTimeoutFor(op))
		err = s.takeBackup(octx, st, backup.KindScheduled)
		cancel()
	}
	if err != nil {
		s.feed.Emit(events.Event{Kind: events.KindError, Status: events.Error, Op: op}.With(stack.ErrMsg(err)))
	}
	s.ops.finish(err)
	s.mon.invalidate()
	return err
}
