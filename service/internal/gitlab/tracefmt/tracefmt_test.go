package tracefmt

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// runnerExample is the output gitlab-runner v18.7.0's own timestamper test expects
// (common/buildlogger/internal/timestamper/timestamper_test.go, TestWithTimestamps: stream 255,
// stderr, a fake clock one hour apart per line) for writes that split a line, draw a progress
// bar with carriage returns, end lines with CRLF, and hold several lines in one write.
func runnerExample(withHeaders bool) string {
	if !withHeaders {
		// Without the flag the runner adds nothing: the log is the writes themselves (the same
		// test's writeLines).
		return "PREFIX This is the beginning of a new line\nPREFIX This is a split up line\nPREFIX Progress bar: " +
			strings.Repeat(".\r", 10) + "Done.\r\nPREFIX Another windows new-line\r\nPREFIX multiple\nnew\nlines\nin\none\n" +
			"\nstart\nend\nPREFIX Eat carriages\r\r\r\r\r\r\r\nPREFIX This is across\ntwo lines\nPREFIX The end"
	}
	// Each segment: its line type (' ' or '+') and its message.
	segs := []string{" PREFIX This is the beginning of a new line\n", " PREFIX This is a split up line\n", " PREFIX Progress bar: .\r\n"}
	for range 9 {
		segs = append(segs, "+.\r\n")
	}
	segs = append(segs, "+Done.\r\n", " PREFIX Another windows new-line\r\n", " PREFIX multiple\n", " new\n", " lines\n",
		" in\n", " one\n", " \n", " start\n", " end\n", " PREFIX Eat carriages\r\r\r\r\r\r\r\n", " PREFIX This is across\n",
		" two lines\n", " PREFIX The end\n")
	var b strings.Builder
	at := time.Date(2021, 1, 1, 0, 0, 0, 20010000, time.UTC)
	for _, s := range segs {
		at = at.Add(time.Hour)
		b.WriteString(at.Format(TimeLayout) + " ffE" + s)
	}
	return b.String()
}

func TestRunnerExampleWithHeaders(t *testing.T) {
	log := runnerExample(true)
	if !strings.HasPrefix(log, "2021-01-01T01:00:00.020010Z ffE PREFIX This is the beginning of a new line\n2021-01-01T02:00:00.020010Z ffE PREFIX") ||
		!strings.Contains(log, "2021-01-01T04:00:00.020010Z ffE+.\r\n") || !strings.HasSuffix(log, "2021-01-02T02:00:00.020010Z ffE PREFIX The end\n") {
		t.Fatalf("example built wrong:\n%q", log)
	}
	lines := Parse([]byte(log))
	want := []string{"PREFIX This is the beginning of a new line", "PREFIX This is a split up line", "Done.",
		"PREFIX Another windows new-line", "PREFIX multiple", "new", "lines", "in", "one", "", "start", "end",
		"PREFIX Eat carriages", "PREFIX This is across", "two lines", "PREFIX The end"}
	if got := visible(lines); !reflect.DeepEqual(got, want) {
		t.Fatalf("lines:\n got %q\nwant %q", got, want)
	}
	for _, l := range lines {
		if l.Stream != 255 || !l.Stderr || !l.HasHeader() {
			t.Errorf("line %q: stream %d stderr %v", l.Text, l.Stream, l.Stderr)
		}
	}
	// The progress bar is one line, stamped when it began; the line after it an hour after its last part.
	if lines[2].Text != "PREFIX Progress bar: ."+strings.Repeat("\r.", 9)+"\rDone.\r" {
		t.Errorf("progress bar %q", lines[2].Text)
	}
	if got := lines[2].Time.Format(TimeLayout); got != "2021-01-01T03:00:00.020010Z" {
		t.Errorf("progress bar time %s", got)
	}
	if got := lines[3].Time.Format(TimeLayout); got != "2021-01-01T14:00:00.020010Z" {
		t.Errorf("next line's time %s", got)
	}
}

func TestRunnerExampleWithoutHeaders(t *testing.T) {
	lines := Parse([]byte(runnerExample(false)))
	want := []string{"PREFIX This is the beginning of a new line", "PREFIX This is a split up line", "Done.",
		"PREFIX Another windows new-line", "PREFIX multiple", "new", "lines", "in", "one", "", "start", "end",
		"PREFIX Eat carriages", "PREFIX This is across", "two lines", "PREFIX The end"}
	if got := visible(lines); !reflect.DeepEqual(got, want) {
		t.Fatalf("lines:\n got %q\nwant %q", got, want)
	}
	for _, l := range lines {
		if l.HasHeader() || !l.Time.IsZero() {
			t.Errorf("plain line %q has a header", l.Text)
		}
	}
}

// Chunks cut anywhere, even inside a header or between \r and \n, give the same lines, and no
// line comes out before it is final.
func TestChunksCutAnywhere(t *testing.T) {
	for _, headers := range []bool{true, false} {
		log := []byte(runnerExample(headers) + interleaved)
		want := Parse(log)
		r := rand.New(rand.NewPCG(1, 2))
		for round := range 200 {
			var p Parser
			var got []Line
			for rest := log; len(rest) > 0; {
				n := 1 + r.IntN(40)
				if round == 0 {
					n = 1
				}
				n = min(n, len(rest))
				got = append(got, p.Feed(rest[:n])...)
				for _, l := range p.Pending() {
					if strings.HasPrefix(l.Text, "2021-") || strings.HasPrefix(l.Text, "2026-") {
						t.Fatalf("a header shows as text in a pending line: %q", l.Text)
					}
				}
				rest = rest[n:]
			}
			got = append(got, p.Flush()...)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("headers %v, round %d:\n got %q\nwant %q", headers, round, visible(got), visible(want))
			}
		}
	}
}

