package download

import (
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// tracker adds up an image's bytes across its blobs and turns them into reports with a rate
// and the time left, at most a few times a second.
type tracker struct {
	mu      sync.Mutex
	image   string
	source  string
	total   int64
	onDisk  map[v1.Hash]int64
	network int64 // bytes that came over the network
	started time.Time
	last    time.Time
	fn      func(Progress)
}

func newTracker(image string, total int64, fn func(Progress)) *tracker {
	now := time.Now()
	return &tracker{image: image, total: total, onDisk: map[v1.Hash]int64{}, started: now, fn: fn}
}

// add records that n bytes of blob h arrived and that off bytes of it are now on disk.
func (t *tracker) add(h v1.Hash, n, off int64) {
	t.mu.Lock()
	t.network += n
	t.onDisk[h] = off
	due := time.Since(t.last) >= 250*time.Millisecond
	t.mu.Unlock()
	if due {
		t.report("downloading", h.String())
	}
}

func (t *tracker) downloaded() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.network
}

func (t *tracker) report(status, blob string) {
	if t.fn == nil {
		return
	}
	t.mu.Lock()
	var cur int64
	for _, n := range t.onDisk {
		cur += n
	}
	p := Progress{Image: t.image, Source: t.source, Blob: blob, Status: status, Current: cur, Total: t.total}
	if el := time.Since(t.started).Seconds(); el > 0.5 && t.network > 0 {
		p.Rate = float64(t.network) / el
		if left := t.total - cur; left > 0 {
			p.Left = time.Duration(float64(left) / p.Rate * float64(time.Second))
		}
	}
	t.last = time.Now()
	t.mu.Unlock()
	t.fn(p)
}
