// Package upgradepath knows GitLab's required upgrade stops and the PostgreSQL majors each GitLab
// major needs, from the table in stops.toml (embedded; its sources are cited there). It is pure:
// versions in, hops and checks out. It also reads and derives image tags (sameersbn/gitlab:18.5.7,
// gitlab/gitlab-ce:18.5.7-ce.0, gitlab/gitlab-runner:alpine-v18.5.0, postgres:17-alpine), so the
// stack can tell which GitLab a configured image would run.
package upgradepath

import (
	_ "embed"
	"errors"
	"fmt"
	"github.com/forgebox/forgebox/service/internal/msg"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
	"github.com/distribution/reference"
)

// Version is a GitLab release: major.minor.patch.
type Version struct {
	Major, Minor, Patch int
}

var versionPattern = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$`)

// Parse reads "18.5.1", and also what GitLab and image tags add around it: "v18.5.1",
// "18.5.1-ee", "18.5.1-ce.0".
func Parse(s string) (Version, error) {
	m := versionPattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return Version{}, fmt.Errorf("%q is not a GitLab version like 18.5.1", s)
	}
	var v Version
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	v.Patch, _ = strconv.Atoi(m[3])
	return v, nil
}

// MustParse is Parse for literals.
func MustParse(s string) Version {
	v, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return v
}

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// IsZero reports an unset version.
func (v Version) IsZero() bool { return v == Version{} }

// Compare orders versions: -1, 0 or +1.
func (v Version) Compare(o Version) int {
	for _, d := range [][2]int{{v.Major, o.Major}, {v.Minor, o.Minor}, {v.Patch, o.Patch}} {
		if d[0] != d[1] {
			if d[0] < d[1] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// Less reports v < o.
func (v Version) Less(o Version) bool { return v.Compare(o) < 0 }

// MinorString is "18.5".
func (v Version) MinorString() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

func (v Version) minorLess(o Version) bool {
	return v.Major < o.Major || (v.Major == o.Major && v.Minor < o.Minor)
}

// Conditional is a stop GitLab requires for some instances only.
type Conditional struct {
	Version Version
	When    string
}

// PostgresRange is what one GitLab major runs on; Max 0 means not known.
type PostgresRange struct {
	Min, Max int
}

// The image flavours, whose repositories publish their own patch releases of each stop.
const (
	Sameersbn = "sameersbn"
	Omnibus   = "omnibus"
)

// Flavours lists them.
var Flavours = []string{Sameersbn, Omnibus}

// Table is the stops table as one flavour's images publish it.
type Table struct {
	Flavour     string
	Latest      Version
	Stops       []Version // required stops, oldest first, each at the flavour's latest patch
	Conditional []Conditional
	Postgres    map[int]PostgresRange // by GitLab major

	flavours map[string]flavourStops
}

type flavourStops struct {
	latest Version
	stops  []Version
}

// For is the table with the stops and latest version of flavour's images (sameersbn for an
// unknown flavour, which config validation does not let through).
func (t Table) For(flavour string) Table {
	f, ok := t.flavours[flavour]
	if !ok {
		flavour, f = Sameersbn, t.flavours[Sameersbn]
	}
	t.Flavour, t.Latest, t.Stops = flavour, f.latest, f.stops
	return t
}

//go:embed stops.toml
var stopsTOML string

// StopsTOML is the embedded table, as published.
func StopsTOML() string { return stopsTOML }

var (
	loadOnce sync.Once
	loaded   Table
	loadErr  error
)

// Load returns the embedded table, with the sameersbn image's patch releases (LoadFor names the
// flavour). It panics if the embedded file is broken: the tests read it first, so a release
// never ships one.
func Load() Table { return LoadFor(Sameersbn) }

// LoadFor returns the embedded table with flavour's patch releases.
func LoadFor(flavour string) Table {
	loadOnce.Do(func() { loaded, loadErr = ParseTable(stopsTOML) })
	if loadErr != nil {
		panic("upgradepath: embedded stops.toml: " + loadErr.Error())
	}
	return loaded.For(flavour)
}

// ParseTable reads a stops table and checks it: versions parse, every stop names each flavour's
// patch release of the same minor, stops ascend, every stop's GitLab major has a PostgreSQL
// range, latest is not older than the last stop. The result is the sameersbn view (For).
func ParseTable(src string) (Table, error) {
	var raw struct {
		Latest      map[string]string   `toml:"latest"`
		Stop        []map[string]string `toml:"stop"`
		Conditional []struct {
			Version string `toml:"version"`
			When    string `toml:"when"`
		} `toml:"conditional"`
		Postgres []struct {
			GitLabMajor int `toml:"gitlab_major"`
			Min         int `toml:"min"`
			Max         int `toml:"max"`
		} `toml:"postgres"`
	}
	md, err := toml.Decode(src, &raw)
	if err != nil {
		return Table{}, err
	}
	if u := md.Undecoded(); len(u) > 0 {
		return Table{}, fmt.Errorf("unknown keys %v", u)
	}
	t := Table{Postgres: map[int]PostgresRange{}, flavours: map[string]flavourStops{}}
	for k := range raw.Latest {
		if !slices.Contains(Flavours, k) {
			return Table{}, fmt.Errorf("latest: unknown flavour %q (%s)", k, strings.Join(Flavours, ", "))
		}
	}
	for i, s := range raw.Stop {
		for k := range s {
			if !slices.Contains(Flavours, k) {
				return Table{}, fmt.Errorf("stop %d: unknown flavour %q (%s)", i+1, k, strings.Join(Flavours, ", "))
			}
		}
	}
	for _, fl := range Flavours {
		var f flavourStops
		if f.latest, err = Parse(raw.Latest[fl]); err != nil {
			return Table{}, fmt.Errorf("latest.%s: %w", fl, err)
		}
		for i, s := range raw.Stop {
			v, err := Parse(s[fl])
			if err != nil {
				return Table{}, fmt.Errorf("stop %d, %s: %w", i+1, fl, err)
			}
			if i > 0 && !f.stops[i-1].minorLess(v) {
				return Table{}, fmt.Errorf("stop %s does not come after %s", v, f.stops[i-1])
			}
			f.stops = append(f.stops, v)
		}
		if len(f.stops) == 0 {
			return Table{}, errors.New("no stops")
		}
		if f.latest.Less(f.stops[len(f.stops)-1]) {
			return Table{}, fmt.Errorf("latest %s of %s is older than its last stop %s", f.latest, fl, f.stops[len(f.stops)-1])
		}
		t.flavours[fl] = f
	}
	// The flavours stop at the same minors; only the patch differs.
	for i := range raw.Stop {
		a, b := t.flavours[Sameersbn].stops[i], t.flavours[Omnibus].stops[i]
		if a.MinorString() != b.MinorString() {
			return Table{}, fmt.Errorf("stop %d is %s for sameersbn and %s for omnibus: a stop is one minor", i+1, a, b)
		}
	}
	for _, c := range raw.Conditional {
		v, err := Parse(c.Version)
		if err != nil {
			return Table{}, fmt.Errorf("conditional stop: %w", err)
		}
		t.Conditional = append(t.Conditional, Conditional{Version: v, When: c.When})
	}
	for _, p := range raw.Postgres {
		if p.Min <= 0 || (p.Max != 0 && p.Max < p.Min) {
			return Table{}, fmt.Errorf("postgres for GitLab %d: min %d, max %d", p.GitLabMajor, p.Min, p.Max)
		}
		t.Postgres[p.GitLabMajor] = PostgresRange{Min: p.Min, Max: p.Max}
	}
	for _, f := range t.flavours {
		for _, s := range append(slices.Clone(f.stops), f.latest) {
			if _, ok := t.Postgres[s.Major]; !ok {
				return Table{}, fmt.Errorf("no postgres range for GitLab %d", s.Major)
			}
		}
	}
	return t.For(Sameersbn), nil
}

// Oldest is the oldest GitLab forgebox walks from: the first stop's minor.
func (t Table) Oldest() Version {
	o := t.Stops[0]
	return Version{Major: o.Major, Minor: o.Minor}
}

// PostgresFor is the PostgreSQL range of v's major; ok is false for a major the table lacks.
func (t Table) PostgresFor(v Version) (PostgresRange, bool) {
	r, ok := t.Postgres[v.Major]
	if !ok {
		// A major newer than the table: assume what the newest known major needs.
		best := -1
		for m := range t.Postgres {
			if m < v.Major && m > best {
				best = m
			}
		}
		if best < 0 {
			return PostgresRange{}, false
		}
		return PostgresRange{Min: t.Postgres[best].Min}, false
	}
	return r, true
}

// DowngradeError refuses a target older than the running version.
type DowngradeError struct{ From, To Version }

func (e *DowngradeError) Error() string {
	return fmt.Sprintf("GitLab %s is older than the running %s: GitLab cannot be downgraded (its database has already been migrated); to go back, restore a backup made by %s onto a stack that runs %s", e.To, e.From, e.To, e.To)
}

// CurrentError says the target is the running version.
type CurrentError struct{ Version Version }

func (e *CurrentError) Error() string {
	return fmt.Sprintf("GitLab is already at %s: nothing to upgrade", e.Version)
}

// TooOldError refuses a start before the oldest stop forgebox knows.
type TooOldError struct{ From, Oldest Version }

func (e *TooOldError) Error() string {
	return fmt.Sprintf("GitLab %s is older than %s, the oldest stop forgebox knows: upgrade it to %s first along https://docs.gitlab.com/update/upgrade_paths/, then use forgebox", e.From, e.Oldest.MinorString(), e.Oldest.MinorString())
}

// SkipError refuses a jump over required stops.
type SkipError struct {
	From, To Version
	Skipped  []Version
}

func (e *SkipError) Error() string {
	names := make([]string, len(e.Skipped))
	for i, s := range e.Skipped {
		names[i] = s.String()
	}
	return fmt.Sprintf("going from GitLab %s straight to %s would skip the required upgrade stop(s) %s: GitLab's migrations must run at each stop (https://docs.gitlab.com/update/upgrade_paths/); use `forgebox upgrade apply --to %s`, which walks them one at a time",
		e.From, e.To, strings.Join(names, ", "), e.To)
}

// Walk lists the hops from from to to: every required stop after from and before to, at the
// stop's latest patch (so 18.5.1 goes to 18.5.7 first), then to itself.
func (t Table) Walk(from, to Version) ([]Version, error) {
	switch c := to.Compare(from); {
	case c < 0:
		return nil, &DowngradeError{From: from, To: to}
	case c == 0:
		return nil, &CurrentError{Version: from}
	}
	if from.minorLess(t.Oldest()) {
		return nil, &TooOldError{From: from, Oldest: t.Oldest()}
	}
	var hops []Version
	for _, s := range t.Stops {
		if from.Less(s) && s.Less(to) {
			hops = append(hops, s)
		}
	}
	return append(hops, to), nil
}

// CheckHop refuses changing a GitLab that last ran from into one that runs to, when that would
// downgrade or jump over a required stop. Stops count by minor here: a GitLab already on a
// stop's minor has passed it, whatever its patch. Walk is stricter and goes to the stop's latest
// patch first.
func (t Table) CheckHop(from, to Version) error {
	if to.Less(from) {
		return &DowngradeError{From: from, To: to}
	}
	var skipped []Version
	for _, s := range t.Stops {
		if from.minorLess(s) && s.minorLess(to) {
			skipped = append(skipped, s)
		}
	}
	if len(skipped) > 0 {
		return &SkipError{From: from, To: to, Skipped: skipped}
	}
	return nil
}

// ConditionalOn lists the conditional stops a walk from from to to passes.
func (t Table) ConditionalOn(from, to Version) []Conditional {
	var out []Conditional
	for _, c := range t.Conditional {
		if from.Less(c.Version) && c.Version.Less(to) {
			out = append(out, c)
		}
	}
	return out
}

// PostgresMove is a PostgreSQL major upgrade before hop BeforeHop (an index into the hops).
type PostgresMove struct {
	BeforeHop int
	From, To  int
	Chosen    bool // the major of an image the user named, not the derived one
}

// PostgresMoves plans the PostgreSQL major upgrades a walk needs, starting at major current.
// Before a hop whose GitLab needs more than the running PostgreSQL, PostgreSQL moves: to the
// major of the image the user named (chosen > 0), else as far as the hops that follow all run
// on (so 17.11 -> 19.2 moves 15 -> 17 once, since GitLab 18 runs on 17), and never past a
// GitLab major whose maximum is not known. Notes say what is unusual but allowed.
func (t Table) PostgresMoves(hops []Version, current, chosen int) (moves []PostgresMove, notes []string, err error) {
	pg := current
	for i, h := range hops {
		r, known := t.PostgresFor(h)
		if !known {
			notes = append(notes, fmt.Sprintf("the table has no PostgreSQL range for GitLab %d; forgebox assumes at least %d", h.Major, r.Min))
		}
		if pg >= r.Min {
			if r.Max != 0 && pg > r.Max {
				notes = append(notes, fmt.Sprintf("GitLab %s is tested with PostgreSQL up to %d; this stack runs %d", h, r.Max, pg))
			}
			continue
		}
		target := 0
		if chosen > 0 && len(moves) == 0 {
			target = chosen
			if target < r.Min {
				return nil, nil, fmt.Errorf("the PostgreSQL image named for the upgrade provides PostgreSQL %d, but GitLab %s needs at least %d", chosen, h, r.Min)
			}
			for _, later := range hops[i:] {
				lr, _ := t.PostgresFor(later)
				switch {
				case lr.Min > target:
					// another move comes before it
				case lr.Max != 0 && target > lr.Max:
					return nil, nil, fmt.Errorf("the PostgreSQL image named for the upgrade provides PostgreSQL %d, but GitLab %s runs on PostgreSQL %d at most", chosen, later, lr.Max)
				case lr.Max == 0 && target > lr.Min:
					notes = append(notes, fmt.Sprintf("it is not known whether GitLab %s runs on PostgreSQL %d (it needs at least %d)", later, target, lr.Min))
				}
			}
		} else {
			// As far as every hop that would run on it tolerates: a known maximum, or exactly the
			// minimum where the maximum is not known.
			tolerates := func(k Version, c int) bool {
				kr, _ := t.PostgresFor(k)
				switch {
				case kr.Min > c:
					return true // another move comes before k
				case kr.Max != 0:
					return c <= kr.Max
				}
				return c == kr.Min
			}
			target = r.Min
			for _, later := range hops[i+1:] {
				lr, _ := t.PostgresFor(later)
				if lr.Min <= target {
					continue
				}
				all := true
				for _, k := range hops[i:] {
					if !tolerates(k, lr.Min) {
						all = false
						break
					}
				}
				if !all {
					break
				}
				target = lr.Min
			}
		}
		moves = append(moves, PostgresMove{BeforeHop: i, From: pg, To: target, Chosen: chosen > 0 && len(moves) == 0})
		pg = target
	}
	return moves, notes, nil
}

// ---------------------------------------------------------------------------------------------
// Image tags

// tagVersion finds the GitLab version in a tag: a prefix ("alpine-v"), x.y.z, and a suffix of
// which only an edition ("-ce.0", "-ee.0") is part of the version's tag.
var tagVersion = regexp.MustCompile(`^(.*?)(\d+)\.(\d+)\.(\d+)(.*)$`)
var editionSuffix = regexp.MustCompile(`^-(ce|ee)\.\d+$`)

func splitRef(ref string) (repo, tag string, err error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", "", fmt.Errorf("image %q: %w", ref, err)
	}
	if _, ok := named.(reference.Digested); ok {
		return "", "", fmt.Errorf("image %q is pinned by digest: its version cannot be read or changed by tag", ref)
	}
	tagged, ok := named.(reference.Tagged)
	if !ok {
		return "", "", fmt.Errorf("image %q has no tag: name the version, e.g. %s:18.5.7", ref, ref)
	}
	// The repository as the user wrote it (without docker.io/library/ added).
	repo = strings.TrimSuffix(ref, ":"+tagged.Tag())
	return repo, tagged.Tag(), nil
}

// VersionFromImage reads the GitLab (or GitLab Runner) version in an image's tag:
// sameersbn/gitlab:18.5.1, gitlab/gitlab-ce:18.5.1-ce.0, gitlab/gitlab-runner:alpine-v18.5.0.
// ok is false when the tag holds no version (latest, a test image).
func VersionFromImage(ref string) (Version, bool) {
	_, tag, err := splitRef(ref)
	if err != nil {
		return Version{}, false
	}
	m := tagVersion.FindStringSubmatch(tag)
	if m == nil {
		return Version{}, false
	}
	v, err := Parse(m[2] + "." + m[3] + "." + m[4])
	return v, err == nil
}

// ImageFor is the image of the same repository and tag style for version v:
// sameersbn/gitlab:18.5.1 -> sameersbn/gitlab:18.8.11; gitlab/gitlab-ce:18.5.1-ce.0 ->
// gitlab/gitlab-ce:18.8.11-ce.0; gitlab/gitlab-runner:alpine-v18.5.0 -> ...:alpine-v18.8.0 when v
// is 18.8.0. A tag without a version cannot be carried forward.
func ImageFor(configured string, v Version) (string, error) {
	repo, tag, err := splitRef(configured)
	if err != nil {
		return "", err
	}
	m := tagVersion.FindStringSubmatch(tag)
	if m == nil {
		return "", msg.Err("upgrade.tagNoVersion", "image", msg.Q(configured), "version", v.String(), "repo", repo)
	}
	suffix := ""
	if e := editionSuffix.FindStringSubmatch(m[5]); e != nil {
		suffix = "-" + e[1] + ".0"
	}
	return repo + ":" + m[1] + v.String() + suffix, nil
}

// RunnerVersionFor is the GitLab Runner that goes with GitLab v: the same major.minor, patch 0
// (every runner minor has a .0 release; GitLab Runner keeps major.minor in step with GitLab).
func RunnerVersionFor(v Version) Version { return Version{Major: v.Major, Minor: v.Minor} }

var pgTag = regexp.MustCompile(`^(\d+)(\.\d+)?(.*)$`)

// PostgresMajorFromImage reads the major of a PostgreSQL image's tag: postgres:17-alpine -> 17,
// postgres:16.4 -> 16.
func PostgresMajorFromImage(ref string) (int, bool) {
	_, tag, err := splitRef(ref)
	if err != nil {
		return 0, false
	}
	m := pgTag.FindStringSubmatch(tag)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}

// PostgresImageFor is the image of the same repository and tag style for PostgreSQL major:
// postgres:15-alpine -> postgres:17-alpine; postgres:15.4 -> postgres:17.
func PostgresImageFor(configured string, major int) (string, error) {
	repo, tag, err := splitRef(configured)
	if err != nil {
		return "", err
	}
	m := pgTag.FindStringSubmatch(tag)
	if m == nil {
		return "", msg.Err("upgrade.pgTagNoMajor", "image", msg.Q(configured), "major", major, "repo", repo)
	}
	return repo + ":" + strconv.Itoa(major) + m[3], nil
}