// interleaved: the script's stdout draws a progress line while stderr writes a line, the
// runner's own stream cuts a section marker from its title, and GitLab appends a plain line.
const interleaved = "2026-12-03T07:28:58.100000Z 01O fetching 1/2\r\n" +
	"2026-12-03T07:28:58.200000Z 01E warning: slow mirror\n" +
	"2026-12-03T07:28:59.100000Z 01O+fetching 2/2\r\n" +
	"2026-12-03T07:29:00.100000Z 01O+fetched 2 of 2\n" +
	"2026-12-03T07:29:00.200000Z 00O section_end:1796282940:step_script\r\n" +
	"2026-12-03T07:29:00.200001Z 00O+\x1b[0Ksection_start:1796282940:cleanup\r\x1b[0K\x1b[36;1mCleaning up\x1b[0;m\n" +
	"plain line from GitLab\n" +
	"2026-12-03T07:29:01.000000Z 00O \x1b[32;1mJob succeeded\x1b[0;m\n"

func TestInterleavedStreams(t *testing.T) {
	var p Parser
	first := p.Feed([]byte(interleaved[:strings.Index(interleaved, "2026-12-03T07:28:59")]))
	if len(first) != 0 {
		t.Errorf("the progress line is final before its continuation came: %q", visible(first))
	}
	if pend := p.Pending(); len(pend) != 2 || Visible(pend[0].Text) != "fetching 1/2" || pend[1].Text != "warning: slow mirror" {
		t.Errorf("pending %q", visible(pend))
	}
	lines := append(first, p.Feed([]byte(interleaved[len(interleaved)-len(interleaved)+strings.Index(interleaved, "2026-12-03T07:28:59"):]))...)
	lines = append(lines, p.Flush()...)
	want := []string{"fetched 2 of 2", "warning: slow mirror", "\x1b[36;1mCleaning up\x1b[0;m", "plain line from GitLab", "\x1b[32;1mJob succeeded\x1b[0;m"}
	if got := visible(lines); !reflect.DeepEqual(got, want) {
		t.Fatalf("lines:\n got %q\nwant %q", got, want)
	}
	if lines[0].Stream != 1 || lines[0].Stderr || !lines[1].Stderr || lines[2].Stream != 0 || lines[3].HasHeader() {
		t.Errorf("streams: %+v", lines)
	}
	if got := lines[0].Time; !got.Equal(time.Date(2026, 12, 3, 7, 28, 58, 100000000, time.UTC)) {
		t.Errorf("time %s", got)
	}
	if StripANSI(Visible(lines[4].Text)) != "Job succeeded" {
		t.Errorf("strip %q", StripANSI(lines[4].Text))
	}
}

// Text that only looks like a header somewhere is text; a wrong header is a plain line.
func TestNotAHeader(t *testing.T) {
	for _, s := range []string{
		"2026-12-03T07:28:58.675363Z 01X oops",   // stream type
		"2026-12-03T07:28:58.675363Z 0gO text",   // not hex
		"2026-12-03T07:28:58.67536Z 01O short",   // five fractional digits
		"2026-13-03T07:28:58.675363Z 01O month",  // no such month
		"2026-12-03T07:28:58.675363Z 01O",        // cut before the line type
		"00O no time",                            // the bare form the runner never writes
		"echo 2026-12-03T07:28:58.675363Z 01O x", // not at the start
	} {
		lines := Parse([]byte(s + "\n"))
		if len(lines) != 1 || lines[0].HasHeader() || lines[0].Text != s {
			t.Errorf("%q parsed as %+v", s, lines)
		}
	}
	// The empty message is a line.
	lines := Parse([]byte("2026-12-03T07:28:58.675363Z 01O \n"))
	if len(lines) != 1 || lines[0].Text != "" || !lines[0].HasHeader() {
		t.Errorf("empty message: %+v", lines)
	}
}

// A line the runner cut at its 8 KiB buffer goes on in the next one.
func TestLongLine(t *testing.T) {
	long := strings.Repeat("x", 9000)
	log := "2026-12-03T07:28:58.000001Z 01O " + long + "\n2026-12-03T07:28:58.000002Z 01O+tail\n"
	var p Parser
	if got := p.Feed([]byte(log[:len(long)+33])); len(got) != 0 {
		t.Errorf("a cut line came out before its rest")
	}
	lines := append(p.Feed([]byte(log[len(long)+33:])), p.Flush()...)
	if len(lines) != 1 || lines[0].Text != long+"tail" {
		t.Errorf("%d lines", len(lines))
	}
}

func visible(lines []Line) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = Visible(l.Text)
	}
	return out
}

func Example() {
	for _, l := range Parse([]byte("2026-12-03T07:28:58.675363Z 01O compiling\r\n2026-12-03T07:28:59.000000Z 01O+compiled\n2026-12-03T07:28:59.100000Z 01E warning\n")) {
		fmt.Printf("%s stream %d stderr %v: %s\n", l.Time.Format(time.TimeOnly), l.Stream, l.Stderr, Visible(l.Text))
	}
	// Output:
	// 07:28:58 stream 1 stderr false: compiled
	// 07:28:59 stream 1 stderr true: warning
}
