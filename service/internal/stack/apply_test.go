package stack

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/engine"
)

// TestApplyTakesTheObservedStateAndEarlierResults: apply acts on the snapshot it is given and on
// what its earlier steps made, and on nothing a previous converge left behind (issue 16 item 3).
func TestApplyTakesTheObservedStateAndEarlierResults(t *testing.T) {
	ctx := context.Background()
	f, stack := fakeStack(t)
	s := stack(nil)
	upRedis(t, s) // a converge ran on this Stack: an executor reading state it kept would find redis
	first := f.byName(redisName).id
	d, err := s.desiredNow(ctx, s.secrets)
	if err != nil {
		t.Fatal(err)
	}
	wait := Action{Kind: ActWait, Component: "redis"}
	inspected := func(from int) []string {
		f.mu.Lock()
		defer f.mu.Unlock()
		var out []string
		for _, c := range f.calls[from:] {
			if id, ok := strings.CutPrefix(c, "inspect "); ok {
				out = append(out, id)
			}
		}
		return out
	}

	// The wait finds the container in the snapshot passed in.
	n := len(f.calls)
	observed := Observed{Containers: map[string]engine.Detail{"redis": {Container: engine.Container{ID: first, Name: redisName}}}}
	if err := s.apply(ctx, d, observed, Plan{Actions: []Action{wait}}); err != nil {
		t.Fatalf("wait on the observed redis: %v", err)
	}
	if got := inspected(n); !slices.Equal(got, []string{first}) {
		t.Errorf("the wait inspected %v, want the observed %s", got, first)
	}

	// With an empty snapshot there is nothing to wait for, whatever the Stack saw before.
	if err := s.apply(ctx, d, Observed{}, Plan{Actions: []Action{wait}}); err == nil || !strings.Contains(err.Error(), "no redis container") {
		t.Errorf("wait with nothing observed: %v, want no redis container", err)
	}

	// A recreate's new container is what the next step waits on, not the observed one.
	n = len(f.calls)
	recreate := Action{Kind: ActRecreate, Component: "redis", Target: first, Reason: "test"}
	if err := s.apply(ctx, d, observed, Plan{Actions: []Action{recreate, wait}}); err != nil {
		t.Fatalf("recreate then wait: %v", err)
	}
	second := f.byName(redisName).id
	if second == first {
		t.Fatalf("redis is still %s after the recreate", first)
	}
	if got := inspected(n); len(got) == 0 || got[len(got)-1] != second || slices.Contains(got, first) {
		t.Errorf("after the recreate the wait inspected %v, want the new %s (not the removed %s)", got, second, first)
	}
}
