package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
)

// LogLine is one line of a container's output.
type LogLine struct {
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"` // stdout or stderr
	Text   string    `json:"text"`
}

// LogQuery selects lines: the last Tail lines (0: all that match), only those after After when
// it is set. Reading "after the last line seen" is how a client follows a log by short polls.
type LogQuery struct {
	Tail  int
	After time.Time
}

// maxLogLine caps one line; longer ones are cut (a runaway line must not eat the controller's
// memory).
const maxLogLine = 16 << 10

// ReadLogs returns a container's lines, stdout and stderr in the order they were written, each
// with the engine's timestamp.
func (c *Client) ReadLogs(ctx context.Context, id string, q LogQuery) ([]LogLine, error) {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true}
	if q.Tail > 0 {
		opts.Tail = strconv.Itoa(q.Tail)
	}
	if !q.After.IsZero() {
		// The engine's "since" is inclusive and has nanosecond precision; lines at exactly the
		// cursor are dropped below.
		opts.Since = fmt.Sprintf("%d.%09d", q.After.Unix(), q.After.Nanosecond())
	}
	c.calls.add()
	rc, err := c.api.ContainerLogs(ctx, id, opts)
	if err != nil {
		return nil, fmt.Errorf("logs of container %s: %w", id, err)
	}
	defer rc.Close()
	lines, err := parseLogStream(rc)
	if err != nil {
		return nil, fmt.Errorf("read logs of container %s: %w", id, err)
	}
	if !q.After.IsZero() {
		kept := lines[:0]
		for _, l := range lines {
			if l.Time.After(q.After) {
				kept = append(kept, l)
			}
		}
		lines = kept
	}
	return lines, nil
}

// parseLogStream reads the engine's multiplexed log stream (8-byte frame headers: stream, 0, 0,
// 0, big-endian length), or a raw stream for containers with a TTY, into timestamped lines.
func parseLogStream(r io.Reader) ([]LogLine, error) {
	br := bufio.NewReaderSize(r, 32<<10)
	head, err := br.Peek(8)
	if err != nil && len(head) == 0 {
		if err == io.EOF {
			return nil, nil
		}
		return nil, err
	}
	if len(head) < 8 || head[0] > 2 || head[1] != 0 || head[2] != 0 || head[3] != 0 {
		return splitLines(br, "stdout")
	}
	var out []LogLine
	var partial [3]bytes.Buffer // per stream: a line split over frames
	hdr := make([]byte, 8)
	for {
		if _, err := io.ReadFull(br, hdr); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			return out, err
		}
		stream := int(hdr[0])
		if stream > 2 {
			stream = 1
		}
		n := binary.BigEndian.Uint32(hdr[4:])
		frame := make([]byte, n)
		if _, err := io.ReadFull(br, frame); err != nil {
			return out, err
		}
		buf := &partial[stream]
		buf.Write(frame)
		for {
			b := buf.Bytes()
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				break
			}
			out = append(out, parseLine(string(b[:i]), streamName(stream)))
			buf.Next(i + 1)
		}
	}
	for s := range partial {
		if partial[s].Len() > 0 {
			out = append(out, parseLine(partial[s].String(), streamName(s)))
		}
	}
	return out, nil
}

func splitLines(r io.Reader, stream string) ([]LogLine, error) {
	var out []LogLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		out = append(out, parseLine(sc.Text(), stream))
	}
	return out, sc.Err()
}

func streamName(s int) string {
	if s == 2 {
		return "stderr"
	}
	return "stdout"
}

// parseLine splits the engine's "RFC3339Nano timestamp, space, text" form.
func parseLine(s, stream string) LogLine {
	s = strings.TrimSuffix(s, "\r")
	l := LogLine{Stream: stream, Text: s}
	if ts, rest, ok := strings.Cut(s, " "); ok {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			l.Time, l.Text = t, rest
		}
	}
	if len(l.Text) > maxLogLine {
		l.Text = l.Text[:maxLogLine] + " [cut]"
	}
	return l
}
