package main

import (
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// helpCases are every command and sub-action the usage text names, each asked for --help (and
// -h) in the positions a user would put it.
func helpCases(t *testing.T) [][]string {
	t.Helper()
	word := regexp.MustCompile(`^[a-z]+$`)
	var cases [][]string
	var cmd string
	for line := range strings.Lines(usage) {
		fields := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "    ") && len(fields) > 0:
			cmd = fields[0]
			cases = append(cases, []string{cmd})
			if len(fields) > 1 {
				for _, a := range strings.Split(fields[1], "|") {
					if word.MatchString(a) {
						cases = append(cases, []string{cmd, a})
					}
				}
			}
		case strings.HasPrefix(line, "    ") && cmd == "dsm":
			for _, f := range fields {
				if a := strings.Trim(f, ",;"); word.MatchString(a) && strings.HasSuffix(f, ",") {
					cases = append(cases, []string{cmd, a})
				}
			}
		case !strings.HasPrefix(line, "  "):
			cmd = ""
		}
	}
	if len(cases) < 20 {
		t.Fatalf("only %d commands found in the usage text: %v", len(cases), cases)
	}
	return cases
}

// TestHelpExitsZeroOnEveryCommand: --help on every command and sub-action prints that command's
// usage to stdout, exits 0 and does nothing else (the config named does not exist, so a command
// that ran would fail) (issue 16 item 6).
func TestHelpExitsZeroOnEveryCommand(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "absent.toml")
	for _, c := range helpCases(t) {
		for _, flag := range []string{"--help", "-h"} {
			args := append([]string{"--config", missing}, c...)
			args = append(args, flag)
			code, out, errOut := runCLI(t, args...)
			if code != 0 || !strings.HasPrefix(out, "Usage: forgebox") || !strings.Contains(out, "  "+c[0]) || errOut != "" {
				t.Errorf("forgebox %s: exit %d, stdout %q, stderr %q", strings.Join(args[2:], " "), code, out, errOut)
			}
		}
	}
	// A trailing argument after --help does not matter; after "--" it is an argument.
	if code, out, _ := runCLI(t, "--config", missing, "builds", "--help", "log", "5"); code != 0 || !strings.Contains(out, "builds log JOB") {
		t.Errorf("builds --help log 5: exit %d, %q", code, out)
	}
	if code, _, _ := runCLI(t, "--help"); code != 0 {
		t.Errorf("forgebox --help: exit %d", code)
	}
	if code, _, _ := runCLI(t, "--nonsense"); code != 2 {
		t.Errorf("forgebox --nonsense: exit %d, want 2", code)
	}
}

// TestLogLevelDefaults: serve logs at info unless told otherwise, the one-shot commands at warn,
// and a named level wins (issue 16 item 6).
func TestLogLevelDefaults(t *testing.T) {
	for _, tc := range []struct {
		cmd, flag string
		want      slog.Level
	}{
		{"serve", "", slog.LevelInfo},
		{"up", "", slog.LevelWarn},
		{"status", "", slog.LevelWarn},
		{"serve", "debug", slog.LevelDebug},
		{"serve", "warn", slog.LevelWarn},
		{"up", "info", slog.LevelInfo},
	} {
		if got, err := logLevel(tc.cmd, tc.flag); err != nil || got != tc.want {
			t.Errorf("logLevel(%q, %q) = %v, %v; want %v", tc.cmd, tc.flag, got, err, tc.want)
		}
	}
	if _, err := logLevel("serve", "loud"); err == nil || !strings.Contains(err.Error(), "use debug, info, warn or error") {
		t.Errorf("logLevel(loud): %v", err)
	}
	if code, _, errOut := runCLI(t, "--log-level", "loud", "version"); code != 2 || !strings.Contains(errOut, "--log-level") {
		t.Errorf("--log-level loud: exit %d, %q", code, errOut)
	}
}
