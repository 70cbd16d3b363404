package events

import (
	"fmt"
	"sync"
	"testing"
)

func TestFeedHandsOutByCursor(t *testing.T) {
	f := NewFeed(4)
	if evs, next, lost := f.Since(0, 10); len(evs) != 0 || next != 0 || lost != 0 {
		t.Fatalf("empty feed: %v %d %d", evs, next, lost)
	}
	for i := 1; i <= 3; i++ {
		f.Emit(Event{Message: fmt.Sprint(i)})
	}
	evs, next, _ := f.Since(0, 2)
	if len(evs) != 2 || evs[0].Seq != 1 || evs[1].Message != "2" || next != 2 {
		t.Fatalf("first page: %+v next %d", evs, next)
	}
	evs, next, _ = f.Since(next, 10)
	if len(evs) != 1 || evs[0].Seq != 3 || next != 3 {
		t.Fatalf("second page: %+v next %d", evs, next)
	}
	if evs, again, _ := f.Since(next, 10); len(evs) != 0 || again != next {
		t.Fatalf("caught up: %+v %d", evs, again)
	}
	if evs[0].Time.IsZero() {
		t.Error("events are not stamped with a time")
	}
}

func TestFeedReportsWhatASlowReaderLost(t *testing.T) {
	f := NewFeed(4)
	for i := 1; i <= 10; i++ {
		f.Emit(Event{Message: fmt.Sprint(i)})
	}
	evs, next, lost := f.Since(2, 100)
	if lost != 4 {
		t.Errorf("lost %d, want 4 (events 3 to 6 were overwritten)", lost)
	}
	if len(evs) != 4 || evs[0].Seq != 7 || evs[3].Seq != 10 || next != 10 {
		t.Errorf("got %+v next %d, want seqs 7..10", evs, next)
	}
	for i, e := range evs {
		if e.Message != fmt.Sprint(7+i) {
			t.Errorf("event %d has message %q: the ring mixed up slots", e.Seq, e.Message)
		}
	}
}

func TestFeedConcurrentEmit(t *testing.T) {
	f := NewFeed(1000)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				f.Emit(Event{})
			}
		}()
	}
	wg.Wait()
	evs, next, _ := f.Since(0, 2000)
	if len(evs) != 800 || next != 800 {
		t.Fatalf("%d events, next %d; want 800", len(evs), next)
	}
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("seq %d at %d: not dense", e.Seq, i)
		}
	}
}
