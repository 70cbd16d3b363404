package upgradepath

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func vs(list []Version) string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = v.String()
	}
	return strings.Join(out, " -> ")
}

func TestEmbeddedTableIsValid(t *testing.T) {
	tab := Load()
	if got := vs(tab.Stops); tab.Flavour != Sameersbn || got != "15.11.13 -> 16.3.6 -> 16.7.7 -> 16.11.10 -> 17.3.7 -> 17.5.5 -> 17.8.7 -> 17.11.7 -> 18.2.8 -> 18.5.7 -> 18.8.11 -> 18.11.7 -> 19.2.0" || tab.Latest.String() != "19.2.0" {
		t.Errorf("sameersbn stops: %s, latest %s", got, tab.Latest)
	}
	// Omnibus publishes later patches of four stops (omnibus-gitlab tags).
	omni := LoadFor(Omnibus)
	if got := vs(omni.Stops); omni.Flavour != Omnibus || got != "15.11.13 -> 16.3.9 -> 16.7.10 -> 16.11.10 -> 17.3.7 -> 17.5.5 -> 17.8.7 -> 17.11.7 -> 18.2.8 -> 18.5.7 -> 18.8.11 -> 18.11.11 -> 19.2.4" || omni.Latest.String() != "19.2.4" {
		t.Errorf("omnibus stops: %s, latest %s", got, omni.Latest)
	}
	for i := range tab.Stops {
		if tab.Stops[i].MinorString() != omni.Stops[i].MinorString() {
			t.Errorf("stop %d: %s and %s", i, tab.Stops[i], omni.Stops[i])
		}
	}
	// From 17.5 on, stops fall at x.2, x.5, x.8 and x.11 (docs.gitlab.com/update/upgrade_paths).
	for _, s := range tab.Stops {
		if (s.Major > 17 || (s.Major == 17 && s.Minor >= 5)) && s.Minor%3 != 2 {
			t.Errorf("stop %s is not at x.2, x.5, x.8 or x.11", s)
		}
	}
	for major, want := range map[int]int{16: 13, 17: 14, 18: 16, 19: 17} {
		if r, ok := tab.Postgres[major]; !ok || r.Min != want {
			t.Errorf("GitLab %d needs PostgreSQL %d, table says %+v", major, want, r)
		}
	}
	if !strings.Contains(StopsTOML(), "upgrade_check.rb") {
		t.Error("stops.toml no longer cites its source")
	}
}

