package main

import (
	"strings"
	"testing"
	"time"
)

// TestTraceHeader feeds the stand-in's stamper the writes of gitlab-runner v18.7.0's own
// timestamper test (common/buildlogger/internal/timestamper/timestamper_test.go, writeLines and
// TestWithTimestamps: stream 255, stderr, a clock one hour on per header) and expects the output
// that test expects.
func TestTraceHeader(t *testing.T) {
	clock := time.Date(2021, 1, 1, 0, 0, 0, 20010000, time.UTC)
	var out strings.Builder
	s := &stamper{stream: 255, stderr: true, out: func(b []byte) { out.Write(b) },
		now: func() time.Time { clock = clock.Add(time.Hour); return clock.In(time.FixedZone("Cairo", 2*3600)) }}
	for _, w := range []string{"PREFIX This is the beginning of a new line\n", "PREFIX This is a split ", "up ", "line\n", "PREFIX Progress bar: "} {
		s.Write([]byte(w))
	}
	for range 10 {
		s.Write([]byte(".\r"))
	}
	for _, w := range []string{"Done.\r\n", "PREFIX Another windows new-line\r\n", "PREFIX multiple\nnew\nlines\nin\none\n", "\nstart", "\nend\n",
		"PREFIX Eat carriages\r\r\r\r\r\r\r\n", "PREFIX This is across\ntwo lines\n", "PREFIX The end"} {
		s.Write([]byte(w))
	}
	s.Close()

	want := []string{" PREFIX This is the beginning of a new line\n", " PREFIX This is a split up line\n", " PREFIX Progress bar: .\r\n"}
	for range 9 {
		want = append(want, "+.\r\n")
	}
	want = append(want, "+Done.\r\n", " PREFIX Another windows new-line\r\n", " PREFIX multiple\n", " new\n", " lines\n", " in\n", " one\n",
		" \n", " start\n", " end\n", " PREFIX Eat carriages\r\r\r\r\r\r\r\n", " PREFIX This is across\n", " two lines\n", " PREFIX The end\n")
	var exp strings.Builder
	at := time.Date(2021, 1, 1, 0, 0, 0, 20010000, time.UTC)
	for _, w := range want {
		at = at.Add(time.Hour)
		exp.WriteString(at.Format(stampLayout) + " ffE" + w)
	}
	if out.String() != exp.String() {
		t.Errorf("stamped:\n%q\nwant\n%q", out.String(), exp.String())
	}
	if !strings.HasPrefix(out.String(), "2021-01-01T01:00:00.020010Z ffE PREFIX") {
		t.Errorf("first line %q", out.String()[:40])
	}
}

// A line held without its line feed goes out cut, with the rest as a continuation, past 8 KiB.
func TestTraceLongLine(t *testing.T) {
	var lines []string
	s := &stamper{stream: streamScript, out: func(b []byte) { lines = append(lines, string(b)) }, now: time.Now}
	s.Write([]byte(strings.Repeat("x", 5000)))
	s.Write([]byte(strings.Repeat("y", 5000)))
	s.Write([]byte("end\n"))
	if len(lines) != 2 || !strings.HasSuffix(lines[0], " 01O "+strings.Repeat("x", 5000)+strings.Repeat("y", 5000)+"\n") ||
		!strings.HasSuffix(lines[1], " 01O+end\n") {
		t.Errorf("lines %d: %.60q ... %q", len(lines), lines, lines[len(lines)-1])
	}
}

func TestTimestampsFlag(t *testing.T) {
	for _, c := range []struct {
		version string
		flags   map[string]bool
		jobVar  string
		want    bool
	}{
		{"18.5.0", nil, "", false},
		{"18.6.0", nil, "", false},
		{"18.7.0", nil, "", true},
		{"19.2.0", nil, "", true},
		{"18.5.0", nil, "true", true},
		{"18.8.0", nil, "false", false},
		{"18.8.0", nil, "maybe", true},
		{"18.5.0", map[string]bool{ffTimestamps: true}, "false", true},
		{"19.0.0", map[string]bool{ffTimestamps: false}, "true", false},
	} {
		if got := timestamps(c.version, c.flags, c.jobVar); got != c.want {
			t.Errorf("timestamps(%s, %v, %q) = %v", c.version, c.flags, c.jobVar, got)
		}
	}
}

// The trace of a stamped job: each stream its own header; the runner's section end, written
// without a line feed, is cut after its carriage return and continued.
func TestCITraceStreams(t *testing.T) {
	clock := time.Date(2026, 12, 3, 7, 28, 58, 675363000, time.UTC)
	tr := &ciTrace{stamp: true, now: func() time.Time { clock = clock.Add(time.Millisecond); return clock }}
	tr.line("Running")
	tr.stream(streamScript, false).Write([]byte("fetching 1/2\r"))
	tr.stream(streamScript, true).Write([]byte("warning\n"))
	tr.stream(streamScript, false).Write([]byte("fetched\n"))
	tr.closeStreams()
	tr.section(false, "step_script", "")
	tr.line("Job succeeded")
	want := "2026-12-03T07:28:58.676363Z 00O Running\n" +
		"2026-12-03T07:28:58.677363Z 01O fetching 1/2\r\n" +
		"2026-12-03T07:28:58.678363Z 01E warning\n" +
		"2026-12-03T07:28:58.679363Z 01O+fetched\n"
	got := string(tr.data)
	if !strings.HasPrefix(got, want) {
		t.Fatalf("trace:\n%q\nwant prefix\n%q", got, want)
	}
	rest := got[len(want):]
	if !strings.HasPrefix(rest, "2026-12-03T07:28:58.680363Z 00O section_end:") || !strings.Contains(rest, ":step_script\r\n2026-12-03T07:28:58.681363Z 00O+\x1b[0KJob succeeded\n") {
		t.Errorf("section end and last line:\n%q", rest)
	}
}
