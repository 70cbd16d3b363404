package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/events"
)

// blockingObserve is an observe that waits for release (or its context) and counts its calls;
// a cancelled refresh answers what a real one would: the context's error.
type blockingObserve struct {
	calls   atomic.Int32
	started chan context.Context
	release chan struct{}
}

func newBlockingObserve() *blockingObserve {
	return &blockingObserve{started: make(chan context.Context, 10), release: make(chan struct{})}
}

func (b *blockingObserve) observe(ctx context.Context) *snapshot {
	b.calls.Add(1)
	b.started <- ctx
	select {
	case <-b.release:
		return &snapshot{at: time.Now(), engine: EngineView{OK: true}, stackOK: true}
	case <-ctx.Done():
		return &snapshot{at: time.Now(), engine: EngineView{Error: ctx.Err().Error()}}
	}
}

// waitWaiters waits until n callers wait on the refresh under way.
func waitWaiters(t *testing.T, m *monitor, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		m.mu.Lock()
		got := 0
		if m.flight != nil {
			got = m.flight.waiters
		}
		m.mu.Unlock()
		if got == n {
			return
		}
		runtime.Gosched()
	}
	t.Fatalf("never saw %d waiters on the refresh", n)
}

// blockedMonitor is a monitor whose observe blocks until the test releases it.
func blockedMonitor() (*monitor, *blockingObserve) {
	m := newMonitor(nil)
	b := newBlockingObserve()
	m.observeFn = b.observe
	return m, b
}

// getAsync asks for the status in the background, as a browser poll does.
func getAsync(ctx context.Context, m *monitor) <-chan *snapshot {
	got := make(chan *snapshot, 1)
	go func() { got <- m.get(ctx, false) }()
	return got
}

// One caller that gives up does not end the refresh the others wait for, and nobody gets, or
// later reads from the cache, a "context canceled" snapshot.
func TestStatusRefreshOutlivesACancelledWaiter(t *testing.T) {
	m, b := blockedMonitor()

	aCtx, aCancel := context.WithCancel(context.Background())
	aGot := getAsync(aCtx, m)
	refreshCtx := <-b.started // A started the refresh
	bGot := getAsync(context.Background(), m)
	waitWaiters(t, m, 2)

	aCancel() // the first browser poll is aborted
	<-aGot
	if refreshCtx.Err() != nil {
		t.Fatalf("the shared refresh was cancelled with one waiter left: %v", refreshCtx.Err())
	}
	close(b.release)
	if s := <-bGot; !s.engine.OK || s.engine.Error != "" {
		t.Fatalf("the waiter that stayed got %+v, want the real snapshot", s.engine)
	}
	if s := m.get(context.Background(), false); !s.engine.OK || s.engine.Error != "" {
		t.Fatalf("the next caller got the cached %+v, want the real snapshot", s.engine)
	}
	if n := b.calls.Load(); n != 1 {
		t.Fatalf("observe ran %d times, want 1 (the next caller reads the cache)", n)
	}
}

// When every waiter has gone, the refresh is cancelled, its answer is not cached, and the next
// caller starts a new one instead of joining the cancelled one.
func TestStatusRefreshEndsWhenEveryWaiterHasGone(t *testing.T) {
	m, b := blockedMonitor()

	ctx, cancel := context.WithCancel(context.Background())
	got := getAsync(ctx, m)
	refreshCtx := <-b.started
	waitWaiters(t, m, 1)
	cancel()
	<-got
	<-refreshCtx.Done() // it ends: nobody wants it

	next := getAsync(context.Background(), m)
	second := <-b.started
	if second.Err() != nil {
		t.Fatal("the next caller joined the cancelled refresh")
	}
	close(b.release)
	if s := <-next; !s.engine.OK || s.engine.Error != "" {
		t.Fatalf("the next caller got %+v, want the real snapshot", s.engine)
	}
}

// waitIdle timing out leaves no goroutine behind waiting for the operation, and hands back the
// operation still running (never nil, which Stop would dereference).
func TestWaitIdleTimeoutLeavesNoGoroutine(t *testing.T) {
	o := newOperations()
	if _, other := o.begin(Operation{Op: "up"}); other != nil {
		t.Fatal("slot busy")
	}
	before := runtime.NumGoroutine()
	for range 20 {
		op := o.waitIdle(time.Millisecond)
		if op == nil || op.Op != "up" {
			t.Fatalf("waitIdle timed out with %+v, want the running up", op)
		}
	}
	// A leaked waiter blocks until the operation ends, so it would still be counted here.
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("%d goroutines before 20 timed-out waits, %d after", before, after)
	}
	o.finish(nil)
	if op := o.waitIdle(time.Hour); op != nil {
		t.Fatalf("idle, but waitIdle returned %+v", op)
	}
}

// waitIdle returns as soon as the operation ends.
func TestWaitIdleReturnsWhenTheOperationEnds(t *testing.T) {
	o := newOperations()
	o.begin(Operation{Op: "up"})
	res := make(chan *Operation, 1)
	go func() { res <- o.waitIdle(time.Hour) }()
	o.finish(nil)
	if op := <-res; op != nil {
		t.Fatalf("waitIdle returned %+v after the operation ended", op)
	}
}

// The ops record's FirstEvent is the cursor just before the operation's first event, even while
// engine events are emitted at the same time.
func TestFirstEventUnderConcurrentEmits(t *testing.T) {
	f := &feed{Feed: events.NewFeed(100000)}
	o := newOperations()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					f.Emit(events.Event{Kind: events.KindInfo, Message: "engine event"})
				}
			}
		}()
	}
	for i := range 200 {
		op, other := o.begin(Operation{Op: "up"})
		if other != nil {
			t.Fatal("slot busy")
		}
		msg := fmt.Sprintf("up started (operation %s)", op.ID)
		o.started(f, &op, events.Event{Kind: events.KindStep, Message: msg})
		rec := o.running()
		evs, _, _ := f.Since(rec.FirstEvent, 1)
		if len(evs) != 1 || evs[0].Message != msg || op.FirstEvent != rec.FirstEvent {
			t.Fatalf("round %d: FirstEvent %d (answer %d); the event after it is %+v, want %q", i, rec.FirstEvent, op.FirstEvent, evs, msg)
		}
		o.finish(nil)
	}
	close(stop)
	wg.Wait()
}

// With the fallback on, a handler's gin.Context ends when the request's context does (the client
// went away), so the engine and GitLab calls it makes stop too.
func TestHandlerContextEndsWithTheRequest(t *testing.T) {
	cfg := config.Default()
	cfg.Stack.DataDir = t.TempDir()
	s, err := New(Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	r := s.router
	ended := make(chan bool, 1)
	r.GET("/test/ctx", func(c *gin.Context) {
		select {
		case <-c.Done():
			ended <- true
		default:
			ended <- false
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/test/ctx", nil)
	r.ServeHTTP(httptest.NewRecorder(), req)
	if !<-ended {
		t.Fatal("the handler's context did not end with the request's")
	}
}
