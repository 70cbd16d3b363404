package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// reference is docs/gitlab-contract.md §5.5 with the keys forgebox writes.
const reference = `concurrent = 2
check_interval = 0
shutdown_timeout = 30
log_level = "info"
log_format = "runner"
listen_address = ":9252"
connection_max_age = "15m"

[session_server]
  session_timeout = 1800

[[runners]]
  name = "nas-docker-1"
  url = "http://gitlab"
  id = 1
  token = "glrt-XXXXXXXXXXXXXXXXXXXX"
  token_obtained_at = 2026-08-01T00:00:00Z
  token_expires_at = 0001-01-01T00:00:00Z
  executor = "docker"
  clone_url = "http://gitlab"
  limit = 2
  request_concurrency = 1
  output_limit = 4096
  environment = ["GIT_DEPTH=20"]
  [runners.feature_flags]
    FF_NETWORK_PER_BUILD = false
  [runners.cache]
    MaxUploadedArchiveSize = 0
  [runners.docker]
    image = "alpine:3.20"
    privileged = false
    tls_verify = false
    disable_cache = false
    volumes = ["/cache"]
    network_mode = "gitlab-net"
    extra_hosts = ["nas.example.lan:192.168.1.10"]
    pull_policy = ["if-not-present"]
    helper_image = "registry.example.lan/gitlab-runner-helper:x86_64-v18.5.0"
    shm_size = 0
    memory = "2g"
    memory_reservation = "512m"
    cpus = "2"
    wait_for_services_timeout = 30
`

func TestParseReferenceConfig(t *testing.T) {
	c, err := ParseConfig([]byte(reference))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Runners[0]
	if c.Concurrent != 2 || len(c.Runners) != 1 || r.ID != 1 || r.Docker.NetworkMode != "gitlab-net" ||
		len(r.Docker.PullPolicy) != 1 || r.Docker.PullPolicy[0] != "if-not-present" || !r.TokenExpiresAt.IsZero() ||
		r.TokenObtainedAt.Year() != 2026 || r.Cache == nil {
		t.Errorf("parsed %+v / %+v", c, r)
	}
	// pull_policy as a plain string is the runner's StringOrArray too.
	c, err = ParseConfig([]byte(strings.Replace(reference, `pull_policy = ["if-not-present"]`, `pull_policy = "never"`, 1)))
	if err != nil || c.Runners[0].Docker.PullPolicy[0] != "never" {
		t.Errorf("string pull_policy: %v", err)
	}
}

