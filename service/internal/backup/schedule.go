package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/msg"
	"github.com/forgebox/forgebox/service/internal/stack"
)

// NextRun is the first time after now at the schedule's time of day ("HH:MM") in now's location;
// ok is false when no schedule is set.
func NextRun(schedule string, now time.Time) (time.Time, bool) {
	if schedule == "" {
		return time.Time{}, false
	}
	var h, m int
	if _, err := fmt.Sscanf(schedule, "%d:%d", &h, &m); err != nil {
		return time.Time{}, false
	}
	next := time.Date(now.Year(), now.Month(), now.Day(), h, m, 0, 0, now.Location())
	if !next.After(now) {
		next = time.Date(now.Year(), now.Month(), now.Day()+1, h, m, 0, 0, now.Location())
	}
	return next, true
}

// Scheduler takes the daily backup the config asks for. The controller runs it; the backup
// itself is an operation like any other (it takes the stack lock). When the stack is busy at the
// time (an upgrade, the CLI) it tries again every RetryEvery for up to RetryFor; a stack whose
// GitLab is not up is skipped until the next day, with a note in the activity feed.
type Scheduler struct {
	Config     func() config.Config
	Run        func(ctx context.Context) error // takes one scheduled backup
	Note       func(msg.Msg)                   // tells the activity feed
	Log        *slog.Logger
	RetryEvery time.Duration // default 5 minutes
	RetryFor   time.Duration // default 2 hours

	mu       sync.Mutex
	schedule string
	next     time.Time // the run due; zero when none is scheduled
	due      time.Time // when the current run first became due
	retryAt  time.Time
}

// Next is when the next scheduled backup is due; zero when none is.
func (s *Scheduler) Next() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.retryAt.IsZero() {
		return s.retryAt
	}
	return s.next
}

// Loop looks at the clock every tick until ctx ends.
func (s *Scheduler) Loop(ctx context.Context, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		s.Tick(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick runs the backup when one is due at now. A changed schedule counts from now.
func (s *Scheduler) Tick(ctx context.Context, now time.Time) {
	if s.RetryEvery == 0 {
		s.RetryEvery = 5 * time.Minute
	}
	if s.RetryFor == 0 {
		s.RetryFor = 2 * time.Hour
	}
	sched := s.Config().Backup.Schedule
	s.mu.Lock()
	if sched != s.schedule || (s.next.IsZero() && sched != "") {
		s.schedule = sched
		s.next, _ = NextRun(sched, now)
		s.retryAt, s.due = time.Time{}, time.Time{}
	}
	run := !s.next.IsZero() && !now.Before(s.next) && (s.retryAt.IsZero() || !now.Before(s.retryAt))
	if run && s.due.IsZero() {
		s.due = now
	}
	s.mu.Unlock()
	if !run {
		return
	}
	err := s.Run(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	var busy *stack.BusyError
	var inUpgrade *stack.UpgradeInProgressError
	switch {
	case err == nil:
	case errors.As(err, &busy) || errors.As(err, &inUpgrade) || errors.Is(err, ErrOperationRunning):
		if now.Sub(s.due) < s.RetryFor {
			s.retryAt = now.Add(s.RetryEvery)
			s.log().Info("scheduled backup postponed: the stack is busy", "retry_at", s.retryAt, "err", err)
			return
		}
		s.note(msg.New("schedule.busy", "due", s.due.Format(time.DateTime), "for", s.RetryFor.String(), "error", msg.Raw(err.Error())))
	default:
		s.note(msg.New("schedule.failed", "error", msg.Raw(err.Error())))
	}
	s.next, _ = NextRun(sched, now)
	s.retryAt, s.due = time.Time{}, time.Time{}
}

// ErrOperationRunning is what a Run returns when another operation of the controller runs.
var ErrOperationRunning = errors.New("another operation is running")

func (s *Scheduler) note(m msg.Msg) {
	s.log().Warn(m.String())
	if s.Note != nil {
		s.Note(m)
	}
}

func (s *Scheduler) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}
