package api_test

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/api"
	"github.com/forgebox/forgebox/service/internal/config"
)

func fieldKeys(e api.ErrorBody) []string {
	var keys []string
	for _, f := range e.Error.Fields {
		keys = append(keys, f.Key)
	}
	return keys
}

func hasField(e api.ErrorBody, key, msgPart string) bool {
	for _, f := range e.Error.Fields {
		if f.Key == key && strings.Contains(f.Msg+" "+f.Hint, msgPart) {
			return true
		}
	}
	return false
}

func TestConfigWrite(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	file := func() []byte {
		b, err := os.ReadFile(h.cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	var page api.ConfigPage
	res, body := h.do(h.front("GET", "/api/v1/config", nil), &page)
	expectStatus(t, res, body, http.StatusOK)
	if page.Config.GitLab.HTTPPort != h.cfg.GitLab.HTTPPort || !page.Exists || page.Path != h.cfgPath || page.Revision == "" {
		t.Fatalf("GET config: %+v", page)
	}

	invalid := []struct {
		name string
		body any
		key  string
		msg  string
	}{
		{"DSM's port", map[string]any{"gitlab": map[string]any{"http_port": 5000}}, "gitlab.http_port", "taken by DSM"},
		{"not a port", map[string]any{"gitlab": map[string]any{"ssh_port": 70000}}, "gitlab.ssh_port", "not a port"},
		{"wrong type", map[string]any{"gitlab": map[string]any{"http_port": "thirty"}}, "gitlab.http_port", "wrong type"},
		{"unknown key", map[string]any{"gitlab": map[string]any{"htp_port": 30080}}, "gitlab.htp_port", "http_port"},
		{"localhost", map[string]any{"gitlab": map[string]any{"host": "localhost"}}, "gitlab.host", "only works on this machine"},
		{"bad profile", map[string]any{"runner": map[string]any{"profiles": []any{map[string]any{"name": "a", "image": "x", "tags": []string{}, "colour": 1}}}}, "runner.profiles[0].colour", "unknown key"},
		{"data dir", map[string]any{"stack": map[string]any{"data_dir": "/elsewhere"}}, "stack.data_dir", "cannot be changed"},
	}
	for _, tc := range invalid {
		before := file()
		res, body := h.do(h.read(h.front("PUT", "/api/v1/config", tc.body)), nil)
		e := expectError(t, res, body, http.StatusBadRequest, api.CodeInvalidConfig)
		if !hasField(e, tc.key, tc.msg) {
			t.Errorf("%s: fields %v (%+v), want %s with %q", tc.name, fieldKeys(e), e.Error.Fields, tc.key, tc.msg)
		}
		if !bytes.Equal(before, file()) {
			t.Fatalf("%s: an invalid config changed the file on disk", tc.name)
		}
	}

	// Two problems at once come back together.
	res, body = h.do(h.read(h.front("PUT", "/api/v1/config", map[string]any{"gitlab": map[string]any{"http_port": 5000, "ssh_port": 22}})), nil)
	e := expectError(t, res, body, http.StatusBadRequest, api.CodeInvalidConfig)
	if !hasField(e, "gitlab.http_port", "DSM") || !hasField(e, "gitlab.ssh_port", "DSM") {
		t.Errorf("fields %+v: want both ports", e.Error.Fields)
	}

	// A whole file as TOML: errors keep the caller's line numbers.
	before := file()
	r := h.read(h.front("PUT", "/api/v1/config", "version = 1\n\n[gitlab]\nhttp_port = 5001\n"))
	r.Header.Set("Content-Type", "application/toml")
	res, body = h.do(r, nil)
	e = expectError(t, res, body, http.StatusBadRequest, api.CodeInvalidConfig)
	if len(e.Error.Fields) != 1 || e.Error.Fields[0].Key != "gitlab.http_port" || e.Error.Fields[0].Line != 4 {
		t.Errorf("TOML fields %+v: want gitlab.http_port on line 4", e.Error.Fields)
	}
	if !bytes.Equal(before, file()) {
		t.Fatal("an invalid TOML config changed the file")
	}

	// A stale revision is refused.
	r = h.front("PUT", "/api/v1/config", map[string]any{"gitlab": map[string]any{"http_port": 31080}})
	r.Header.Set("If-Match", `"0000000000000000"`)
	res, body = h.do(r, nil)
	expectError(t, res, body, http.StatusPreconditionFailed, api.CodeConflict)

	// A valid change is written, with the revision it was read at, and only the keys sent
	// change.
	r = h.front("PUT", "/api/v1/config", map[string]any{"gitlab": map[string]any{"http_port": 31080, "host": "nas.example"}})
	r.Header.Set("If-Match", `"`+page.Revision+`"`)
	var saved api.ConfigPage
	res, body = h.do(r, &saved)
	expectStatus(t, res, body, http.StatusOK)
	if bytes.Equal(before, file()) {
		t.Fatal("a valid change left the file as it was")
	}
	onDisk, err := config.Load(h.cfgPath)
	if err != nil {
		t.Fatalf("the saved file does not load: %v", err)
	}
	if onDisk.GitLab.HTTPPort != 31080 || onDisk.GitLab.Host != "nas.example" || onDisk.GitLab.SSHPort != h.cfg.GitLab.SSHPort || onDisk.Stack.Name != h.cfg.Stack.Name {
		t.Errorf("saved config %+v", onDisk.GitLab)
	}
	if saved.Revision == page.Revision || saved.Config.GitLab.HTTPPort != 31080 {
		t.Errorf("PUT answer %+v", saved)
	}
	// The status shows the new URLs at once.
	st := h.status(false)
	if st.GitLab.URL != "http://nas.example:31080/" || !strings.HasPrefix(st.GitLab.SSHURL, "ssh://git@nas.example:") || st.GitLab.HostSource != "config" {
		t.Errorf("status gitlab %+v", st.GitLab)
	}
}

func TestRunnerProfiles(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	file := func() []byte { b, _ := os.ReadFile(h.cfgPath); return b }

	var list struct {
		Profiles []config.Profile `json:"profiles"`
	}
	res, body := h.do(h.front("GET", "/api/v1/runner/profiles", nil), &list)
	expectStatus(t, res, body, http.StatusOK)
	if len(list.Profiles) != 1 || list.Profiles[0].Name != "default" {
		t.Fatalf("profiles %+v", list.Profiles)
	}

	node := config.Profile{Name: "node", Image: "node:22-alpine", Tags: []string{"node", "js"}, Memory: "2g"}
	res, body = h.do(h.front("POST", "/api/v1/runner/profiles", node), nil)
	expectStatus(t, res, body, http.StatusCreated)

	// The same name again, an empty image, a bad tag: each named by its key, nothing written.
	before := file()
	for _, tc := range []struct {
		p   config.Profile
		key string
	}{
		{config.Profile{Name: "node", Image: "node:22", Tags: []string{"x"}}, "runner.profiles[2].name"},
		{config.Profile{Name: "go", Tags: []string{"go"}}, "runner.profiles[2].image"},
		{config.Profile{Name: "go", Image: "golang:1.26", Tags: []string{"a,b"}}, "runner.profiles[2].tags"},
		{config.Profile{Name: "go", Image: "golang:1.26", Tags: []string{"go"}, Memory: "lots"}, "runner.profiles[2].memory"},
	} {
		res, body := h.do(h.front("POST", "/api/v1/runner/profiles", tc.p), nil)
		e := expectError(t, res, body, http.StatusBadRequest, api.CodeInvalidConfig)
		if !hasField(e, tc.key, "") {
			t.Errorf("%+v: fields %v, want %s", tc.p, fieldKeys(e), tc.key)
		}
	}
	if !bytes.Equal(before, file()) {
		t.Fatal("an invalid profile changed the file")
	}

	node.Tags = []string{"node"}
	node.Concurrency = 3
	res, body = h.do(h.front("PUT", "/api/v1/runner/profiles/node", node), nil)
	expectStatus(t, res, body, http.StatusOK)
	var one struct {
		Profile config.Profile `json:"profile"`
	}
	res, body = h.do(h.front("GET", "/api/v1/runner/profiles/node", nil), &one)
	expectStatus(t, res, body, http.StatusOK)
	if one.Profile.Concurrency != 3 || len(one.Profile.Tags) != 1 || one.Profile.Memory != "2g" {
		t.Errorf("updated profile %+v", one.Profile)
	}
	onDisk, _ := config.Load(h.cfgPath)
	if len(onDisk.Runner.Profiles) != 2 || onDisk.Runner.Profiles[1].Concurrency != 3 {
		t.Errorf("profiles on disk %+v", onDisk.Runner.Profiles)
	}

	res, body = h.do(h.front("GET", "/api/v1/runner/profiles/nope", nil), nil)
	expectError(t, res, body, http.StatusNotFound, api.CodeNotFound)
	res, body = h.do(h.front("DELETE", "/api/v1/runner/profiles/default", nil), nil)
	expectStatus(t, res, body, http.StatusNoContent)
	// The last one cannot go: a stack needs a runner profile.
	res, body = h.do(h.front("DELETE", "/api/v1/runner/profiles/node", nil), nil)
	e := expectError(t, res, body, http.StatusBadRequest, api.CodeInvalidConfig)
	if !hasField(e, "runner.profiles", "") {
		t.Errorf("fields %v", fieldKeys(e))
	}
	onDisk, _ = config.Load(h.cfgPath)
	if len(onDisk.Runner.Profiles) != 1 || onDisk.Runner.Profiles[0].Name != "node" {
		t.Errorf("profiles on disk %+v", onDisk.Runner.Profiles)
	}
}

// A privileged profile is accepted but never silently: the profile's answers, the profiles
// list and the config page carry a warning that says its jobs get the whole NAS. The defaults
// carry none, and a profile created without saying otherwise is not privileged.
func TestPrivilegedProfileWarning(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	type warned struct {
		Profile  config.Profile      `json:"profile"`
		Warnings []config.FieldError `json:"warnings"`
	}
	var page api.ConfigPage
	res, body := h.do(h.front("GET", "/api/v1/config", nil), &page)
	expectStatus(t, res, body, http.StatusOK)
	if page.Warnings == nil || len(page.Warnings) != 0 {
		t.Fatalf("the default config warns: %s", body)
	}

	var plain warned
	res, body = h.do(h.front("POST", "/api/v1/runner/profiles", map[string]any{"name": "plain", "image": "alpine:3.22", "tags": []string{"plain"}}), &plain)
	expectStatus(t, res, body, http.StatusCreated)
	if plain.Profile.Privileged || len(plain.Warnings) != 0 {
		t.Errorf("a profile created without privileged: %s", body)
	}

	// A third profile needs a third job slot (runner.concurrent is at least the profiles).
	res, body = h.do(h.front("GET", "/api/v1/config", nil), &page)
	expectStatus(t, res, body, http.StatusOK)
	r := h.front("PUT", "/api/v1/config", map[string]any{"runner": map[string]any{"concurrent": 3}})
	r.Header.Set("If-Match", `"`+page.Revision+`"`)
	res, body = h.do(r, &page)
	expectStatus(t, res, body, http.StatusOK)
	if page.Config.Runner.Concurrent != 3 {
		t.Fatalf("runner.concurrent is %d after setting 3: %s", page.Config.Runner.Concurrent, body)
	}

	var dind warned
	res, body = h.do(h.front("POST", "/api/v1/runner/profiles", map[string]any{"name": "dind", "image": "docker:27", "tags": []string{"dind"}, "privileged": true}), &dind)
	expectStatus(t, res, body, http.StatusCreated)
	if len(dind.Warnings) != 1 || !strings.Contains(dind.Warnings[0].Msg, "the whole NAS") || !strings.HasSuffix(dind.Warnings[0].Key, ".privileged") {
		t.Errorf("creating a privileged profile: %s", body)
	}
	var list struct {
		Warnings []config.FieldError `json:"warnings"`
	}
	res, body = h.do(h.front("GET", "/api/v1/runner/profiles", nil), &list)
	expectStatus(t, res, body, http.StatusOK)
	if len(list.Warnings) != 1 || !strings.Contains(list.Warnings[0].Msg, `"dind"`) {
		t.Errorf("profiles list: %s", body)
	}
	res, body = h.do(h.front("GET", "/api/v1/config", nil), &page)
	expectStatus(t, res, body, http.StatusOK)
	if len(page.Warnings) != 1 || page.Warnings[0].Key != list.Warnings[0].Key {
		t.Errorf("config page: %s", body)
	}
	// Turned off, the warning goes.
	res, body = h.do(h.front("PUT", "/api/v1/runner/profiles/dind", map[string]any{"name": "dind", "image": "docker:27", "tags": []string{"dind"}}), &dind)
	expectStatus(t, res, body, http.StatusOK)
	if len(dind.Warnings) != 0 {
		t.Errorf("after turning privileged off: %s", body)
	}
}

// TestConfigWriteRefusesAHandEditedFile: a file edited outside forgebox after the controller
// loaded it is not overwritten by a save, whatever If-Match says, and nothing of the edit is
// lost; the answer says what to do (issue 16 item 6).
func TestConfigWriteRefusesAHandEditedFile(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	orig, err := os.ReadFile(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	edited := append([]byte("# tuned by hand: keep this\n"), orig...)
	if err := os.WriteFile(h.cfgPath, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	var page api.ConfigPage
	res, body := h.do(h.front("GET", "/api/v1/config", nil), &page)
	expectStatus(t, res, body, http.StatusOK)
	change := map[string]any{"gitlab": map[string]any{"http_port": 31090}}
	for _, ifMatch := range []string{`"` + page.Revision + `"`, "*"} {
		r := h.front("PUT", "/api/v1/config", change)
		r.Header.Set("If-Match", ifMatch)
		res, body := h.do(r, nil)
		e := expectError(t, res, body, http.StatusPreconditionFailed, api.CodeConfigChangedOnDisk)
		if !strings.Contains(e.Error.Message, h.cfgPath) || !strings.Contains(e.Error.Message, "restart forgebox") {
			t.Errorf("If-Match %q: message %q, want the file and what to do", ifMatch, e.Error.Message)
		}
		if now, _ := os.ReadFile(h.cfgPath); !bytes.Equal(now, edited) {
			t.Fatalf("If-Match %q: the hand-edited file was rewritten:\n%s", ifMatch, now)
		}
	}
	// A profile change goes through the same save.
	res, body = h.do(h.front("DELETE", "/api/v1/runner/profiles/default", nil), nil)
	expectError(t, res, body, http.StatusPreconditionFailed, api.CodeConfigChangedOnDisk)

	// Once the file is as the controller loaded it again, saves go through and move its revision.
	if err := os.WriteFile(h.cfgPath, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	res, body = h.do(h.read(h.front("PUT", "/api/v1/config", change)), nil)
	expectStatus(t, res, body, http.StatusOK)
	res, body = h.do(h.read(h.front("PUT", "/api/v1/config", map[string]any{"gitlab": map[string]any{"http_port": 31091}})), nil)
	expectStatus(t, res, body, http.StatusOK)
}

// TestConfigPutNeedsIfMatch: a whole-config save must name the revision it read. Without
// If-Match it is refused with 428 and a coded message that says to reload; with a revision the
// file no longer has (a hand edit between the page's load and its save) it is refused with 412;
// neither changes a byte of the file. Profile saves, which change one profile, need none.
func TestConfigPutNeedsIfMatch(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	var page api.ConfigPage
	res, body := h.do(h.front("GET", "/api/v1/config", nil), &page)
	expectStatus(t, res, body, http.StatusOK)
	before, err := os.ReadFile(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	change := map[string]any{"gitlab": map[string]any{"http_port": 31093}}
	for _, r := range []*http.Request{h.front("PUT", "/api/v1/config", change), h.bearer("PUT", "/api/v1/config", change)} {
		res, body = h.do(r, nil)
		e := expectError(t, res, body, http.StatusPreconditionRequired, api.CodePreconditionRequired)
		if e.Error.Text.Code != "api.ifMatchRequired" || !strings.Contains(e.Error.Message, "reload the settings") {
			t.Errorf("the refusal does not say to reload: %s", body)
		}
	}
	if now, _ := os.ReadFile(h.cfgPath); !bytes.Equal(now, before) {
		t.Fatal("a save without If-Match changed the file")
	}

	// Another save between the page's load and its save: the page's revision is stale.
	res, body = h.do(h.read(h.front("PUT", "/api/v1/config", map[string]any{"gitlab": map[string]any{"http_port": 31094}})), nil)
	expectStatus(t, res, body, http.StatusOK)
	saved, _ := os.ReadFile(h.cfgPath)
	r := h.front("PUT", "/api/v1/config", change)
	r.Header.Set("If-Match", `"`+page.Revision+`"`)
	res, body = h.do(r, nil)
	e := expectError(t, res, body, http.StatusPreconditionFailed, api.CodeConflict)
	if e.Error.Text.Code != "api.staleRevision" {
		t.Errorf("a stale revision: %s", body)
	}
	// A hand edit between the page's load and its save: refused, and the edit stays.
	res, body = h.do(h.front("GET", "/api/v1/config", nil), &page)
	expectStatus(t, res, body, http.StatusOK)
	edited := append([]byte("# tuned by hand: keep this\n"), saved...)
	if err := os.WriteFile(h.cfgPath, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	r = h.front("PUT", "/api/v1/config", change)
	r.Header.Set("If-Match", `"`+page.Revision+`"`)
	res, body = h.do(r, nil)
	expectError(t, res, body, http.StatusPreconditionFailed, api.CodeConfigChangedOnDisk)
	if now, _ := os.ReadFile(h.cfgPath); !bytes.Equal(now, edited) {
		t.Fatalf("the hand-edited file was rewritten:\n%s", now)
	}
	if err := os.WriteFile(h.cfgPath, saved, 0o600); err != nil {
		t.Fatal(err)
	}

	res, body = h.do(h.front("POST", "/api/v1/runner/profiles", map[string]any{"name": "more", "image": "alpine:3.22", "tags": []string{"more"}}), nil)
	expectStatus(t, res, body, http.StatusCreated)
}

// TestPollsLogAtDebugAndChangesAtInfo: at serve's default level (info) an open browser's polls
// leave no line, and what changed something does (issue 16 item 6).
func TestPollsLogAtDebugAndChangesAtInfo(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	for range 3 {
		res, body := h.do(h.front("GET", "/api/v1/status", nil), nil)
		expectStatus(t, res, body, http.StatusOK)
		res, body = h.do(h.front("GET", "/api/v1/config", nil), nil)
		expectStatus(t, res, body, http.StatusOK)
	}
	res, body := h.do(h.read(h.front("PUT", "/api/v1/config", map[string]any{"gitlab": map[string]any{"http_port": 31092}})), nil)
	expectStatus(t, res, body, http.StatusOK)
	var polls, saved int
	for line := range strings.Lines(h.logs.String()) {
		if strings.Contains(line, "method=GET") && strings.Contains(line, "path=/api/v1/") {
			polls++
			if !strings.Contains(line, "level=DEBUG") {
				t.Errorf("a poll logged above debug: %s", line)
			}
		}
		if strings.Contains(line, `msg="config saved"`) {
			saved++
			if !strings.Contains(line, "level=INFO") {
				t.Errorf("the save logged below info: %s", line)
			}
		}
	}
	if polls < 6 || saved != 1 {
		t.Errorf("%d poll lines (want 6 or more at debug) and %d save lines (want 1) in:\n%s", polls, saved, h.logs.String())
	}
}
