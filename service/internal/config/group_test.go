package config

import (
	"strings"
	"testing"
)

// A profile's scope: a group path, a project path, or neither; never both.
func TestProfileScopeValidation(t *testing.T) {
	base := "version = 1\n[runner]\nconcurrent = 2\n[[runner.profiles]]\nname = \"default\"\nimage = \"alpine:3.22\"\nrun_untagged = true\n[[runner.profiles]]\nname = \"p\"\nimage = \"alpine:3.22\"\ntags = [\"x\"]\n"
	for _, tc := range []struct{ name, extra, wantKey, wantMsg string }{
		{"group and project", "group = \"team\"\nproject = \"team/app\"\n", "runner.profiles[1].group", "a runner belongs to one group or one project"},
		{"group path with a space", "group = \"my team\"\n", "runner.profiles[1].group", "not a group path"},
		{"group path with a trailing slash", "group = \"team/\"\n", "runner.profiles[1].group", "not a group path"},
		{"project without its namespace", "project = \"app\"\n", "runner.profiles[1].project", "not a project path"},
		{"misspelt key", "groups = \"team\"\n", "runner.profiles.groups", "unknown key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(base + tc.extra))
			if err == nil || !strings.Contains(err.Error(), tc.wantKey) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("got %v, want %s: %s", err, tc.wantKey, tc.wantMsg)
			}
		})
	}
	for _, ok := range []string{"group = \"team\"\n", "group = \"team/sub.x\"\n", "project = \"team/sub/app\"\n"} {
		cfg, err := Parse([]byte(base + ok))
		if err != nil {
			t.Fatalf("%q: %v", ok, err)
		}
		if p := cfg.Runner.Profiles[1]; p.Group+p.Project == "" {
			t.Errorf("%q: the scope was not read: %+v", ok, p)
		}
	}
}
