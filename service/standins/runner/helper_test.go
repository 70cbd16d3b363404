package main

import (
	"os"
	"strings"
	"testing"
)

// TestForgeboxGoldenConfigHasNoWarnings reads the config.toml forgebox writes (the stack
// package's golden file) with the stand-in's copy of GitLab Runner's checks: nothing to warn.
func TestForgeboxGoldenConfigHasNoWarnings(t *testing.T) {
	b, err := os.ReadFile("../../internal/stack/testdata/runner-config.golden")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	if w := configWarnings(c); len(w) > 0 {
		t.Errorf("GitLab Runner would warn about forgebox's config.toml: %v", w)
	}
}

// TestConfigWarnings: the conditions of commands/multi.go checkConfigConcurrency, including the
// config.toml forgebox wrote before (request_concurrency left out, limit 1).
func TestConfigWarnings(t *testing.T) {
	runner := func(limit, rc int) Runner {
		return Runner{Limit: limit, RequestConcurrency: rc}
	}
	cases := []struct {
		name       string
		c          Config
		want, none []string
	}{
		{"forgebox before: limit 1, no request_concurrency", Config{Concurrent: 2, Runners: []Runner{runner(1, 0)}},
			[]string{"Request bottleneck: 1 runners", "Build limit bottleneck: 1 runners"}, []string{"Worker starvation"}},
		{"concurrent below runners", Config{Concurrent: 1, Runners: []Runner{runner(1, 2), runner(1, 2)}},
			[]string{"Worker starvation bottleneck: 'concurrent' setting (1) is less than number of runners (2)"}, []string{"Request bottleneck"}},
		{"limit 5, request_concurrency 1", Config{Concurrent: 5, Runners: []Runner{runner(5, 1)}},
			[]string{"Request bottleneck"}, []string{"Build limit"}},
		{"limit 0 (unlimited), request_concurrency 1", Config{Concurrent: 5, Runners: []Runner{runner(0, 1)}},
			[]string{"Request bottleneck"}, []string{"Build limit"}},
		{"clean", Config{Concurrent: 2, Runners: []Runner{runner(1, 2), runner(2, 2)}}, nil, []string{"bottleneck"}},
	}
	for _, tc := range cases {
		got := strings.Join(configWarnings(&tc.c), "\n")
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: warnings %q lack %q", tc.name, got, w)
			}
		}
		for _, n := range tc.none {
			if strings.Contains(got, n) {
				t.Errorf("%s: warnings %q should not say %q", tc.name, got, n)
			}
		}
	}
}

func TestHelperArch(t *testing.T) {
	for in, want := range map[string]string{"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm", "s390x": "s390x"} {
		if got := helperArch(in); got != want {
			t.Errorf("helperArch(%q) = %q, want %q", in, got, want)
		}
	}
}
