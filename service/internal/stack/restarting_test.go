package stack

import (
	"strings"
	"testing"
)

// A container the engine is restarting (its restart policy, after a crash or an engine restart)
// is waited for, never started a second time: `up` run at that moment must converge, not fail.
func TestPlanWaitsForARestartingContainer(t *testing.T) {
	d := desiredForTest(t)
	o := converged(d)
	pg := o.Containers["postgres"]
	pg.State, pg.Health = "restarting", ""
	o.Containers["postgres"] = pg
	o.Postgres = nil // not asked while it is down
	gl := o.Containers["gitlab"]
	gl.State = "restarting"
	o.Containers["gitlab"] = gl
	o.GitLab = nil // not asked while it is down
	got := MakePlan(d, o, "never").String()
	for _, want := range []string{
		"wait postgres: the engine is restarting it (restart policy)",
		"provision postgres: check GitLab's role, database and extensions once PostgreSQL is up",
		"wait gitlab: the engine is restarting it (restart policy)",
		"admin-token gitlab: make sure forgebox has a working admin token once GitLab is ready",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("plan lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "start postgres") || strings.Contains(got, "start gitlab") {
		t.Errorf("plan starts a container the engine is restarting:\n%s", got)
	}
}
