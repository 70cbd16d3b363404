package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// lines joins source lines with newlines, so that line numbers in a test are easy to count:
// the n-th argument is line n.
func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

// parseErrs parses src, which must fail with an *Errors, and returns its list.
func parseErrs(t *testing.T, src string) []FieldError {
	t.Helper()
	c, err := Parse([]byte(src))
	if err == nil {
		t.Fatalf("Parse accepted:\n%s\ngot %+v", src, c)
	}
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse error is %T (%v), want *Errors", err, err)
	}
	if len(errs.List) == 0 {
		t.Fatalf("*Errors with an empty list")
	}
	return errs.List
}

// errFor returns the one error for key, failing the test when there is none.
func errFor(t *testing.T, list []FieldError, key string) FieldError {
	t.Helper()
	for _, fe := range list {
		if fe.Key == key {
			return fe
		}
	}
	t.Fatalf("no error for key %q in %+v", key, list)
	return FieldError{}
}

func mustParse(t *testing.T, src string) Config {
	t.Helper()
	c, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse(%q): %v", src, err)
	}
	return c
}

func TestDefault(t *testing.T) {
	d := Default() // panics if the embedded file is invalid
	if d.Version != CurrentVersion {
		t.Errorf("Version = %d, want %d", d.Version, CurrentVersion)
	}
	c, err := Parse(DefaultTOML())
	if err != nil {
		t.Fatalf("Parse(DefaultTOML()): %v", err)
	}
	if !reflect.DeepEqual(c, d) {
		t.Errorf("Parse(DefaultTOML()) = %+v, Default() = %+v", c, d)
	}
	// Spot checks against default.toml, so a decoder that silently drops values fails here.
	want := map[string]any{
		"stack.name":             "forgebox",
		"stack.data_dir":         "/var/lib/forgebox",
		"stack.pull_policy":      "missing",
		"postgres.image":         "postgres:17-alpine",
		"gitlab.http_port":       30080,
		"gitlab.ssh_port":        30022,
		"gitlab.flavour":         "sameersbn",
		"runner.concurrent":      2,
		"len(runner.profiles)":   1,
		"runner.profiles[0]":     "default",
		"runner.profiles[0].tag": "docker",
		"backup.schedule":        "03:30",
		"backup.keep":            7,
		"backup.dir":             "",
	}
	got := map[string]any{
		"stack.name":             d.Stack.Name,
		"stack.data_dir":         d.Stack.DataDir,
		"stack.pull_policy":      d.Stack.PullPolicy,
		"postgres.image":         d.Postgres.Image,
		"gitlab.http_port":       d.GitLab.HTTPPort,
		"gitlab.ssh_port":        d.GitLab.SSHPort,
		"gitlab.flavour":         d.GitLab.Flavour,
		"runner.concurrent":      d.Runner.Concurrent,
		"len(runner.profiles)":   len(d.Runner.Profiles),
		"runner.profiles[0]":     "",
		"runner.profiles[0].tag": "",
		"backup.schedule":        d.Backup.Schedule,
		"backup.keep":            d.Backup.Keep,
		"backup.dir":             d.Backup.Dir,
	}
	if len(d.Runner.Profiles) > 0 {
		got["runner.profiles[0]"] = d.Runner.Profiles[0].Name
		if len(d.Runner.Profiles[0].Tags) > 0 {
			got["runner.profiles[0].tag"] = d.Runner.Profiles[0].Tags[0]
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults = %v, want %v", got, want)
	}
}

func TestDefaultTOMLIsACopy(t *testing.T) {
	a := DefaultTOML()
	orig := bytes.Clone(a)
	for i := range a {
		a[i] = 'x'
	}
	if b := DefaultTOML(); !bytes.Equal(b, orig) {
		t.Fatal("changing the slice DefaultTOML returned changed the embedded defaults")
	}
	if !bytes.Contains(orig, []byte("# ")) {
		t.Error("DefaultTOML lost its comments")
	}
}

func TestDefaultIsFreshEachCall(t *testing.T) {
	a := Default()
	a.Runner.Profiles[0].Tags[0] = "changed"
	a.Runner.Profiles[0].Name = "changed"
	if b := Default(); b.Runner.Profiles[0].Name != "default" || b.Runner.Profiles[0].Tags[0] != "docker" {
		t.Fatalf("Default() shares state between calls: %+v", b.Runner.Profiles)
	}
}

func TestEmptyFileGivesDefaults(t *testing.T) {
	for _, src := range []string{"", "\n", "# only a comment\n"} {
		if c := mustParse(t, src); !reflect.DeepEqual(c, Default()) {
			t.Errorf("Parse(%q) = %+v, want the defaults", src, c)
		}
	}
}

func TestOneKeyKeepsOtherDefaults(t *testing.T) {
	c := mustParse(t, lines("[gitlab]", "http_port = 31080"))
	want := Default()
	want.GitLab.HTTPPort = 31080
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
	if c.GitLab.HTTPPort == Default().GitLab.HTTPPort {
		t.Error("http_port from the file was not applied")
	}
}

func TestUserProfilesReplaceDefaults(t *testing.T) {
	c := mustParse(t, lines(
		"[[runner.profiles]]",
		`name = "node"`,
		`image = "node:22"`,
		`tags = ["node", "js"]`,
		"",
		"[[runner.profiles]]",
		`name = "go"`,
		`image = "golang:1.26"`,
		`tags = ["go"]`,
		"concurrency = 3",
	))
	want := []Profile{
		{Name: "node", Image: "node:22", Tags: []string{"node", "js"}, Concurrency: 1},
		{Name: "go", Image: "golang:1.26", Tags: []string{"go"}, Concurrency: 3},
	}
	if !reflect.DeepEqual(c.Runner.Profiles, want) {
		t.Errorf("profiles = %+v\nwant %+v", c.Runner.Profiles, want)
	}
}

// The user's first profile must not inherit fields of the default profile it replaces.
func TestUserProfileDoesNotInheritDefaultProfile(t *testing.T) {
	c := mustParse(t, lines(
		"[[runner.profiles]]",
		`name = "build"`,
		`image = "alpine:3.22"`,
		"run_untagged = true",
	))
	want := []Profile{{Name: "build", Image: "alpine:3.22", RunUntagged: true, Concurrency: 1}}
	if !reflect.DeepEqual(c.Runner.Profiles, want) {
		t.Errorf("profiles = %+v\nwant %+v (no tags from the default profile)", c.Runner.Profiles, want)
	}

	// No tags, and run_untagged left out: the default profile's run_untagged = true must not
	// make this profile valid.
	src := lines(
		"version = 1",
		"[[runner.profiles]]",
		`name = "build"`,
		`image = "alpine:3.22"`,
	)
	fe := errFor(t, parseErrs(t, src), "runner.profiles[0].tags")
	if fe.Line != 2 {
		t.Errorf("Line = %d, want 2 (the profile's table header)", fe.Line)
	}
}

func TestEmptyProfileListRejected(t *testing.T) {
	fe := errFor(t, parseErrs(t, lines("[runner]", "profiles = []")), "runner.profiles")
	if !strings.Contains(fe.Msg, "no runner profile") {
		t.Errorf("Msg = %q", fe.Msg)
	}
}

func TestProfileConcurrencyDefaultsToOne(t *testing.T) {
	c := mustParse(t, lines(
		"[[runner.profiles]]", `name = "a"`, `image = "alpine"`, `tags = ["a"]`,
		"[[runner.profiles]]", `name = "b"`, `image = "alpine"`, `tags = ["b"]`, "concurrency = 0",
		"[[runner.profiles]]", `name = "c"`, `image = "alpine"`, `tags = ["c"]`, "concurrency = 5",
		"[runner]", "concurrent = 3",
	))
	got := []int{}
	for _, p := range c.Runner.Profiles {
		got = append(got, p.Concurrency)
	}
	if want := []int{1, 1, 5}; !reflect.DeepEqual(got, want) {
		t.Errorf("concurrency = %v, want %v", got, want)
	}
}

func TestUnknownKeys(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		key       string
		line      int
		hintHas   []string
		hintNot   string
		hintWhere string
	}{
		{
			name: "top level",
			src:  lines("version = 1", "verison = 1", "[stack]", `name = "x"`),
			key:  "verison", line: 2,
			hintHas: []string{"version", "stack", "gitlab", "runner", "postgres", "redis", "backup"}, hintWhere: "top level",
		},
		{
			name: "backup",
			src:  lines("[backup]", `schedule = "02:00"`, "kept = 3"),
			key:  "backup.kept", line: 3,
			hintHas: []string{"schedule", "keep", "dir"}, hintWhere: "[backup]",
		},
		{
			name: "gitlab",
			src:  lines("version = 1", "", "[gitlab]", "# the web port", "http_port = 31080", "htp_port = 31081"),
			key:  "gitlab.htp_port", line: 6,
			hintHas: []string{"http_port", "ssh_port", "admin_email", "flavour", "host", "image", "memory"}, hintWhere: "[gitlab]",
		},
		{
			name: "second runner profile",
			src: lines(
				"[[runner.profiles]]", // 1
				`name = "a"`,
				`image = "alpine"`,
				`tags = ["a"]`,
				"",
				"[[runner.profiles]]", // 6
				`name = "b"`,
				`image = "alpine"`,
				`tag = ["b"]`, // 9
			),
			key: "runner.profiles.tag", line: 9,
			hintHas: []string{"tags", "run_untagged", "cpus", "memory", "concurrency", "privileged", "name", "image"},
			hintNot: "helper_image", hintWhere: "[runner.profiles]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list := parseErrs(t, tt.src)
			if len(list) != 1 {
				t.Fatalf("want 1 error, got %+v", list)
			}
			fe := list[0]
			if fe.Key != tt.key || fe.Line != tt.line {
				t.Errorf("Key, Line = %q, %d; want %q, %d", fe.Key, fe.Line, tt.key, tt.line)
			}
			if fe.Msg != "unknown key" {
				t.Errorf("Msg = %q", fe.Msg)
			}
			for _, h := range tt.hintHas {
				if !strings.Contains(fe.Hint, h) {
					t.Errorf("Hint %q does not list %q", fe.Hint, h)
				}
			}
			if !strings.Contains(fe.Hint, tt.hintWhere) {
				t.Errorf("Hint %q does not say where (%q)", fe.Hint, tt.hintWhere)
			}
			if tt.hintNot != "" && strings.Contains(fe.Hint, tt.hintNot) {
				t.Errorf("Hint %q lists %q, which belongs to another table", fe.Hint, tt.hintNot)
			}
			if s := fe.Error(); !strings.Contains(s, tt.key) || !strings.Contains(s, "line ") {
				t.Errorf("Error() = %q does not name key and line", s)
			}
		})
	}
}