func TestParseTableRefusesBrokenTables(t *testing.T) {
	const pg = "[[postgres]]\ngitlab_major = 18\nmin = 16\n"
	const latest = "[latest]\nsameersbn = \"18.5.7\"\nomnibus = \"18.5.7\"\n"
	stop := func(sam, omni string) string {
		return "[[stop]]\nsameersbn = \"" + sam + "\"\nomnibus = \"" + omni + "\"\n"
	}
	if _, err := ParseTable(latest + stop("18.2.8", "18.2.8") + stop("18.5.7", "18.5.7") + pg); err != nil {
		t.Fatalf("a good table: %v", err)
	}
	for name, src := range map[string]string{
		"descending":      latest + stop("18.5.7", "18.5.7") + stop("18.2.8", "18.2.8") + pg,
		"same minor":      latest + stop("18.5.1", "18.5.1") + stop("18.5.7", "18.5.7") + pg,
		"no postgres":     latest + stop("18.5.7", "18.5.7"),
		"unknown key":     latest + "latests = 1\n" + stop("18.5.7", "18.5.7") + pg,
		"bad version":     "[latest]\nsameersbn = \"18.5\"\nomnibus = \"18.5.7\"\n" + stop("18.5.7", "18.5.7") + pg,
		"old latest":      "[latest]\nsameersbn = \"18.5.7\"\nomnibus = \"18.2.0\"\n" + stop("18.5.7", "18.5.7") + pg,
		"missing patch":   latest + "[[stop]]\nsameersbn = \"18.5.7\"\n" + pg,
		"other minor":     latest + stop("18.5.7", "18.8.11") + pg,
		"unknown flavour": latest + "[[stop]]\nsameersbn = \"18.5.7\"\nomnibus = \"18.5.7\"\ncng = \"18.5.7\"\n" + pg,
	} {
		if _, err := ParseTable(src); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]string{"18.5.1": "18.5.1", "v19.2.0": "19.2.0", "18.5.1-ee": "18.5.1", "17.3.7-ce.0": "17.3.7"} {
		v, err := Parse(in)
		if err != nil || v.String() != want {
			t.Errorf("Parse(%q) = %v, %v; want %s", in, v, err, want)
		}
	}
	for _, in := range []string{"", "18.5", "latest", "18.5.x", "1.2.3.4"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
}

func TestWalk(t *testing.T) {
	tab := Load()
	cases := []struct{ from, to, want string }{
		{"18.5.1", "19.2.0", "18.5.7 -> 18.8.11 -> 18.11.7 -> 19.2.0"},
		{"16.11.10", "19.2.0", "17.3.7 -> 17.5.5 -> 17.8.7 -> 17.11.7 -> 18.2.8 -> 18.5.7 -> 18.8.11 -> 18.11.7 -> 19.2.0"},
		{"18.5.7", "18.8.11", "18.8.11"},
		{"18.2.8", "18.9.3", "18.5.7 -> 18.8.11 -> 18.9.3"},
		{"18.8.2", "18.8.11", "18.8.11"},
		{"19.2.0", "19.3.1", "19.3.1"},
		{"15.11.0", "16.3.6", "15.11.13 -> 16.3.6"},
	}
	for _, c := range cases {
		got, err := tab.Walk(MustParse(c.from), MustParse(c.to))
		if err != nil || vs(got) != c.want {
			t.Errorf("Walk(%s, %s) = %s, %v; want %s", c.from, c.to, vs(got), err, c.want)
		}
	}
	omni := LoadFor(Omnibus)
	for _, c := range []struct{ from, to, want string }{
		{"16.3.6", "16.11.10", "16.3.9 -> 16.7.10 -> 16.11.10"},
		{"18.8.11", "19.2.4", "18.11.11 -> 19.2.4"},
	} {
		got, err := omni.Walk(MustParse(c.from), MustParse(c.to))
		if err != nil || vs(got) != c.want {
			t.Errorf("omnibus Walk(%s, %s) = %s, %v; want %s", c.from, c.to, vs(got), err, c.want)
		}
	}
	var down *DowngradeError
	if _, err := tab.Walk(MustParse("18.8.11"), MustParse("18.5.7")); !errors.As(err, &down) {
		t.Errorf("downgrade: %v", err)
	} else if !strings.Contains(err.Error(), "cannot be downgraded") {
		t.Errorf("downgrade message: %v", err)
	}
	var cur *CurrentError
	if _, err := tab.Walk(MustParse("18.8.11"), MustParse("18.8.11")); !errors.As(err, &cur) {
		t.Errorf("same version: %v", err)
	}
	var old *TooOldError
	if _, err := tab.Walk(MustParse("14.10.5"), MustParse("16.3.6")); !errors.As(err, &old) {
		t.Errorf("too old: %v", err)
	}
}

func TestCheckHop(t *testing.T) {
	tab := Load()
	for _, ok := range [][2]string{
		{"18.5.1", "18.5.7"}, {"18.5.1", "18.8.11"}, {"18.5.7", "18.8.11"}, {"18.8.11", "18.8.11"},
		{"18.11.7", "19.2.0"}, {"19.2.0", "19.3.0"}, {"18.8.11", "18.10.2"},
	} {
		if err := tab.CheckHop(MustParse(ok[0]), MustParse(ok[1])); err != nil {
			t.Errorf("CheckHop(%s, %s): %v", ok[0], ok[1], err)
		}
	}
	var skip *SkipError
	err := tab.CheckHop(MustParse("18.2.8"), MustParse("19.2.0"))
	if !errors.As(err, &skip) || vs(skip.Skipped) != "18.5.7 -> 18.8.11 -> 18.11.7" {
		t.Fatalf("skip: %v", err)
	}
	if !strings.Contains(err.Error(), "forgebox upgrade apply --to 19.2.0") {
		t.Errorf("skip message does not say what to do: %v", err)
	}
	var down *DowngradeError
	if err := tab.CheckHop(MustParse("18.5.7"), MustParse("18.5.1")); !errors.As(err, &down) {
		t.Errorf("downgrade: %v", err)
	}
}

func TestPostgresMoves(t *testing.T) {
	tab := Load()
	walk := func(from, to string) []Version {
		h, err := tab.Walk(MustParse(from), MustParse(to))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	show := func(hops []Version, m []PostgresMove) string {
		var out []string
		for _, x := range m {
			out = append(out, fmt.Sprintf("%d->%d before %s", x.From, x.To, hops[x.BeforeHop]))
		}
		return strings.Join(out, "; ")
	}
	cases := []struct {
		from, to        string
		pg, chosen      int
		want, wantError string
	}{
		// GitLab 18 runs on 17, so one move to 17 serves the whole walk.
		{"17.11.7", "19.2.0", 15, 0, "15->17 before 18.2.8", ""},
		// Only as far as the walk needs.
		{"17.11.7", "18.5.7", 15, 0, "15->16 before 18.2.8", ""},
		// GitLab 17 runs on 16 at most: 16 serves 17.x and 18.x, then 19 needs 17.
		{"16.11.10", "19.2.0", 13, 0, "13->16 before 17.3.7; 16->17 before 19.2.0", ""},
		{"18.5.1", "19.2.0", 17, 0, "", ""},
		{"18.11.7", "19.2.0", 16, 0, "16->17 before 19.2.0", ""},
		// The image the user names decides the first move.
		{"17.11.7", "18.2.8", 15, 17, "15->17 before 18.2.8", ""},
		{"17.11.7", "18.2.8", 15, 18, "", "runs on PostgreSQL 17 at most"},
		{"18.11.7", "19.2.0", 16, 16, "", "needs at least 17"},
	}
	for _, c := range cases {
		hops := walk(c.from, c.to)
		m, _, err := tab.PostgresMoves(hops, c.pg, c.chosen)
		if c.wantError != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantError) {
				t.Errorf("%s -> %s on %d (chosen %d): error %v, want %q", c.from, c.to, c.pg, c.chosen, err, c.wantError)
			}
			continue
		}
		if err != nil || show(hops, m) != c.want {
			t.Errorf("%s -> %s on %d (chosen %d) = %q, %v; want %q", c.from, c.to, c.pg, c.chosen, show(hops, m), err, c.want)
		}
	}
	_, notes, _ := tab.PostgresMoves(walk("17.8.7", "17.11.7"), 17, 0)
	if len(notes) != 1 || !strings.Contains(notes[0], "up to 16") {
		t.Errorf("notes for GitLab 17 on PostgreSQL 17: %v", notes)
	}
}

