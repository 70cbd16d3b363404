package main

// The job log's line format. GitLab Runner passes every stream of a job's log through a
// "timestamper" when the feature flag FF_TIMESTAMPS is on (gitlab-runner v18.7.0,
// common/buildlogger/build_logger.go wrap; the format in
// common/buildlogger/internal/timestamper/timestamper.go), and adds nothing when it is off. Each
// line then starts with
//
//	<UTC time, RFC 3339, six fractional digits>Z <stream, 2 hex digits><O|E><' ' or '+'>
//
// stream 00 being the runner's own messages and 01 the job's script. A write's complete lines
// are emitted at once; a write that ends without a line feed is cut after its last carriage
// return (a progress bar), or waits for its line feed up to 8 KiB; what follows a cut goes out
// with '+', "continues the previous line". The stand-in does the same, so that forgebox reads the
// log a real runner of the claimed version would send (docs/gitlab-contract.md §5.9).
//
// The flag's default is false through v18.6.0 and true from v18.7.0
// (helpers/featureflags/flags.go, UseTimestamps, at both tags); a value in
// [runners.feature_flags] wins, else a job variable FF_TIMESTAMPS, else the default
// (v18.7.0 common/build_settings.go, populateFeatureFlags).

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"time"
)

const (
	ffTimestamps = "FF_TIMESTAMPS"
	stampLayout  = "2006-01-02T15:04:05.000000Z"
	// stampBuf is how much of a line without a line feed the runner holds before it cuts it.
	stampBuf = 8 * 1024
)

// Streams of a job's log.
const (
	streamRunner = 0 // the runner's own messages
	streamScript = 1 // the job's script
)

// claimedVersion is the runner version the stand-in plays: FORGEBOX_STANDIN_VERSION, as the
// GitLab stand-in (tests derive one image per version from the stand-in image).
func claimedVersion() string {
	if v := strings.TrimPrefix(strings.TrimSpace(os.Getenv("FORGEBOX_STANDIN_VERSION")), "v"); v != "" {
		return v
	}
	if v := os.Getenv("FORGEBOX_STANDIN_RUNNER_VERSION"); versionPattern.MatchString(v) {
		return v
	}
	return defaultVersion
}

// timestampsByDefault says whether FF_TIMESTAMPS is on by default in runner version v.
func timestampsByDefault(v string) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return major > 18 || major == 18 && minor >= 7
}

// timestamps resolves FF_TIMESTAMPS for a job as the runner does: the runner's feature_flags
// table, else the job's variable (when it parses as a bool), else the version's default.
func timestamps(version string, flags map[string]bool, jobVar string) bool {
	if v, ok := flags[ffTimestamps]; ok {
		return v
	}
	if v, err := strconv.ParseBool(jobVar); err == nil {
		return v
	}
	return timestampsByDefault(version)
}

// stamper is one stream of a job's log with headers.
type stamper struct {
	out    func([]byte) // appends to the log
	stream uint8
	stderr bool
	now    func() time.Time

	head []byte // the header of the line being held, nil when none
	buf  []byte // the line being held (no line feed yet)
	cont bool   // the next line continues a cut one
}

func (s *stamper) header() []byte {
	typ, mark := byte('O'), byte(' ')
	if s.stderr {
		typ = 'E'
	}
	if s.cont {
		mark = '+'
	}
	s.cont = false
	const hex = "0123456789abcdef"
	h := s.now().UTC().AppendFormat(nil, stampLayout)
	return append(h, ' ', hex[s.stream>>4], hex[s.stream&15], typ, mark)
}

// emit sends the held line with tail; cut means the line goes on in a continuation.
func (s *stamper) emit(tail []byte, cut bool) {
	if s.head == nil {
		s.head = s.header()
	}
	line := append(append(append([]byte(nil), s.head...), s.buf...), tail...)
	if cut {
		line = append(line, '\n')
		s.cont = true
	}
	s.out(line)
	s.head, s.buf = nil, s.buf[:0]
}

func (s *stamper) Write(p []byte) (int, error) {
	n := len(p)
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			break
		}
		s.emit(p[:i+1], false)
		p = p[i+1:]
	}
	if i := bytes.LastIndexByte(p, '\r'); i >= 0 {
		s.emit(p[:i+1], true)
		p = p[i+1:]
	}
	if len(p) == 0 {
		return n, nil
	}
	if s.head == nil {
		s.head = s.header()
	}
	if len(s.buf)+len(p) > stampBuf {
		s.emit(p, true)
		return n, nil
	}
	s.buf = append(s.buf, p...)
	return n, nil
}

// Close ends a held line with a line feed.
func (s *stamper) Close() error {
	if s.head != nil {
		s.emit([]byte{'\n'}, false)
	}
	return nil
}