func TestSeveralUnknownKeysAllReported(t *testing.T) {
	list := parseErrs(t, lines("foo = 1", "[gitlab]", "bar = 2", "[stack]", "baz = 3"))
	got := map[string]int{}
	for _, fe := range list {
		got[fe.Key] = fe.Line
	}
	want := map[string]int{"foo": 1, "gitlab.bar": 3, "stack.baz": 5}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestWrongType(t *testing.T) {
	tests := []struct {
		src  string
		key  string
		line int
	}{
		{lines("version = 1", "[gitlab]", `http_port = "80"`), "gitlab.http_port", 3},
		{lines(`version = "1"`), "version", 1},
		{lines("[stack]", "name = 5"), "stack.name", 2},
		{lines("[[runner.profiles]]", `name = "a"`, `tags = "docker"`), "runner.profiles.tags", 3},
		{lines("[[runner.profiles]]", `name = "a"`, `privileged = "yes"`), "runner.profiles.privileged", 3},
	}
	for _, tt := range tests {
		list := parseErrs(t, tt.src)
		if len(list) != 1 {
			t.Errorf("%q: want 1 error, got %+v", tt.src, list)
			continue
		}
		fe := list[0]
		if fe.Key != tt.key || fe.Line != tt.line {
			t.Errorf("%q: Key, Line = %q, %d; want %q, %d", tt.src, fe.Key, fe.Line, tt.key, tt.line)
		}
		if !strings.Contains(fe.Msg, "wrong type") {
			t.Errorf("%q: Msg = %q, want it to say wrong type", tt.src, fe.Msg)
		}
	}
}

func TestSyntaxError(t *testing.T) {
	tests := []struct {
		src  string
		line int
	}{
		{lines("version = 1", "", "[gitlab]", "http_port = 30080 30081"), 4},
		{lines("version = 1", "[stack]", `name = "forgebox`), 3},
		{lines("version = 1", "[stack]", "name = forgebox"), 3},
		{lines("[stack]", `name = "a"`, `name = "b"`), 3},
	}
	for _, tt := range tests {
		list := parseErrs(t, tt.src)
		if len(list) != 1 {
			t.Errorf("%q: want 1 error, got %+v", tt.src, list)
			continue
		}
		if list[0].Line != tt.line {
			t.Errorf("%q: Line = %d, want %d (%v)", tt.src, list[0].Line, tt.line, list[0])
		}
		if list[0].Msg == "" {
			t.Errorf("%q: empty message", tt.src)
		}
	}
}

func TestPorts(t *testing.T) {
	for _, p := range []string{"0", "-1", "65536", "70000"} {
		for _, key := range []string{"http_port", "ssh_port"} {
			fe := errFor(t, parseErrs(t, lines("[gitlab]", key+" = "+p)), "gitlab."+key)
			if fe.Line != 2 || !strings.Contains(fe.Msg, "not a port") || !strings.Contains(fe.Hint, "1 to 65535") {
				t.Errorf("%s = %s: %+v", key, p, fe)
			}
		}
	}
	for port, what := range DSMReservedPorts {
		for _, key := range []string{"http_port", "ssh_port"} {
			src := lines("version = 1", "[gitlab]", key+" = "+strconv.Itoa(port))
			fe := errFor(t, parseErrs(t, src), "gitlab."+key)
			if fe.Line != 3 || !strings.Contains(fe.Msg, "DSM") || !strings.Contains(fe.Msg, what) {
				t.Errorf("%s = %d: %+v, want line 3 and a message naming DSM", key, port, fe)
			}
		}
	}
	for _, p := range []int{22, 80, 443, 5000, 5001, 5432} {
		if DSMReservedPorts[p] == "" {
			t.Errorf("port %d is not in DSMReservedPorts", p)
		}
	}
	// Edges that are fine.
	mustParse(t, lines("[gitlab]", "http_port = 1", "ssh_port = 65535"))
	mustParse(t, lines("[gitlab]", "http_port = 8080", "ssh_port = 2222"))

	list := parseErrs(t, lines("[gitlab]", "http_port = 31000", "ssh_port = 31000"))
	fe := errFor(t, list, "gitlab.ssh_port")
	if fe.Line != 3 || !strings.Contains(fe.Msg, "http_port") {
		t.Errorf("same port: %+v", fe)
	}
	// Setting only http_port to the default SSH port also collides.
	errFor(t, parseErrs(t, lines("[gitlab]", "http_port = 30022")), "gitlab.ssh_port")
}

func TestImages(t *testing.T) {
	bad := []struct{ ref, msg string }{
		{"Postgres:17", "not a valid image reference"},
		{"postgres 17", "not a valid image reference"},
		{"postgres:", "not a valid image reference"},
		{"", "missing"},
	}
	for _, b := range bad {
		for _, tbl := range []string{"postgres", "redis", "gitlab", "runner"} {
			src := lines("version = 1", "["+tbl+"]", "image = "+quote(b.ref))
			fe := errFor(t, parseErrs(t, src), tbl+".image")
			if fe.Line != 3 || !strings.Contains(fe.Msg, b.msg) || fe.Hint == "" {
				t.Errorf("%s.image = %q: %+v", tbl, b.ref, fe)
			}
		}

		src := lines(
			"[[runner.profiles]]", // 1
			`name = "a"`,
			`image = "alpine:3.22"`,
			`tags = ["a"]`,
			"", // 5
			"[[runner.profiles]]",
			`name = "b"`,
			`tags = ["b"]`,
			"image = "+quote(b.ref), // 9
		)
		list := parseErrs(t, src)
		fe := errFor(t, list, "runner.profiles[1].image")
		if fe.Line != 9 || !strings.Contains(fe.Msg, b.msg) {
			t.Errorf("runner.profiles[1].image = %q: %+v, want line 9", b.ref, fe)
		}
		if len(list) != 1 {
			t.Errorf("the first profile's image was blamed too: %+v", list)
		}
	}

	bad1 := parseErrs(t, lines("[runner]", `helper_image = "Bad Image"`))
	if fe := errFor(t, bad1, "runner.helper_image"); fe.Line != 2 {
		t.Errorf("helper_image: %+v", fe)
	}

	for _, ok := range []string{
		"postgres", "postgres:17-alpine", "docker.io/library/postgres:17",
		"registry.example.com:5000/team/gitlab:18.5.1",
		"alpine@sha256:" + strings.Repeat("a", 64),
	} {
		mustParse(t, lines("[postgres]", "image = "+quote(ok)))
	}
}

func quote(s string) string { return `"` + s + `"` }

func TestInvalidValues(t *testing.T) {
	profile := func(extra ...string) string {
		return lines(append([]string{
			"version = 1",         // 1
			"[[runner.profiles]]", // 2
			`name = "p"`,          // 3
			`image = "alpine"`,    // 4
			`tags = ["t"]`,        // 5
		}, extra...)...) // extra starts at line 6
	}
	tests := []struct {
		name    string
		src     string
		key     string
		line    int
		msgHas  string
		hintHas string
	}{
		{"version zero", lines("version = 0"), "version", 1, "missing", "version = 1"},
		{"future version", lines("# comment", "version = 2"), "version", 2, "newer", "upgrade"},
		{"negative version", lines("version = -1"), "version", 1, "not supported", "1"},

		{"backup schedule word", lines("[backup]", `schedule = "daily"`), "backup.schedule", 2, "not a time of day", "HH:MM"},
		{"backup schedule 24h", lines("[backup]", `schedule = "24:00"`), "backup.schedule", 2, "not a time of day", "HH:MM"},
		{"backup schedule no zero", lines("[backup]", `schedule = "3:30"`), "backup.schedule", 2, "not a time of day", "03:30"},
		{"backup keep zero", lines("[backup]", "keep = 0"), "backup.keep", 2, "out of range", "1 to 1000"},
		{"backup keep huge", lines("[backup]", "keep = 5000"), "backup.keep", 2, "out of range", "1 to 1000"},
		{"backup dir relative", lines("[backup]", `dir = "backups"`), "backup.dir", 2, "not an absolute path", "absolute"},
		{"backup dir root", lines("[backup]", `dir = "/"`), "backup.dir", 2, "root directory", ""},

		{"stack name uppercase", lines("[stack]", `name = "Forgebox"`), "stack.name", 2, "not a valid stack name", "lowercase"},
		{"stack name space", lines("[stack]", `name = "forge box"`), "stack.name", 2, "not a valid stack name", ""},
		{"stack name digit first", lines("[stack]", `name = "1forge"`), "stack.name", 2, "not a valid stack name", ""},
		{"stack name empty", lines("[stack]", `name = ""`), "stack.name", 2, "not a valid stack name", ""},
		{"stack name too long", lines("[stack]", `name = "`+strings.Repeat("a", 31)+`"`), "stack.name", 2, "not a valid stack name", "30"},

		{"relative data_dir", lines("[stack]", `data_dir = "var/lib/forgebox"`), "stack.data_dir", 2, "not an absolute path", ""},
		{"dot data_dir", lines("[stack]", `data_dir = "./data"`), "stack.data_dir", 2, "not an absolute path", ""},
		{"root data_dir", lines("[stack]", `data_dir = "/"`), "stack.data_dir", 2, "root directory", ""},
		{"root data_dir unclean", lines("[stack]", `data_dir = "//"`), "stack.data_dir", 2, "root directory", ""},
		{"empty data_dir", lines("[stack]", `data_dir = ""`), "stack.data_dir", 2, "missing", ""},
		{"relative share_dir", lines("[stack]", `share_dir = "share"`), "stack.share_dir", 2, "not an absolute path", ""},
		{"root share_dir", lines("[stack]", `share_dir = "/"`), "stack.share_dir", 2, "root directory", ""},
		{"pull_policy", lines("[stack]", `pull_policy = "sometimes"`), "stack.pull_policy", 2, `"sometimes" is not allowed`, "allowed: missing, always, never"},
		{"pull_policy empty", lines("[stack]", `pull_policy = ""`), "stack.pull_policy", 2, "missing", "always"},
		{"pull_via", lines("[stack]", `pull_via = "torrent"`), "stack.pull_via", 2, `"torrent" is not allowed`, "allowed: auto, engine, forgebox"},
		{"mirror not a URL", lines("[stack]", `registry_mirrors = ["mirror.example"]`), "stack.registry_mirrors", 2, "entry 1: \"mirror.example\" is not an http:// or https:// URL", "Docker Hub mirror"},
		{"mirror with a path", lines("[stack]", `registry_mirrors = ["https://m.example/v2"]`), "stack.registry_mirrors", 2, "has a path", "registry.gitlab.com="},
		{"mirrors with the engine's pull", lines("[stack]", `pull_via = "engine"`, `registry_mirrors = ["https://m.example"]`), "stack.registry_mirrors", 3, "pull_via is \"engine\"", "daemon.json"},

		{"superuser gitlab", lines("[postgres]", `superuser = "gitlab"`), "postgres.superuser", 2, "gitlab", ""},
		{"superuser invalid", lines("[postgres]", `superuser = "Post Gres"`), "postgres.superuser", 2, "role name", ""},

		{"flavour", lines("[gitlab]", `flavour = "ce"`), "gitlab.flavour", 2, `"ce" is not allowed`, "allowed: sameersbn, omnibus"},
		{"memory", lines("[gitlab]", `memory = "huge"`), "gitlab.memory", 2, `"huge" is not allowed`, "allowed: small, standard"},
		{"host localhost", lines("[gitlab]", `host = "localhost"`), "gitlab.host", 2, "only works on this machine", "nas"},
		{"host LOCALHOST", lines("[gitlab]", `host = "LocalHost"`), "gitlab.host", 2, "only works on this machine", ""},
		{"host 127.0.0.1", lines("[gitlab]", `host = "127.0.0.1"`), "gitlab.host", 2, "clone URLs", ""},
		{"host 127.1.2.3", lines("[gitlab]", `host = "127.1.2.3"`), "gitlab.host", 2, "clone URLs", ""},
		{"host 0.0.0.0", lines("[gitlab]", `host = "0.0.0.0"`), "gitlab.host", 2, "clone URLs", ""},
		{"host ::1", lines("[gitlab]", `host = "::1"`), "gitlab.host", 2, "clone URLs", ""},
		{"host with scheme", lines("[gitlab]", `host = "http://nas.local"`), "gitlab.host", 2, "not a host name", "without scheme"},
		{"host with port", lines("[gitlab]", `host = "nas.local:8080"`), "gitlab.host", 2, "not a host name", ""},
		{"time zone quote", lines("[gitlab]", `time_zone = "Europe/Berlin'"`), "gitlab.time_zone", 2, "not a time zone name", "Europe/Berlin"},
		{"time zone offset", lines("[gitlab]", `time_zone = "+02:00"`), "gitlab.time_zone", 2, "not a time zone name", ""},
		{"email no at", lines("[gitlab]", `admin_email = "admin"`), "gitlab.admin_email", 2, "not an e-mail address", "admin@example.com"},
		{"email no domain", lines("[gitlab]", `admin_email = "admin@"`), "gitlab.admin_email", 2, "not an e-mail address", ""},
		{"email empty", lines("[gitlab]", `admin_email = ""`), "gitlab.admin_email", 2, "not an e-mail address", ""},
		{"email display name", lines("[gitlab]", `admin_email = "Admin <admin@example.com>"`), "gitlab.admin_email", 2, "not an e-mail address", ""},
		{"email spaces", lines("[gitlab]", `admin_email = " admin@example.com"`), "gitlab.admin_email", 2, "not an e-mail address", ""},

		{"runner concurrent 0", lines("[runner]", "concurrent = 0"), "runner.concurrent", 2, "out of range", "1 to 64"},
		{"runner concurrent 65", lines("[runner]", "concurrent = 65"), "runner.concurrent", 2, "out of range", "1 to 64"},
		{"runner concurrent below profiles", lines("[runner]", "concurrent = 1",
			"[[runner.profiles]]", `name = "a"`, `image = "alpine"`, "run_untagged = true",
			"[[runner.profiles]]", `name = "b"`, `image = "alpine"`, "run_untagged = true"),
			"runner.concurrent", 2, "below the number of runner profiles (2)", "at least 2"},

		{"profile name missing", lines("[[runner.profiles]]", `image = "alpine"`, `tags = ["t"]`), "runner.profiles[0].name", 1, "missing", ""},
		{"profile name invalid", lines("[[runner.profiles]]", `name = "My Profile"`, `image = "alpine"`, `tags = ["t"]`), "runner.profiles[0].name", 2, "not a valid profile name", ""},
		{"no tags, not untagged", lines("version = 1", "[[runner.profiles]]", `name = "p"`, `image = "alpine"`, `tags = []`, "run_untagged = false"),
			"runner.profiles[0].tags", 5, "never get a job", "run_untagged = true"},
		{"duplicate tag", lines("[[runner.profiles]]", `name = "p"`, `image = "alpine"`, `tags = ["a", "b", "a"]`),
			"runner.profiles[0].tags", 4, `tag "a" is listed twice`, ""},
		{"tag with comma", lines("[[runner.profiles]]", `name = "p"`, `image = "alpine"`, `tags = ["a,b"]`), "runner.profiles[0].tags", 4, "not a valid tag", ""},
		{"tag with space", lines("[[runner.profiles]]", `name = "p"`, `image = "alpine"`, `tags = [" a"]`), "runner.profiles[0].tags", 4, "not a valid tag", ""},
		{"empty tag", lines("[[runner.profiles]]", `name = "p"`, `image = "alpine"`, `tags = [""]`), "runner.profiles[0].tags", 4, "not a valid tag", ""},
		{"cpus abc", profile(`cpus = "abc"`), "runner.profiles[0].cpus", 6, "not a CPU count", ""},
		{"cpus 0", profile(`cpus = "0"`), "runner.profiles[0].cpus", 6, "not a CPU count", ""},
		{"cpus negative", profile(`cpus = "-1"`), "runner.profiles[0].cpus", 6, "not a CPU count", ""},
		{"cpus too many", profile(`cpus = "300"`), "runner.profiles[0].cpus", 6, "not a CPU count", ""},
		{"cpus NaN", profile(`cpus = "NaN"`), "runner.profiles[0].cpus", 6, "not a CPU count", ""},
		{"memory lots", profile(`memory = "lots"`), "runner.profiles[0].memory", 6, "not a memory size", "512m"},
		{"memory 1k", profile(`memory = "1k"`), "runner.profiles[0].memory", 6, "at least 6m", ""},
		{"memory 5m", profile(`memory = "5m"`), "runner.profiles[0].memory", 6, "at least 6m", ""},
		{"concurrency 100", profile("concurrency = 100"), "runner.profiles[0].concurrency", 6, "out of range", "1 to 64"},
		{"concurrency -1", profile("concurrency = -1"), "runner.profiles[0].concurrency", 6, "out of range", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list := parseErrs(t, tt.src)
			if len(list) != 1 {
				t.Errorf("want exactly 1 error, got %+v", list)
			}
			fe := errFor(t, list, tt.key)
			if fe.Line != tt.line {
				t.Errorf("Line = %d, want %d (%v)", fe.Line, tt.line, fe)
			}
			if !strings.Contains(fe.Msg, tt.msgHas) {
				t.Errorf("Msg = %q, want it to contain %q", fe.Msg, tt.msgHas)
			}
			if !strings.Contains(fe.Hint, tt.hintHas) {
				t.Errorf("Hint = %q, want it to contain %q", fe.Hint, tt.hintHas)
			}
			if fe.Hint == "" {
				t.Errorf("no hint: %v", fe)
			}
		})
	}
}

