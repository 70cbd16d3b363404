package api

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
)

// mask replaces a secret wherever it would otherwise be shown.
const mask = "********"

// minScrubLen keeps short values (none are generated that short) from masking ordinary words.
const minScrubLen = 8

// scrubber removes every secret value forgebox knows from text bound for a log line, the
// activity feed or a container log shown in the browser: the secret store's values (re-read
// when its file changes, since the CLI may add to it) and the controller's own credentials.
type scrubber struct {
	dataDir func() string
	fixed   []string

	mu      sync.Mutex
	path    string
	modTime time.Time
	size    int64
	values  []string
}

func newScrubber(dataDir func() string, fixed ...string) *scrubber {
	return &scrubber{dataDir: dataDir, fixed: fixed}
}

func (s *scrubber) current() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	path := filepath.Join(s.dataDir(), config.SecretsFile)
	fi, err := os.Stat(path)
	if err != nil {
		s.path, s.values = path, nil
		return s.fixed
	}
	if path != s.path || !fi.ModTime().Equal(s.modTime) || fi.Size() != s.size {
		s.path, s.modTime, s.size = path, fi.ModTime(), fi.Size()
		s.values = nil
		if store, err := config.OpenSecrets(s.dataDir()); err == nil {
			for _, v := range store.Values() {
				if len(v) >= minScrubLen {
					s.values = append(s.values, v)
				}
			}
		}
		// Longest first, so a secret that contains another is masked whole.
		slices.SortFunc(s.values, func(a, b string) int { return len(b) - len(a) })
	}
	return append(slices.Clone(s.values), s.fixed...)
}

// Scrub masks every known secret in text.
func (s *scrubber) Scrub(text string) string {
	for _, v := range s.current() {
		if v != "" && strings.Contains(text, v) {
			text = strings.ReplaceAll(text, v, mask)
		}
	}
	return text
}

// scrubHandler is a slog.Handler that masks secrets in messages and attribute values before
// the wrapped handler sees them.
type scrubHandler struct {
	inner slog.Handler
	s     *scrubber
}

func (h scrubHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h scrubHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.s.Scrub(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.scrubAttr(a))
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h scrubHandler) scrubAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.s.Scrub(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		scrubbed := make([]any, 0, len(attrs))
		for _, g := range attrs {
			scrubbed = append(scrubbed, h.scrubAttr(g))
		}
		return slog.Group(a.Key, scrubbed...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, h.s.Scrub(x.Error()))
		case interface{ String() string }:
			return slog.String(a.Key, h.s.Scrub(x.String()))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (h scrubHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = h.scrubAttr(a)
	}
	return scrubHandler{inner: h.inner.WithAttrs(clean), s: h.s}
}

func (h scrubHandler) WithGroup(name string) slog.Handler {
	return scrubHandler{inner: h.inner.WithGroup(name), s: h.s}
}
