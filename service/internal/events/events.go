// Package events is the activity feed: what a converge is doing (plan steps with their reasons,
// pull progress per layer, health waits, errors) as structured events, separate from logs. The
// CLI prints them as they come; the controller keeps them in a Feed that clients read by cursor
// with plain short polls.
package events

import (
	"sync"
	"time"

	"github.com/forgebox/forgebox/service/internal/msg"
)

// Kind says what an event is about.
type Kind string

const (
	KindPlan  Kind = "plan"  // one planned step and its reason, before anything changes
	KindStep  Kind = "step"  // a step starts or ends
	KindPull  Kind = "pull"  // image pull progress of one layer
	KindWait  Kind = "wait"  // a health wait still going
	KindInfo  Kind = "info"  // anything else worth showing
	KindError Kind = "error" // an operation failed
	KindDone  Kind = "done"  // an operation finished
)

// Status is where the thing an event is about stands, as compose's progress events say it.
type Status string

const (
	Working Status = "working"
	Done    Status = "done"
	Warning Status = "warning"
	Error   Status = "error"
)

// Event is one line of the activity feed. ID names the step (or pull layer) it is about, so a
// client follows a step from its plan line to its end by ID; Parent is the image a pull
// layer belongs to. Code and Args (the embedded msg.Msg) say the same as Message in words the
// web app renders in its own language; Message is the English, for the CLI and API clients.
type Event struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Kind      Kind      `json:"kind"`
	ID        string    `json:"id,omitempty"`
	Parent    string    `json:"parent,omitempty"`
	Status    Status    `json:"status,omitempty"`
	Op        string    `json:"op,omitempty"`        // the operation it belongs to: up, down, ...
	Component string    `json:"component,omitempty"` // postgres, redis, ...
	Message   string    `json:"message"`
	msg.Msg
	Image   string `json:"image,omitempty"`
	Layer   string `json:"layer,omitempty"`
	Current int64  `json:"current,omitempty"`
	Total   int64  `json:"total,omitempty"`
}

// With returns e carrying m, its English rendering in Message.
func (e Event) With(m msg.Msg) Event {
	e.Msg, e.Message = m, m.String()
	return e
}

// Sink receives events. Implementations must be safe for concurrent use.
type Sink interface {
	Emit(Event)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(Event)

func (f SinkFunc) Emit(e Event) { f(e) }

// Discard drops every event.
var Discard Sink = SinkFunc(func(Event) {})

// Feed keeps the most recent events in a ring and hands them out by cursor.
type Feed struct {
	mu   sync.Mutex
	ring []Event
	next uint64 // Seq of the next event; Seqs start at 1
	size int
}

// NewFeed keeps up to size events.
func NewFeed(size int) *Feed {
	return &Feed{ring: make([]Event, 0, size), next: 1, size: size}
}

// Emit stamps e with the next sequence number and the time, and stores it.
func (f *Feed) Emit(e Event) { f.Append(e) }

// Append is Emit that returns the sequence number e got, so a caller can name its own event
// exactly even while others emit at the same time.
func (f *Feed) Append(e Event) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	e.Seq = f.next
	f.next++
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if len(f.ring) < f.size {
		f.ring = append(f.ring, e)
		return e.Seq
	}
	f.ring[int((e.Seq-1)%uint64(f.size))] = e
	return e.Seq
}

// Head is the cursor after the newest event: the Seq of the newest one, 0 before any.
func (f *Feed) Head() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.next - 1
}

// Since returns up to max events with Seq > cursor, oldest first, and the cursor to pass next
// time. When the reader fell behind the ring, it gets the oldest events still kept and lost
// reports how many it missed.
func (f *Feed) Since(cursor uint64, max int) (evs []Event, next uint64, lost uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.ring) == 0 {
		return nil, cursor, 0
	}
	oldest := f.next - uint64(len(f.ring))
	if cursor+1 < oldest {
		lost = oldest - cursor - 1
		cursor = oldest - 1
	}
	for s := cursor + 1; s < f.next && len(evs) < max; s++ {
		evs = append(evs, f.ring[int((s-1)%uint64(f.size))])
		cursor = s
	}
	return evs, cursor, lost
}
