package main

import (
	"strings"
	"testing"
)

// A log with the runner's line headers, fed in chunks cut anywhere (as --follow reads it by
// offset), prints clean lines; --timestamps adds the runner's time; on a terminal stderr is red.
func TestLogWriter(t *testing.T) {
	log := "2026-12-03T07:28:58.100000Z 00O section_start:1796282938:step_script\r\x1b[0K\x1b[36;1mExecuting step\x1b[0;m\n" +
		"2026-12-03T07:28:58.200000Z 01O fetching 1/2\r\n" +
		"2026-12-03T07:28:58.300000Z 01E warning: slow\n" +
		"2026-12-03T07:28:59.100000Z 01O+fetched 2 of 2\n" +
		"2026-12-03T07:29:00.200000Z 00O section_end:1796282940:step_script\r\n" +
		"2026-12-03T07:29:00.200001Z 00O+\x1b[0K\x1b[32;1mJob succeeded\x1b[0;m\n" +
		"plain line\n" +
		"2026-12-03T07:29:01.000000Z 00O no line feed yet"
	for _, c := range []struct {
		color, stamps bool
		want          string
	}{
		{false, false, "Executing step\nfetched 2 of 2\nwarning: slow\nJob succeeded\nplain line\nno line feed yet\n"},
		{false, true, "2026-12-03T07:28:58.100000Z Executing step\n2026-12-03T07:28:58.200000Z fetched 2 of 2\n" +
			"2026-12-03T07:28:58.300000Z warning: slow\n2026-12-03T07:29:00.200000Z Job succeeded\n" +
			"                            plain line\n2026-12-03T07:29:01.000000Z no line feed yet\n"},
		{true, false, "\x1b[36;1mExecuting step\x1b[0;m\x1b[0m\nfetched 2 of 2\n\x1b[31mwarning: slow\x1b[0m\n" +
			"\x1b[32;1mJob succeeded\x1b[0;m\x1b[0m\nplain line\nno line feed yet\n"},
	} {
		for _, size := range []int{1, 7, 33, len(log)} {
			var b strings.Builder
			w := logWriter{w: &b, color: c.color, stamps: c.stamps}
			for rest := log; rest != ""; {
				n := min(size, len(rest))
				w.feed([]byte(rest[:n]))
				rest = rest[n:]
			}
			w.flush()
			if b.String() != c.want {
				t.Errorf("color %v stamps %v chunks of %d:\n%q\nwant\n%q", c.color, c.stamps, size, b.String(), c.want)
			}
		}
	}
}
