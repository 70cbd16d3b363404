package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/api"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/testenv"
)

// A request that reaches a just-started controller before its first engine connection has an
// outcome waits for it, instead of being told the engine is unreachable: the fault suite's serve
// trials (seed 123393385106675) got "not reachable" for an up asked right after /healthz.
func TestRequestWaitsForTheFirstEngineConnection(t *testing.T) {
	testenv.Engine(t)
	gate := make(chan struct{})
	h := newHarness(t, harnessOptions{connect: func(ctx context.Context) (api.Engine, error) {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return engine.Connect(ctx)
	}})
	answered := make(chan int, 1)
	go func() {
		res, _ := h.do(h.bearer("GET", "/api/v1/components/postgres/logs", nil), nil)
		answered <- res.StatusCode
	}()
	select {
	case code := <-answered:
		t.Fatalf("the request answered %d before the first connection attempt ended", code)
	case <-time.After(300 * time.Millisecond): // the request is held: it has not answered yet
	}
	close(gate)
	if code := <-answered; code == http.StatusServiceUnavailable {
		t.Fatalf("the request got 503 (engine unreachable) though the first connection succeeded")
	}
}