func TestValidValues(t *testing.T) {
	for _, src := range []string{
		lines("[gitlab]", `host = "nas.local"`),
		lines("[gitlab]", `host = "192.168.1.10"`),
		lines("[gitlab]", `host = "git"`),
		lines("[gitlab]", `flavour = "omnibus"`, `memory = "standard"`),
		lines("[gitlab]", `admin_email = "root@nas.example.org"`),
		lines("[stack]", `name = "a"`, `data_dir = "/volume1/forgebox/"`, `share_dir = "/volume1/share"`, `pull_policy = "never"`),
		lines("[stack]", `name = "`+strings.Repeat("a", 30)+`"`, `pull_policy = "always"`),
		lines("[backup]", `schedule = ""`, "keep = 1", `dir = "/volume1/backups"`),
		lines("[backup]", `schedule = "23:59"`, "keep = 1000"),
		lines("[backup]", `schedule = "00:00"`),
		lines("[runner]", "concurrent = 64", `helper_image = "gitlab/gitlab-runner-helper:x86_64-v18.5.0"`),
		lines("[[runner.profiles]]", `name = "u"`, `image = "alpine"`, "run_untagged = true"),
		lines("[[runner.profiles]]", `name = "p_1-x"`, `image = "alpine"`, `tags = ["a b", "c"]`,
			`cpus = "1.5"`, `memory = "512m"`, "concurrency = 64", "privileged = true"),
		lines("[[runner.profiles]]", `name = "p"`, `image = "alpine"`, `tags = ["a"]`, `cpus = "256"`, `memory = "6m"`),
	} {
		mustParse(t, src)
	}
}

