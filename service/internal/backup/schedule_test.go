package backup

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/msg"
	"github.com/forgebox/forgebox/service/internal/stack"
)

func TestNextRun(t *testing.T) {
	loc := time.FixedZone("NAS", 8*3600)
	at := func(s string) time.Time { v, _ := time.ParseInLocation("2006-01-02 15:04", s, loc); return v }
	for _, c := range []struct{ sched, now, want string }{
		{"03:30", "2026-08-29 01:00", "2026-08-29 03:30"},
		{"03:30", "2026-08-29 03:30", "2026-08-30 03:30"},
		{"03:30", "2026-08-29 23:59", "2026-08-30 03:30"},
		{"00:00", "2026-12-31 12:00", "2027-01-01 00:00"},
	} {
		got, ok := NextRun(c.sched, at(c.now))
		if !ok || !got.Equal(at(c.want)) {
			t.Errorf("NextRun(%s, %s) = %v, want %s", c.sched, c.now, got, c.want)
		}
	}
	if _, ok := NextRun("", time.Now()); ok {
		t.Error("no schedule gave a run")
	}
}

func TestSchedulerRunsDailyRetriesWhenBusyAndFollowsTheConfig(t *testing.T) {
	cfg := config.Default()
	cfg.Backup.Schedule = "03:30"
	day := time.Date(2026, 8, 29, 0, 0, 0, 0, time.Local)
	var runs []time.Time
	var result error
	var notes []string
	now := day.Add(time.Hour)
	s := &Scheduler{
		Config:     func() config.Config { return cfg },
		Run:        func(context.Context) error { runs = append(runs, now); return result },
		Note:       func(m msg.Msg) { notes = append(notes, m.String()) },
		RetryEvery: 5 * time.Minute, RetryFor: 30 * time.Minute,
	}
	step := func(to time.Time) {
		for ; now.Before(to); now = now.Add(time.Minute) {
			s.Tick(context.Background(), now)
		}
	}
	step(day.Add(3*time.Hour + 29*time.Minute))
	if len(runs) != 0 {
		t.Fatalf("ran before 03:30: %v", runs)
	}
	step(day.Add(3*time.Hour + 40*time.Minute))
	if len(runs) != 1 || !runs[0].Equal(day.Add(3*time.Hour+30*time.Minute)) {
		t.Fatalf("runs %v, want one at 03:30", runs)
	}
	if next := s.Next(); !next.Equal(day.AddDate(0, 0, 1).Add(3*time.Hour + 30*time.Minute)) {
		t.Errorf("next %v", next)
	}
	// The next day the stack is busy (an upgrade holds the lock): retried every 5 minutes for
	// 30 minutes, then given up with a note.
	result = &stack.BusyError{Holder: stack.LockHolder{Op: "upgrade"}}
	runs = nil
	step(day.AddDate(0, 0, 1).Add(5 * time.Hour))
	if len(runs) != 7 || len(notes) != 1 || !strings.Contains(notes[0], "busy") {
		t.Errorf("busy day: %d tries, notes %v", len(runs), notes)
	}
	// A failure is noted and not retried.
	result, runs, notes = errors.New("GitLab must be up"), nil, nil
	step(day.AddDate(0, 0, 2).Add(5 * time.Hour))
	if len(runs) != 1 || len(notes) != 1 || !strings.Contains(notes[0], "GitLab must be up") {
		t.Errorf("failing day: %d tries, notes %v", len(runs), notes)
	}
	// No schedule, no runs; a new time counts from now.
	result, runs = nil, nil
	cfg.Backup.Schedule = ""
	step(day.AddDate(0, 0, 3).Add(6 * time.Hour))
	cfg.Backup.Schedule = "07:00"
	step(day.AddDate(0, 0, 3).Add(8 * time.Hour))
	if len(runs) != 1 || runs[0].Hour() != 7 {
		t.Errorf("after the schedule changed: %v", runs)
	}
}
