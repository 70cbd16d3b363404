package api

import (
	"context"
	"github.com/forgebox/forgebox/service/internal/advice"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/msg"
	"github.com/forgebox/forgebox/service/internal/stack"
)

// Operation is one long-running change (up, down, restart, of the stack or one component),
// started by a request that returned at once. Its progress is in the activity feed, from
// FirstEvent on.
type Operation struct {
	ID         string     `json:"id"`
	Op         string     `json:"op"` // up, down, restart
	Component  string     `json:"component,omitempty"`
	State      string     `json:"state"` // running, succeeded, failed
	Error      string     `json:"error,omitempty"`
	ErrorText  msg.Msg    `json:"error_text,omitzero"` // Error as a message (another layer's words quoted when it has no code)
	Advice     msg.Msg    `json:"advice,omitzero"`     // what to do about Error, when forgebox knows
	By         string     `json:"by,omitempty"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	FirstEvent uint64     `json:"first_event"` // feed cursor just before its first event
}

// opTimeout bounds one operation; a GitLab first boot with migrations fits well inside.
const opTimeout = 90 * time.Minute

// operations lets one operation run at a time in this controller (the stack lock also keeps out
// the CLI) and remembers the recent ones.
type operations struct {
	mu     sync.Mutex
	seq    int
	cur    *Operation
	cancel context.CancelFunc // ends the current operation's context
	recent []Operation        // newest last
	ended  chan struct{}      // closed when the current operation finishes
}

func newOperations() *operations { return &operations{} }

func (o *operations) running() *Operation {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cur == nil {
		return nil
	}
	cp := *o.cur
	return &cp
}

func (o *operations) get(id string) (Operation, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cur != nil && o.cur.ID == id {
		return *o.cur, true
	}
	for _, op := range o.recent {
		if op.ID == id {
			return op, true
		}
	}
	return Operation{}, false
}

func (o *operations) list() []Operation {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := append([]Operation(nil), o.recent...)
	if o.cur != nil {
		out = append(out, *o.cur)
	}
	return out
}

// begin claims the slot, or says which operation holds it.
func (o *operations) begin(op Operation) (Operation, *Operation) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cur != nil {
		cp := *o.cur
		return Operation{}, &cp
	}
	o.seq++
	op.ID = strconv.Itoa(o.seq)
	op.State = "running"
	op.StartedAt = time.Now()
	o.cur = &op
	o.ended = make(chan struct{})
	return op, nil
}

func (o *operations) finish(err error) Operation {
	o.mu.Lock()
	defer o.mu.Unlock()
	op := *o.cur
	now := time.Now()
	op.FinishedAt = &now
	op.State = "succeeded"
	if err != nil {
		op.State, op.Error, op.ErrorText = "failed", err.Error(), stack.ErrMsg(err)
		op.Advice, _ = advice.For(err) // said once, here at the edge
	}
	o.cancel = nil
	o.recent = append(o.recent, op)
	if len(o.recent) > 20 {
		o.recent = o.recent[len(o.recent)-20:]
	}
	o.cur = nil
	close(o.ended)
	return op
}

// cancelForDown cancels the running operation when a stack-wide down may interrupt it: an up or
// a restart, which a later up converges from wherever it stopped (the kill tests show it), so
// stopping the package during GitLab's first boot does not leave GitLab running. Backups,
// restores and upgrades are never interrupted. It reports the operation it cancelled.
func (o *operations) cancelForDown() (Operation, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cur == nil || o.cancel == nil || (o.cur.Op != "up" && o.cur.Op != "restart") {
		return Operation{}, false
	}
	o.cancel()
	return *o.cur, true
}

// waitIdle waits until no operation runs, for up to d. It returns nil when none does, or a copy
// of the one still running at the deadline. It starts no goroutine, so a timeout leaves nothing
// behind waiting for an operation that may run for hours.
func (o *operations) waitIdle(d time.Duration) *Operation {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		o.mu.Lock()
		if o.cur == nil {
			o.mu.Unlock()
			return nil
		}
		ended := o.ended
		o.mu.Unlock()
		select {
		case <-ended: // another may have begun since: look again
		case <-timer.C:
			return o.running()
		}
	}
}

// started emits an operation's first event and records, in the same critical section, the feed
// cursor just before it: emitted concurrently by engine events or not, FirstEvent+1 is the Seq
// of that event, and no reader sees the record without its cursor.
func (o *operations) started(f *feed, op *Operation, e events.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	op.FirstEvent = f.Append(e) - 1
	if o.cur != nil && o.cur.ID == op.ID {
		o.cur.FirstEvent = op.FirstEvent
	}
}

// opFunc runs one operation on a stack built for it.
type opFunc func(ctx context.Context, st *stack.Stack) error

// startOperation answers 202 with the operation, and runs it in the background; 409 busy when
// one runs already, here or from the CLI (the stack lock names the holder).
func (s *Server) startOperation(c *gin.Context, op, component string, run opFunc) {
	if s.opts.Preflight != nil && (op == "up" || op == "restart") {
		if err := s.opts.Preflight(s.config()); err != nil {
			abort(c, codedError(http.StatusPreconditionFailed, CodePrecondition, msg.New("api.preflight", "error", msg.Raw(err.Error()))))
			return
		}
	}
	eng, err := s.engine()
	if err != nil {
		abort(c, errNoEngine)
		return
	}
	cfg := s.config()
	if component != "" {
		if st, err := s.newStack(eng, cfg, op); err == nil {
			if !contains(st.ComponentNames(), component) {
				fail(c, &stack.UnknownComponentError{Name: component, Known: st.ComponentNames()})
				return
			}
		}
	}
	started, other := s.ops.begin(Operation{Op: op, Component: component, By: c.GetString(ctxUser)})
	if other != nil && op == "down" && component == "" {
		if canceled, ok := s.ops.cancelForDown(); ok {
			s.feed.Emit(events.Event{Kind: events.KindInfo, Status: events.Working, Op: "down"}.With(
				msg.New("op.downFirst", "by", c.GetString(ctxUser), "op", opName(canceled.Op, canceled.Component), "id", canceled.ID)))
			if s.ops.waitIdle(2*time.Minute) == nil {
				started, other = s.ops.begin(Operation{Op: op, Component: component, By: c.GetString(ctxUser)})
			}
		}
	}
	if other != nil {
		abort(c, codedError(http.StatusConflict, CodeBusy, msg.New("api.busyOp", "op", opName(other.Op, other.Component), "id", other.ID, "since", other.StartedAt.Format(time.TimeOnly))))
		return
	}
	// The CLI may hold the stack lock: ask it now, so the caller hears "busy" instead of
	// a failed operation a moment later.
	if lock, err := stack.TryLock(cfg.Stack.DataDir, "forgebox serve, starting "+op); err != nil {
		s.ops.finish(err)
		fail(c, err)
		return
	} else {
		lock.Unlock()
	}
	name := op
	if component != "" {
		name += " " + component
	}
	st, err := s.newStack(eng, cfg, name)
	if err != nil {
		s.ops.finish(err)
		fail(c, err)
		return
	}
	s.ops.started(s.feed, &started, events.Event{Kind: events.KindStep, Status: events.Working, Op: name, Component: component}.With(
		msg.New("op.started", "op", opName(op, component), "by", started.By, "id", started.ID)))
	s.log.Info("operation started", "op", name, "operation", started.ID, "user", started.By)
	ctx, cancel := context.WithTimeout(s.ctx, opTimeoutFor(name)) // backup.go: backups and upgrades take hours
	s.ops.mu.Lock()
	s.ops.cancel = cancel
	s.ops.mu.Unlock()
	go func() {
		defer cancel()
		err := run(ctx, st)
		done := s.ops.finish(err)
		s.mon.invalidate()
		if err != nil {
			s.log.Warn("operation failed", "op", name, "operation", done.ID, "err", err)
			return
		}
		s.log.Info("operation finished", "op", name, "operation", done.ID, "took", done.FinishedAt.Sub(done.StartedAt).Round(time.Millisecond).String())
	}()
	c.Header("Location", "operations/"+started.ID)
	c.JSON(http.StatusAccepted, gin.H{"operation": started})
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// opNames are the controller's operations as message codes; an operation on one component is
// its action and the component ("restart gitlab").
var opNames = map[string]string{
	"up": "opname.up", "down": "opname.down", "restart": "opname.restart", "backup": "opname.backup",
	"restore": "opname.restore", "upgrade": "opname.upgrade", "bundle load": "opname.bundleLoad",
	"backup (scheduled)": "opname.backupScheduled",
}

func opName(op, component string) msg.Msg {
	m := msg.New("opname.other", "op", msg.Raw(op))
	if code, ok := opNames[op]; ok {
		m = msg.New(code)
	}
	if component != "" {
		return msg.New("opname.component", "op", m, "component", component)
	}
	return m
}