func TestDuplicateProfileNames(t *testing.T) {
	src := lines(
		"[[runner.profiles]]", // 1
		`name = "build"`,
		`image = "alpine"`,
		`tags = ["a"]`,
		"[[runner.profiles]]", // 5
		`name = "test"`,
		`image = "alpine"`,
		`tags = ["b"]`,
		"[[runner.profiles]]", // 9
		`image = "alpine"`,
		`name = "build"`, // 11
		`tags = ["c"]`,
		"[runner]", "concurrent = 3",
	)
	list := parseErrs(t, src)
	if len(list) != 1 {
		t.Fatalf("want 1 error, got %+v", list)
	}
	fe := errFor(t, list, "runner.profiles[2].name")
	if fe.Line != 11 || !strings.Contains(fe.Msg, "defined twice") || !strings.Contains(fe.Hint, "runner.profiles[0]") {
		t.Errorf("%+v", fe)
	}
}

func TestSeveralProblemsAllReported(t *testing.T) {
	src := lines(
		"version = 1", // 1
		"[stack]",
		`name = "Bad Name"`, // 3
		`data_dir = "relative"`,
		"[gitlab]",
		"http_port = 80", // 6
		`host = "localhost"`,
		"[[runner.profiles]]",
		`name = "p"`,
		`image = "Alpine"`, // 10
		`tags = ["x"]`,
		"concurrency = 100",
	)
	_, err := Parse([]byte(src))
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v (%T), want *Errors", err, err)
	}
	want := map[string]int{
		"stack.name":                     3,
		"stack.data_dir":                 4,
		"gitlab.http_port":               6,
		"gitlab.host":                    7,
		"runner.profiles[0].image":       10,
		"runner.profiles[0].concurrency": 12,
	}
	got := map[string]int{}
	for _, fe := range errs.List {
		got[fe.Key] = fe.Line
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "6 problems:") {
		t.Errorf("Error() = %q, want it to start with the count", msg)
	}
	for k := range want {
		if !strings.Contains(msg, k) {
			t.Errorf("Error() does not mention %s", k)
		}
	}
}

