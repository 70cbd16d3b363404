package stack

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/events"
)

// TestPlanStepsHaveCodesAndIDs: every action of a plan from nothing carries a message code
// whose English is the action's text (so the CLI's words come from the code), and its plan and
// step events carry the same ID, the status and the code with its arguments.
func TestPlanStepsHaveCodesAndIDs(t *testing.T) {
	d := desiredForTest(t)
	plan := MakePlan(d, Observed{Images: map[string]string{}}, "missing")
	if len(plan.Actions) < 8 {
		t.Fatalf("a plan from nothing has %d actions", len(plan.Actions))
	}
	for i, a := range plan.Actions {
		if a.Why.Code == "" {
			t.Errorf("action %d (%s) has no code", i, a)
			continue
		}
		if got := a.Msg().String(); got != a.String() {
			t.Errorf("action %d: the code renders %q, the action says %q", i, got, a.String())
		}
		e := events.Event{Kind: events.KindStep, ID: stepID(i), Status: events.Working}.With(a.Msg())
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]any
		json.Unmarshal(b, &back)
		if back["id"] != stepID(i) || back["status"] != "working" || back["code"] != "step" || back["message"] != a.String() {
			t.Errorf("action %d's event: %s", i, b)
		}
		args, _ := back["args"].(map[string]any)
		why, _ := args["why"].(map[string]any)
		if why["code"] != a.Why.Code {
			t.Errorf("action %d's event does not carry its reason's code: %s", i, b)
		}
	}
}

// TestPullLayerStatus: a layer's status comes from the engine's words, and every word the
// engine's pull stream uses has a code of its own.
func TestPullLayerStatus(t *testing.T) {
	for word, want := range map[string]events.Status{
		"Pulling fs layer": events.Working, "Downloading": events.Working, "Extracting": events.Working,
		"Pull complete": events.Done, "Already exists": events.Done, "Download complete": events.Done,
	} {
		if got := pullStatus(word); got != want {
			t.Errorf("%q: status %s, want %s", word, got, want)
		}
		if m := pullMsg(word); m.Code == "pull.layer.other" || !strings.EqualFold(m.String(), word) {
			t.Errorf("%q: code %s renders %q", word, m.Code, m.String())
		}
	}
	if m := pullMsg("pull failed (EOF); trying again in 2s"); m.Code != "pull.layer.other" || !strings.Contains(m.String(), "EOF") {
		t.Errorf("an unknown status: %+v", m)
	}
}
