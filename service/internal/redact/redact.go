// Package redact masks forgebox's secrets in everything it shows people: log lines at every
// level, API answers, the activity feed, `status --json`. The values come from the data dir:
// every secret value the secret store holds (string fields of its JSON records, such as runner
// tokens, included), the controller's admin token and the DSM front's shared secret. They are
// read again whenever one of those files changes, so a secret made a moment ago (by this
// process or another) is masked in the next line.
package redact

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/forgebox/forgebox/service/internal/secretfiles"
)

// Mask replaces a secret wherever it would otherwise be shown.
const Mask = "********"

// MinLen keeps short values (none are generated that short) from masking ordinary words.
const MinLen = 8

// watchedFiles are the data dir's files that hold secrets.
var watchedFiles = []string{secretfiles.StoreFile, secretfiles.AdminToken, secretfiles.FrontSecret}

// Scrubber masks every secret value it knows in text. Safe for concurrent use.
type Scrubber struct {
	dataDir func() string
	fixed   []string

	mu     sync.Mutex
	dir    string
	stamps [3]stamp
	values []string // longest first
}

// stamp tells whether a file changed: an atomic replace makes a new inode, an edit in place a
// new time or size.
type stamp struct {
	ok    bool
	ino   uint64
	mtime time.Time
	size  int64
}

func stampOf(path string) stamp {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}
	}
	st := stamp{ok: true, mtime: fi.ModTime(), size: fi.Size()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}

// New returns a scrubber for the secrets in the data dir dataDir names (asked again on every
// use, since a config change can move it; "" while it is not known yet), and fixed values the
// caller holds itself.
func New(dataDir func() string, fixed ...string) *Scrubber {
	if dataDir == nil {
		dataDir = func() string { return "" }
	}
	return &Scrubber{dataDir: dataDir, fixed: fixed}
}

// current returns the values to mask, reloading them when a watched file changed.
func (s *Scrubber) current() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	dir := s.dataDir()
	var stamps [3]stamp
	if dir != "" {
		for i, name := range watchedFiles {
			stamps[i] = stampOf(filepath.Join(dir, name))
		}
	}
	if s.values != nil && dir == s.dir && stamps == s.stamps {
		return s.values
	}
	s.dir, s.stamps = dir, stamps
	raw := slices.Clone(s.fixed)
	if dir != "" {
		raw = append(raw, dirValues(dir)...)
	}
	seen := map[string]bool{}
	values := []string{}
	for _, v := range raw {
		for _, form := range forms(v) {
			if len(form) >= MinLen && !seen[form] {
				seen[form] = true
				values = append(values, form)
			}
		}
	}
	// Longest first, so a secret that contains another is masked whole.
	slices.SortFunc(values, func(a, b string) int { return len(b) - len(a) })
	s.values = values
	return values
}

// dirValues reads the secret values kept in dir. A store that cannot be read gives nothing
// here: the command that needs it reports the damage.
func dirValues(dir string) []string {
	var out []string
	if b, err := os.ReadFile(filepath.Join(dir, secretfiles.StoreFile)); err == nil {
		var vals map[string]string
		if json.Unmarshal(b, &vals) == nil {
			out = append(out, secretfiles.StoreValues(vals)...)
		}
	}
	for _, name := range []string{secretfiles.AdminToken, secretfiles.FrontSecret} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			out = append(out, strings.TrimSpace(string(b)))
		}
	}
	return out
}

// forms is a value as it can appear in output: as it is, and escaped inside a JSON string.
func forms(v string) []string {
	b, err := json.Marshal(v)
	if err != nil {
		return []string{v}
	}
	if esc := string(b[1 : len(b)-1]); esc != v {
		return []string{v, esc}
	}
	return []string{v}
}

// Values returns what the scrubber masks now, for tests that look for leaks.
func (s *Scrubber) Values() []string { return slices.Clone(s.current()) }

// Scrub masks every known secret in text.
func (s *Scrubber) Scrub(text string) string {
	if len(text) < MinLen {
		return text
	}
	for _, v := range s.current() {
		if strings.Contains(text, v) {
			text = strings.ReplaceAll(text, v, Mask)
		}
	}
	return text
}

// Handler wraps inner so that every record's message and attribute values are scrubbed before
// inner sees them, at every level. Forgebox's loggers (the controller's and the CLI's) are built
// on it.
func (s *Scrubber) Handler(inner slog.Handler) slog.Handler {
	return handler{inner: inner, s: s}
}

type handler struct {
	inner slog.Handler
	s     *Scrubber
}

func (h handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.s.Scrub(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.s.Scrub(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		scrubbed := make([]any, 0, len(attrs))
		for _, g := range attrs {
			scrubbed = append(scrubbed, h.attr(g))
		}
		return slog.Group(a.Key, scrubbed...)
	case slog.KindAny:
		var text string
		switch x := v.Any().(type) {
		case error:
			text = x.Error()
		case fmt.Stringer:
			text = x.String()
		default:
			// Slices, maps, structs: shown as the handler would print them, and replaced by
			// that text only when it held a secret.
			text = fmt.Sprintf("%+v", x)
			if clean := h.s.Scrub(text); clean != text {
				return slog.String(a.Key, clean)
			}
			return slog.Attr{Key: a.Key, Value: v}
		}
		return slog.String(a.Key, h.s.Scrub(text))
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (h handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = h.attr(a)
	}
	return handler{inner: h.inner.WithAttrs(clean), s: h.s}
}

func (h handler) WithGroup(name string) slog.Handler {
	return handler{inner: h.inner.WithGroup(name), s: h.s}
}
