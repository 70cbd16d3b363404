package stack

import (
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/gitlab"
)

// TestComponentCheckVerdicts: a passing check is healthy; a failing one is starting while the
// container is young and unhealthy after; the runner check wants every registered runner
// online in GitLab's list (issue 16 item 6).
func TestComponentCheckVerdicts(t *testing.T) {
	young := engine.Detail{StartedAt: time.Now().Add(-10 * time.Second)}
	old := engine.Detail{StartedAt: time.Now().Add(-time.Hour)}
	for _, tc := range []struct {
		ok   bool
		det  engine.Detail
		want string
	}{{true, old, "healthy"}, {false, young, "starting"}, {false, old, "unhealthy"}, {false, engine.Detail{}, "unhealthy"}} {
		if got := checkVerdict(tc.ok, tc.det, time.Minute); got != tc.want {
			t.Errorf("checkVerdict(%v, started %v) = %q, want %q", tc.ok, tc.det.StartedAt, got, tc.want)
		}
	}
	records := map[string]RunnerRecord{"default": {ID: 1}, "dind": {ID: 2}}
	if !runnersOnline(records, []gitlab.RunnerInfo{{ID: 1, Status: "online"}, {ID: 2, Status: "online"}, {ID: 9, Status: "offline"}}) {
		t.Error("every registered runner online: not healthy")
	}
	if runnersOnline(records, []gitlab.RunnerInfo{{ID: 1, Status: "online"}, {ID: 2, Status: "never_contacted"}}) {
		t.Error("a runner that never contacted GitLab counts as online")
	}
	if runnersOnline(records, []gitlab.RunnerInfo{{ID: 1, Status: "online"}}) {
		t.Error("a runner GitLab does not list counts as online")
	}
}