func TestErrorFormatting(t *testing.T) {
	fe := FieldError{Key: "gitlab.http_port", Line: 7, Msg: "bad", Hint: "use 30080"}
	if got, want := fe.Error(), "gitlab.http_port (line 7): bad; use 30080"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := (FieldError{Msg: "broken"}).Error(), "config: broken"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	one := &Errors{List: []FieldError{fe}}
	if one.Error() != fe.Error() {
		t.Errorf("one error: %q", one.Error())
	}
	two := &Errors{List: []FieldError{fe, {Key: "x", Msg: "y"}}}
	if got, want := two.Error(), "2 problems:\n  gitlab.http_port (line 7): bad; use 30080\n  x: y"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "missing.toml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}

	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte(lines("version = 1", "[gitlab]", "ssh_port = 22")), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	var errs *Errors
	if !errors.As(err, &errs) || !strings.Contains(err.Error(), bad) {
		t.Fatalf("err = %v, want *Errors naming the file", err)
	}
	if fe := errFor(t, errs.List, "gitlab.ssh_port"); fe.Line != 3 {
		t.Errorf("Line = %d, want 3", fe.Line)
	}

	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, []byte(lines("[stack]", `name = "nas"`)), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(good)
	if err != nil || c.Stack.Name != "nas" || c.GitLab.HTTPPort != 30080 {
		t.Errorf("Load = %+v, %v", c, err)
	}
}