func TestImageTags(t *testing.T) {
	for _, c := range []struct{ image, version, want string }{
		{"sameersbn/gitlab:18.5.1", "18.8.11", "sameersbn/gitlab:18.8.11"},
		{"gitlab/gitlab-ce:18.5.1-ce.0", "18.8.11", "gitlab/gitlab-ce:18.8.11-ce.0"},
		{"gitlab/gitlab-runner:alpine-v18.5.0", "18.8.0", "gitlab/gitlab-runner:alpine-v18.8.0"},
		{"registry.nas.lan:5000/mirror/gitlab:18.5.1", "18.8.11", "registry.nas.lan:5000/mirror/gitlab:18.8.11"},
		{"sameersbn/gitlab:18.5.1-1", "18.8.11", "sameersbn/gitlab:18.8.11"},
		{"forgebox-test/gitlab-standin-abc:17.11.7", "18.2.8", "forgebox-test/gitlab-standin-abc:18.2.8"},
	} {
		got, err := ImageFor(c.image, MustParse(c.version))
		if err != nil || got != c.want {
			t.Errorf("ImageFor(%s, %s) = %s, %v; want %s", c.image, c.version, got, err, c.want)
		}
		if v, ok := VersionFromImage(c.image); !ok || v.String() != strings.SplitN(strings.TrimPrefix(c.image[strings.LastIndex(c.image, ":")+1:], "alpine-v"), "-", 2)[0] {
			t.Errorf("VersionFromImage(%s) = %v, %v", c.image, v, ok)
		}
	}
	for _, bad := range []string{"sameersbn/gitlab:latest", "sameersbn/gitlab", "sameersbn/gitlab@sha256:" + strings.Repeat("a", 64)} {
		if _, err := ImageFor(bad, MustParse("18.8.11")); err == nil {
			t.Errorf("ImageFor(%s) accepted", bad)
		}
		if _, ok := VersionFromImage(bad); ok {
			t.Errorf("VersionFromImage(%s) found a version", bad)
		}
	}
	if v := RunnerVersionFor(MustParse("18.8.11")); v.String() != "18.8.0" {
		t.Errorf("runner for 18.8.11: %s", v)
	}
	for _, c := range []struct {
		image string
		major int
		want  string
	}{
		{"postgres:15-alpine", 17, "postgres:17-alpine"},
		{"postgres:15.4-alpine", 17, "postgres:17-alpine"},
		{"postgres:16", 17, "postgres:17"},
		{"kkimurak/sameersbn-postgresql:16", 17, "kkimurak/sameersbn-postgresql:17"},
	} {
		got, err := PostgresImageFor(c.image, c.major)
		if err != nil || got != c.want {
			t.Errorf("PostgresImageFor(%s, %d) = %s, %v", c.image, c.major, got, err)
		}
		if m, ok := PostgresMajorFromImage(c.want); !ok || m != c.major {
			t.Errorf("PostgresMajorFromImage(%s) = %d, %v", c.want, m, ok)
		}
	}
	if _, err := PostgresImageFor("postgres:alpine", 17); err == nil {
		t.Error("postgres:alpine: accepted")
	}
}
