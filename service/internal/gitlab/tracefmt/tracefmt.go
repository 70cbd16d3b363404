// Package tracefmt reads a GitLab job log as GitLab Runner writes it, with or without the line
// headers of its FF_TIMESTAMPS feature flag (on by default from runner 18.7; the format is
// docs/gitlab-contract.md §5.9). A header is
//
//	2026-12-03T07:28:58.675363Z 01E+
//
// an RFC 3339 UTC time with six fractional digits, a space, the stream number in two hex digits,
// O (stdout) or E (stderr), and ' ' for a new line or '+' for a line that continues the previous
// line of the same stream (the runner cuts a line at a carriage return that ends a write, and
// every 8 KiB). A log without headers is plain lines. Lines with and without a header may mix.
//
// The log is read in chunks by byte offset, so a chunk may end inside a line or inside a header:
// a Parser keeps what it cannot place yet and returns a line only once nothing can change it.
package tracefmt

import (
	"bytes"
	"regexp"
	"strings"
	"time"
)

// Line is one logical line of a job log.
type Line struct {
	Time   time.Time // when the runner wrote the line's start; zero for a line without a header
	Stream int       // the runner's stream number (0 the runner, 1 the job's script); -1 without a header
	Stderr bool      // the line came from a stream of type E
	// Text is the line as written, continuations joined, without its line feed: ANSI escapes,
	// carriage returns and section markers are kept (Visible removes what a reader should not see).
	Text string
}

// HasHeader says whether the line carried the runner's header.
func (l Line) HasHeader() bool { return l.Stream >= 0 }

// TimeLayout is how the runner writes the time: fixed width, six fractional digits, UTC.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

const (
	timeLen   = len(TimeLayout)
	headerLen = timeLen + 1 + 4 // time, space, two hex digits, stream type, line type
	// runnerBuf is the runner's line buffer: a longer line without a line feed is cut into
	// continuations, so a segment this long may go on.
	runnerBuf = 8 * 1024
)

// header parses the header at the start of b.
func header(b []byte) (t time.Time, stream int, stderr, cont, ok bool) {
	if len(b) < headerLen || !couldBeHeader(b[:headerLen]) {
		return time.Time{}, 0, false, false, false
	}
	t, err := time.Parse(TimeLayout, string(b[:timeLen]))
	if err != nil {
		return time.Time{}, 0, false, false, false
	}
	return t, hexVal(b[timeLen+1])<<4 | hexVal(b[timeLen+2]), b[timeLen+3] == 'E', b[timeLen+4] == '+', true
}

// template describes a header position by position: d a digit, h a lowercase hex digit, s the
// stream type, c the line type; anything else stands for itself.
const template = "dddd-dd-ddTdd:dd:dd.ddddddZ hhsc"

// couldBeHeader says whether b is a header or the beginning of one.
func couldBeHeader(b []byte) bool {
	if len(b) > len(template) {
		b = b[:len(template)]
	}
	for i, c := range b {
		switch template[i] {
		case 'd':
			if c < '0' || c > '9' {
				return false
			}
		case 'h':
			if hexVal(c) < 0 {
				return false
			}
		case 's':
			if c != 'O' && c != 'E' {
				return false
			}
		case 'c':
			if c != ' ' && c != '+' {
				return false
			}
		default:
			if c != template[i] {
				return false
			}
		}
	}
	return true
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}

// entry is a logical line not handed out yet.
type entry struct {
	Line
	open bool // its last segment may be continued by a later '+' line of its stream
}

func (e *entry) key() int {
	k := e.Stream << 1
	if e.Stderr {
		k |= 1
	}
	return k
}

// Parser turns chunks of a job log into lines. The zero value is ready to use.
type Parser struct {
	frag  []byte   // the start of a line whose line feed has not come yet
	queue []*entry // lines in log order, the first ones possibly still open
}