// custom is a valid config that differs from the defaults almost everywhere.
func custom() Config {
	c := Default()
	c.Stack = Stack{Name: "nas", DataDir: "/volume1/forgebox", ShareDir: "/volume1/gitlab", PullPolicy: "never", PullVia: "forgebox", RegistryMirrors: []string{"https://mirror.example", "registry.gitlab.com=http://10.0.0.5:5000"}}
	c.Postgres = Postgres{Image: "postgres:16", Superuser: "pgadmin"}
	c.Redis.Image = "redis:7.4"
	c.GitLab = GitLab{Flavour: "omnibus", Image: "gitlab/gitlab-ce:18.5.1-ce.0", Host: "nas.local",
		HTTPPort: 31080, SSHPort: 31022, Memory: "standard", AdminEmail: "me@nas.local"}
	c.Runner = Runner{
		Image: "gitlab/gitlab-runner:alpine-v18.5.0", HelperImage: "gitlab/gitlab-runner-helper:x86_64-v18.5.0",
		Concurrent: 4,
		Profiles: []Profile{
			{Name: "untagged", Image: "alpine:3.22", RunUntagged: true, Concurrency: 1},
			{Name: "heavy", Image: "golang:1.26", Tags: []string{"go", "heavy"}, Privileged: true,
				CPUs: "2.5", Memory: "2g", Concurrency: 2},
		},
	}
	return c
}

