package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/api"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/testenv"
)

// TestDownCancelsARunningUp: stopping the stack (the DSM package's stop) while an up is still
// bringing it up cancels that up instead of answering busy, and the stack ends down.
func TestDownCancelsARunningUp(t *testing.T) {
	h := newHarness(t, harnessOptions{engine: true})
	h.waitEngine()
	up := h.startOp("/api/v1/up")
	// Well into the converge: GitLab's turn has come. The stand-in boots for 3 s
	// (FORGEBOX_STANDIN_BOOT_DELAY's default) before it is ready, so the up is still running.
	deadline := time.Now().Add(4 * time.Minute)
	for reached := false; !reached; {
		var page api.EventsPage
		h.do(h.bearer("GET", "/api/v1/events?after=0&limit=2000", nil), &page)
		for _, e := range page.Events {
			reached = reached || (e.Kind == events.KindStep && e.Component == "gitlab")
			if !reached && (e.Kind == events.KindError || e.Kind == events.KindDone) && e.Op == "up" {
				t.Fatalf("the up ended before it came to GitLab: %s", e.Message)
			}
		}
		if !reached && time.Now().After(deadline) {
			t.Fatal("the up did not come to GitLab within 4 minutes")
		}
		if !reached {
			time.Sleep(50 * time.Millisecond)
		}
	}

	var out struct {
		Operation struct {
			ID string `json:"id"`
			Op string `json:"op"`
		} `json:"operation"`
	}
	res, body := h.do(h.bearer("POST", "/api/v1/down", nil), &out)
	expectStatus(t, res, body, http.StatusAccepted)
	if out.Operation.Op != "down" {
		t.Fatalf("accepted %+v", out.Operation)
	}

	upFinal := h.waitOperation(up.ID, time.Minute)
	if upFinal.State == "succeeded" {
		testenv.Cannot(t, "the up finished before the down came; nothing was left to cancel")
	}
	if !strings.Contains(upFinal.Error, "context canceled") {
		t.Errorf("up ended %s: %s, want it canceled", upFinal.State, upFinal.Error)
	}
	down := h.waitOperation(out.Operation.ID, 3*time.Minute)
	if down.State != "succeeded" {
		t.Fatalf("down: %s: %s", down.State, down.Error)
	}
	list, err := h.eng.ListContainers(context.Background(), h.cfg.Stack.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if c.Component != "" {
			t.Errorf("container %s (%s) is still there after the down", c.Name, c.State)
		}
	}
}