func TestParseConfigStrict(t *testing.T) {
	cases := []struct{ name, from, to, wants string }{
		{"unknown runner key", `  executor = "docker"`, "  executor = \"docker\"\n  netwrk_mode = \"x\"", "unknown key(s): runners.netwrk_mode"},
		{"unknown docker key", `    privileged = false`, "    privileged = false\n    networkmode = \"x\"", "runners.docker.networkmode"},
		{"unknown global key", `concurrent = 2`, "concurrent = 2\nconcurency = 2", "concurency"},
		{"cache key in snake case", `    MaxUploadedArchiveSize = 0`, `    max_uploaded_archive_size = 0`, "runners.cache.max_uploaded_archive_size"},
		{"memory as integer", `memory = "2g"`, `memory = 2048`, "runners.docker.memory"},
		{"cpus as number", `cpus = "2"`, `cpus = 2`, "runners.docker.cpus"},
		{"privileged as string", `privileged = false`, `privileged = "false"`, "runners.docker.privileged"},
		{"volumes as string", `volumes = ["/cache"]`, `volumes = "/cache"`, "runners.docker.volumes"},
		{"token time as string", `token_obtained_at = 2026-08-01T00:00:00Z`, `token_obtained_at = "2026-08-01T00:00:00Z"`, "token_obtained_at"},
		{"id as string", `  id = 1`, `  id = "1"`, "runners.id"},
		{"pull_policy number", `pull_policy = ["if-not-present"]`, `pull_policy = 1`, "pull_policy"},
		{"pull_policy unknown", `pull_policy = ["if-not-present"]`, `pull_policy = ["sometimes"]`, `pull_policy "sometimes"`},
		{"concurrent zero", `concurrent = 2`, `concurrent = 0`, "concurrent = 0"},
		{"shell executor", `executor = "docker"`, `executor = "shell"`, `executor = "shell"`},
		{"no image", `    image = "alpine:3.20"` + "\n", "", "image is empty"},
		{"bad memory", `memory = "2g"`, `memory = "lots"`, "memory = \"lots\""},
		{"memory too small", `memory = "2g"`, `memory = "1m"`, "below Docker's minimum"},
		{"bad url", `url = "http://gitlab"`, `url = "gitlab"`, "url = \"gitlab\""},
		{"bad log level", `log_level = "info"`, `log_level = "verbose"`, "log_level"},
		{"environment entry", `environment = ["GIT_DEPTH=20"]`, `environment = ["GIT_DEPTH"]`, "not KEY=value"},
		{"syntax", `concurrent = 2`, `concurrent = `, "concurrent"},
		{"no token", `token = "glrt-XXXXXXXXXXXXXXXXXXXX"`, `token = ""`, "token is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(reference, tc.from, tc.to, 1)
			if src == reference {
				t.Fatalf("edit %q did not apply", tc.from)
			}
			_, err := ParseConfig([]byte(src))
			if err == nil || !strings.Contains(err.Error(), tc.wants) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wants)
			}
		})
	}
}