// oneUntagged has a single profile without tags, which must not pick up the default's tags
// when it is read back.
func oneUntagged() Config {
	c := Default()
	c.Runner.Profiles = []Profile{{Name: "any", Image: "debian:13", RunUntagged: true, Concurrency: 3}}
	return c
}

func roundTripConfigs() map[string]Config {
	return map[string]Config{"default": Default(), "custom": custom(), "one untagged profile": oneUntagged()}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	for name, c := range roundTripConfigs() {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "forgebox.toml")
			if err := Save(path, c); err != nil {
				t.Fatalf("Save: %v", err)
			}
			got, err := Load(path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(got, c) {
				t.Errorf("Load after Save:\n got %+v\nwant %+v", got, c)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o644 {
				t.Errorf("mode = %v, want 0644", st.Mode().Perm())
			}
			assertNoTempFiles(t, filepath.Dir(path))
		})
	}
}

func TestSaveInvalidKeepsOldFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "forgebox.toml")
	old := []byte("# hand-written\nversion = 1\n")
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	c := Default()
	c.GitLab.HTTPPort = 5000
	c.Stack.DataDir = "relative"
	err := Save(path, c)
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Save of an invalid config: err = %v, want *Errors", err)
	}
	if len(errs.List) != 2 {
		t.Errorf("want 2 problems, got %+v", errs.List)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, old) {
		t.Errorf("file changed to %q (%v)", got, err)
	}
	assertNoTempFiles(t, filepath.Dir(path))

	// An invalid config is never written where no file was either.
	fresh := filepath.Join(t.TempDir(), "new.toml")
	if err := Save(fresh, c); err == nil {
		t.Fatal("Save accepted an invalid config")
	}
	if _, err := os.Stat(fresh); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("invalid config was written: %v", err)
	}
}

func TestSaveReplacesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "forgebox.toml")
	if err := Save(path, Default()); err != nil {
		t.Fatal(err)
	}
	c := custom()
	if err := Save(path, c); err != nil {
		t.Fatal(err)
	}
	if got, err := Load(path); err != nil || !reflect.DeepEqual(got, c) {
		t.Errorf("second Save not read back: %+v, %v", got, err)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	for name, c := range roundTripConfigs() {
		b, err := Encode(c)
		if err != nil {
			t.Fatalf("%s: Encode: %v", name, err)
		}
		if !bytes.Contains(b, []byte("[[runner.profiles]]")) || !bytes.Contains(b, []byte("version = 1")) {
			t.Errorf("%s: unexpected encoding:\n%s", name, b)
		}
		got, err := Parse(b)
		if err != nil {
			t.Fatalf("%s: Parse(Encode(c)): %v\n%s", name, err, b)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("%s: Parse(Encode(c)):\n got %+v\nwant %+v", name, got, c)
		}
	}
}

func TestShareDirAndNetworkName(t *testing.T) {
	c := Default()
	if got := c.ShareDir(); got != "/var/lib/forgebox/share" {
		t.Errorf("ShareDir() = %q", got)
	}
	c.Stack.ShareDir = "/volume1/gitlab"
	if got := c.ShareDir(); got != "/volume1/gitlab" {
		t.Errorf("ShareDir() = %q", got)
	}
	if got := c.BackupDir(); got != "/volume1/gitlab/backups" {
		t.Errorf("BackupDir() = %q, want <share_dir>/backups", got)
	}
	c.Backup.Dir = "/volume2/backups"
	if got := c.BackupDir(); got != "/volume2/backups" {
		t.Errorf("BackupDir() = %q", got)
	}
	c.Stack.Name = "nas"
	if got := c.NetworkName(); got != "nas-internal" {
		t.Errorf("NetworkName() = %q", got)
	}
	if got := c.JobsNetworkName(); got != "nas-jobs" {
		t.Errorf("JobsNetworkName() = %q", got)
	}
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	for _, perm := range []os.FileMode{0o600, 0o644, 0o640} {
		data := []byte("content " + perm.String())
		if err := WriteFileAtomic(path, data, perm); err != nil {
			t.Fatalf("WriteFileAtomic(%v): %v", perm, err)
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("content = %q, %v; want %q", got, err, data)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != perm {
			t.Errorf("mode = %v, want %v", st.Mode().Perm(), perm)
		}
	}
	assertNoTempFiles(t, dir)
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("dir holds %d entries, want 1", len(ents))
	}
}

func TestWriteFileAtomicFailure(t *testing.T) {
	t.Run("parent is a regular file", func(t *testing.T) {
		dir := t.TempDir()
		parent := filepath.Join(dir, "notadir")
		if err := os.WriteFile(parent, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := WriteFileAtomic(filepath.Join(parent, "f"), []byte("new"), 0o600)
		if err == nil {
			t.Fatal("no error")
		}
		if !strings.Contains(err.Error(), filepath.Join(parent, "f")) {
			t.Errorf("error %q does not name the path", err)
		}
		if got, _ := os.ReadFile(parent); string(got) != "old" {
			t.Errorf("parent changed: %q", got)
		}
		assertNoTempFiles(t, dir)
	})
	t.Run("directory does not exist", func(t *testing.T) {
		dir := t.TempDir()
		if err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), []byte("new"), 0o600); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err = %v, want fs.ErrNotExist", err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("left %d entries behind", len(ents))
		}
	})
	t.Run("rename fails", func(t *testing.T) {
		// The target is a non-empty directory: the temporary file is written, the rename fails.
		dir := t.TempDir()
		target := filepath.Join(dir, "target")
		if err := os.MkdirAll(filepath.Join(target, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		inside := filepath.Join(target, "keep")
		if err := os.WriteFile(inside, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := WriteFileAtomic(target, []byte("new"), 0o600); err == nil {
			t.Fatal("no error")
		}
		if got, _ := os.ReadFile(inside); string(got) != "old" {
			t.Errorf("old content changed: %q", got)
		}
		assertNoTempFiles(t, dir)
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("dir holds %d entries, want 1", len(ents))
		}
	})
}

// The embedded defaults never make a privileged profile, so they carry no warning; a
// privileged profile in a file gets one, naming its key and line and saying what it means.
func TestPrivilegedProfileWarns(t *testing.T) {
	def := Default()
	for _, p := range def.Runner.Profiles {
		if p.Privileged {
			t.Errorf("the default profile %q is privileged", p.Name)
		}
	}
	if w := def.Warnings(defaultTOML); len(w) != 0 {
		t.Errorf("the defaults warn: %v", w)
	}
	src := []byte(strings.Replace(string(defaultTOML), "privileged = false", "privileged = true", 1))
	c, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	w := c.Warnings(src)
	if len(w) != 1 {
		t.Fatalf("warnings %v, want one", w)
	}
	wantLine := 1 + strings.Count(string(src[:strings.Index(string(src), "privileged = true")]), "\n")
	if w[0].Key != "runner.profiles[0].privileged" || w[0].Line != wantLine ||
		!strings.Contains(w[0].Msg, "the whole NAS") || !strings.Contains(w[0].Msg, `"default"`) {
		t.Errorf("warning %+v, want key runner.profiles[0].privileged at line %d saying it gives the whole NAS", w[0], wantLine)
	}
}
