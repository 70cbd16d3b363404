package main

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

func script(name, scopes, date string) string {
	return fmt.Sprintf(`u = User.find_by_username('root'); abort 'FORGEBOX_NO_ROOT' if u.nil?; t = u.personal_access_tokens.create!(name: '%s', scopes: [%s], expires_at: Date.parse('%s')); puts "FORGEBOX_TOKEN=#{t.token}"`, name, scopes, date)
}

func TestParsePATScript(t *testing.T) {
	today := time.Date(2026, 11, 29, 15, 0, 0, 0, time.UTC)
	req, err := ParsePATScript(script("forgebox-admin", ":api, :create_runner", "2027-11-28"), today)
	if err != nil {
		t.Fatal(err)
	}
	if req.Name != "forgebox-admin" || strings.Join(req.Scopes, ",") != "api,create_runner" || req.ExpiresAt.Format("2006-01-02") != "2027-11-28" {
		t.Errorf("parsed %+v", req)
	}
	if _, err := ParsePATScript(script("x", ":read_api", "2026-11-30"), today); err != nil {
		t.Errorf("tomorrow: %v", err)
	}

	bad := map[string]string{
		"unknown scope":      script("x", ":api, :write_repository", "2027-01-01"),
		"duplicate scope":    script("x", ":api, :api", "2027-01-01"),
		"no scopes":          script("x", "", "2027-01-01"),
		"today":              script("x", ":api", "2026-11-29"),
		"past":               script("x", ":api", "2025-01-01"),
		"over 365 days":      script("x", ":api", "2027-11-30"),
		"not a date":         script("x", ":api", "2027-02-30"),
		"quote in name":      script("x'); system('id'); ('", ":api", "2027-01-01"),
		"string scopes":      script("x", "'api'", "2027-01-01"),
		"365.days.from_now":  strings.Replace(script("x", ":api", "2027-01-01"), "Date.parse('2027-01-01')", "365.days.from_now", 1),
		"other user":         strings.Replace(script("x", ":api", "2027-01-01"), "'root'", "'alice'", 1),
		"extra statement":    script("x", ":api", "2027-01-01") + "; User.delete_all",
		"trailing newline":   script("x", ":api", "2027-01-01") + "\n",
		"set_token":          strings.Replace(script("x", ":api", "2027-01-01"), "; puts", "; t.set_token('glpat-x'); t.save!; puts", 1),
		"puts token plainly": strings.Replace(script("x", ":api", "2027-01-01"), `"FORGEBOX_TOKEN=#{t.token}"`, `t.token`, 1),
		"no nil guard":       strings.Replace(script("x", ":api", "2027-01-01"), " abort 'FORGEBOX_NO_ROOT' if u.nil?;", "", 1),
		"arbitrary ruby":     `User.where(admin: true).each { |u| puts u.email }`,
		"empty":              "",
	}
	for name, s := range bad {
		if _, err := ParsePATScript(s, today); err == nil {
			t.Errorf("%s: accepted %q", name, s)
		}
	}
}

func TestTokensAndAdvertisement(t *testing.T) {
	a, b := randomToken("glpat-", 20), randomToken("glpat-", 20)
	if a == b || len(a) != 26 || !strings.HasPrefix(a, "glpat-") {
		t.Errorf("tokens %q %q", a, b)
	}
	if digest(a) == a || len(digest(a)) != 64 {
		t.Errorf("digest %q", digest(a))
	}
	// Every pkt-line's 4 hex digits must give its length including themselves.
	adv := uploadPackAdvertisement()
	if !bytes.HasPrefix(adv, []byte("001e# service=git-upload-pack\n0000")) {
		t.Fatalf("advertisement starts %q", adv[:40])
	}
	for rest := adv; len(rest) > 0; {
		n, err := strconv.ParseUint(string(rest[:4]), 16, 16)
		if err != nil {
			t.Fatalf("bad pkt-line length %q", rest[:4])
		}
		if n == 0 {
			rest = rest[4:]
			continue
		}
		if int(n) > len(rest) || n < 4 {
			t.Fatalf("pkt-line length %d overruns %d bytes", n, len(rest))
		}
		rest = rest[n:]
	}
}

func TestRunnerStatus(t *testing.T) {
	now := time.Now()
	ago := func(d time.Duration) *time.Time { x := now.Add(-d); return &x }
	cases := []struct {
		r    runner
		want string
	}{
		{runner{CreatedAt: now}, "never_contacted"},
		{runner{CreatedAt: now.Add(-8 * 24 * time.Hour)}, "stale"},
		{runner{CreatedAt: now, ContactedAt: ago(time.Minute)}, "online"},
		{runner{CreatedAt: now, ContactedAt: ago(3 * time.Hour)}, "offline"},
		{runner{CreatedAt: now, ContactedAt: ago(8 * 24 * time.Hour)}, "stale"},
	}
	for _, c := range cases {
		if got := c.r.status(now); got != c.want {
			t.Errorf("status = %s, want %s", got, c.want)
		}
	}
}

func TestApplyRunnerParams(t *testing.T) {
	r := runner{RunUntagged: true, TagList: []string{}, AccessLevel: "not_protected"}
	p := params{"tag_list": "docker, nas,docker,", "run_untagged": "false", "description": "x", "maximum_timeout": float64(3600)}
	inv, err := applyRunnerParams(&r, p)
	if err != nil || inv != nil {
		t.Fatal(err, inv)
	}
	if strings.Join(r.TagList, ",") != "docker,nas" || r.RunUntagged || *r.MaximumTimeout != 3600 {
		t.Errorf("runner %+v", r)
	}
	if inv, _ := applyRunnerParams(&r, params{"tag_list": []any{}}); inv["tags_list"] == nil {
		t.Errorf("no tags and run_untagged=false accepted: %v", inv)
	}
	if inv, _ := applyRunnerParams(&r, params{"maximum_timeout": "60"}); inv["maximum_timeout"] == nil {
		t.Errorf("maximum_timeout 60 accepted")
	}
	if _, err := applyRunnerParams(&r, params{"access_level": "everyone"}); err == nil {
		t.Errorf("bad access_level accepted")
	}
	if _, err := applyRunnerParams(&r, params{"paused": "maybe"}); err == nil || err.Error() != "paused is invalid" {
		t.Errorf("bad bool: %v", err)
	}
}