// Feed takes the next chunk of the log and returns the lines that are now complete, in order.
func (p *Parser) Feed(chunk []byte) []Line {
	p.frag = append(p.frag, chunk...)
	for {
		i := bytes.IndexByte(p.frag, '\n')
		if i < 0 {
			break
		}
		p.add(p.frag[:i])
		p.frag = p.frag[i+1:]
	}
	if len(p.frag) == 0 {
		p.frag = nil
	}
	return p.take(false)
}

// Flush ends the log: what is left, a line without its line feed included, comes out.
func (p *Parser) Flush() []Line {
	if len(p.frag) > 0 {
		p.add(p.frag)
		p.frag = nil
	}
	return p.take(true)
}

// Pending returns, without consuming them, the lines that may still change: those waiting for
// a continuation and the line still being written (unless all of it so far could be a header).
// A live viewer draws them provisionally.
func (p *Parser) Pending() []Line {
	tmp := Parser{queue: make([]*entry, len(p.queue))}
	for i, e := range p.queue {
		cp := *e
		tmp.queue[i] = &cp
	}
	if len(p.frag) > 0 && !(len(p.frag) < headerLen && couldBeHeader(p.frag)) {
		tmp.add(p.frag)
	}
	out := make([]Line, len(tmp.queue))
	for i, e := range tmp.queue {
		out[i] = e.Line
	}
	return out
}

// add places one physical line (without its line feed).
func (p *Parser) add(b []byte) {
	t, stream, stderr, cont, ok := header(b)
	if !ok {
		p.queue = append(p.queue, &entry{Line: Line{Stream: -1, Text: string(b)}})
		return
	}
	seg := b[headerLen:]
	e := &entry{Line: Line{Time: t, Stream: stream, Stderr: stderr}}
	if cont {
		if prev := p.last(e.key()); prev != nil && prev.open {
			prev.Text += string(seg)
			prev.open = mayContinue(seg)
			return
		}
	} else if prev := p.last(e.key()); prev != nil {
		prev.open = false
	}
	e.Text = string(seg)
	e.open = mayContinue(seg)
	p.queue = append(p.queue, e)
}

// mayContinue says whether the runner may send the rest of this segment as a continuation:
// it cut the line at a carriage return, or at its buffer's size.
func mayContinue(seg []byte) bool {
	return len(seg) > 0 && seg[len(seg)-1] == '\r' || len(seg) >= runnerBuf
}

func (p *Parser) last(key int) *entry {
	for i := len(p.queue) - 1; i >= 0; i-- {
		if e := p.queue[i]; e.HasHeader() && e.key() == key {
			return e
		}
	}
	return nil
}

// take hands out the complete lines at the head of the queue (all of them at the end).
func (p *Parser) take(all bool) []Line {
	n := 0
	for n < len(p.queue) && (all || !p.queue[n].open) {
		n++
	}
	out := make([]Line, n)
	for i := range n {
		out[i] = p.queue[i].Line
	}
	p.queue = append(p.queue[:0:0], p.queue[n:]...)
	return out
}

// Parse reads a whole log.
func Parse(log []byte) []Line {
	var p Parser
	return append(p.Feed(log), p.Flush()...)
}

var (
	// sectionMarker is GitLab's collapsible-section marker: section_start or section_end, a Unix
	// time, the name, optional options in brackets, a carriage return and an erase-line.
	sectionMarker = regexp.MustCompile(`section_(?:start|end):\d+:[A-Za-z0-9_.-]+(?:\[[^\]]*\])?\r?\x1b\[0K`)
	ansiEscape    = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)
)

// Visible is a line's text as a terminal would leave it: section markers removed, and of text
// that carriage returns rewrote (progress bars) only what was written last.
func Visible(text string) string {
	text = sectionMarker.ReplaceAllString(text, "")
	text = strings.TrimRight(text, "\r")
	if i := strings.LastIndexByte(text, '\r'); i >= 0 {
		text = text[i+1:]
	}
	return text
}

// StripANSI removes ANSI escape sequences (colours, erase-line).
func StripANSI(text string) string { return ansiEscape.ReplaceAllString(text, "") }