func TestParseRunArgs(t *testing.T) {
	for _, args := range [][]string{nil, {"run"}, {"run", "--user=gitlab-runner", "--working-directory=/home/gitlab-runner"}, {"run", "-c", "/etc/gitlab-runner/config.toml"}} {
		if p, err := parseRunArgs(args); err != nil || p != defaultConfig {
			t.Errorf("%v: %q %v", args, p, err)
		}
	}
	if p, _ := parseRunArgs([]string{"run", "--config=/x/c.toml"}); p != "/x/c.toml" {
		t.Errorf("--config= gave %q", p)
	}
	for _, args := range [][]string{{"register"}, {"run", "--bogus"}, {"run", "-c"}} {
		if _, err := parseRunArgs(args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestJobSpec(t *testing.T) {
	j := jobSpec{RunnerID: 7, Token: "glrt-a", BaseURL: "http://gitlab:8929/", Docker: Docker{Image: "debian", NetworkMode: "net"}}
	if got := j.probeURL(); got != "http://gitlab:8929/forgebox/standin-probe.git/info/refs?service=git-upload-pack" {
		t.Errorf("probe URL %s", got)
	}
	k := j.key()
	j2 := j
	j2.Name = "renamed"
	if j2.key() != k {
		t.Errorf("the name changed the job key")
	}
	for _, edit := range []func(*jobSpec){
		func(j *jobSpec) { j.Docker.Image = "other" },
		func(j *jobSpec) { j.Docker.NetworkMode = "other" },
		func(j *jobSpec) { j.BaseURL = "http://other" },
		func(j *jobSpec) { j.Token = "glrt-b" },
		func(j *jobSpec) { j.RunnerID = 8 },
	} {
		j3 := j
		edit(&j3)
		if j3.key() == k {
			t.Errorf("edit %+v kept the job key", j3)
		}
	}
	hc, anon, err := hostConfig(Docker{Memory: "256m", CPUs: "1.5", Volumes: []string{"/cache", "/srv:/srv:ro"}, NetworkMode: "net", Privileged: true})
	if err != nil || hc.Memory != 256<<20 || hc.NanoCPUs != 1_500_000_000 || len(hc.Binds) != 1 || len(anon) != 1 || string(hc.NetworkMode) != "net" || !hc.Privileged {
		t.Errorf("host config %+v %v %v", hc, anon, err)
	}
}

func TestFetch(t *testing.T) {
	var gotRunner string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotRunner = r.Header.Get(FetchHeader)
		switch r.URL.Path {
		case "/ok/p.git/info/refs":
			w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
			w.Write([]byte(advertisementStart + "0000"))
		case "/html/p.git/info/refs":
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html>sign in</html>"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	if code := fetchMain([]string{srv.URL + "/ok/p.git/info/refs?service=git-upload-pack", "42"}); code != 0 || gotRunner != "42" {
		t.Errorf("ok fetch: exit %d, runner header %q", code, gotRunner)
	}
	if code := fetchMain([]string{srv.URL + "/html/p.git/info/refs", "1"}); code != 1 {
		t.Errorf("wrong content type: exit %d", code)
	}
	if code := fetchMain([]string{srv.URL + "/missing/p.git/info/refs", "1"}); code != 1 {
		t.Errorf("404: exit %d", code)
	}
}

// TestReloadKeepsGoodConfig drives the daemon's reload and verify without an engine.
func TestReloadKeepsGoodConfig(t *testing.T) {
	var verifyCalls int
	gl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Token string }
		json.NewDecoder(r.Body).Decode(&body)
		if r.URL.Path != "/api/v4/runners/verify" || r.Header.Get("RUNNER-TOKEN") != body.Token {
			http.Error(w, "bad request", 400)
			return
		}
		verifyCalls++
		if body.Token == "glrt-XXXXXXXXXXXXXXXXXXXX" {
			w.Write([]byte(`{"id":1,"token":"glrt-XXXXXXXXXXXXXXXXXXXX","token_expires_at":null}`))
			return
		}
		w.WriteHeader(403)
	}))
	defer gl.Close()

	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	d := newDaemon(path)
	ctx := context.Background()
	d.reload(ctx, false) // missing: waits
	if d.cfg != nil {
		t.Fatal("config from nowhere")
	}
	good := strings.NewReplacer(`url = "http://gitlab"`, `url = "`+gl.URL+`"`, `listen_address = ":9252"`, `listen_address = "127.0.0.1:0"`).Replace(reference)
	os.WriteFile(path, []byte(good), 0o600)
	d.reload(ctx, false)
	if d.cfg == nil || len(d.entries) != 1 {
		t.Fatalf("good config not loaded: %+v", d.cfg)
	}
	os.WriteFile(path, []byte(strings.Replace(good, "concurrent = 2", "concurrent = 2\nbogus = 1", 1)), 0o600)
	d.reload(ctx, false)
	if d.cfg == nil || d.cfg.Concurrent != 2 || len(d.entries) != 1 {
		t.Fatalf("bad config replaced the good one: %+v", d.cfg)
	}

	e := d.entries["glrt-XXXXXXXXXXXXXXXXXXXX"]
	d.verify(ctx, e)
	if e.state != "verified" || e.verifiedID != 1 || d.verifiedCount() != 1 {
		t.Errorf("verify: state %q id %d", e.state, e.verifiedID)
	}
	// A second runner with an unknown token is rejected; removing the first stops handling it.
	two := strings.Replace(good, `token = "glrt-XXXXXXXXXXXXXXXXXXXX"`, `token = "glrt-YYYYYYYYYYYYYYYYYYYY"`, 1)
	os.WriteFile(path, []byte(two), 0o600)
	d.reload(ctx, false)
	if len(d.entries) != 1 || d.entries["glrt-XXXXXXXXXXXXXXXXXXXX"] != nil {
		t.Fatalf("removed runner still handled: %v", d.entries)
	}
	e2 := d.entries["glrt-YYYYYYYYYYYYYYYYYYYY"]
	d.verify(ctx, e2)
	if e2.state != "rejected" || d.verifiedCount() != 0 || verifyCalls != 2 {
		t.Errorf("unknown token: state %q, %d verified, %d calls", e2.state, d.verifiedCount(), verifyCalls)
	}
	_ = time.Second
}
