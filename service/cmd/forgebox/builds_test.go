package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/testenv"
	"github.com/forgebox/forgebox/service/internal/upgrade/standintest"
)

// TestBuildsCLI brings a stack of the test images up (GitLab and GitLab Runner are contract
// stand-ins), makes a pipeline through the GitLab stand-in, and checks `forgebox builds` and
// `forgebox builds log JOB --follow` against it. The runner stand-in plays runner 18.8, whose
// job logs carry line headers (FF_TIMESTAMPS): the log prints clean, --timestamps shows the time.
func TestBuildsCLI(t *testing.T) {
	eng := testenv.Engine(t)
	im := testenv.TestImages(t)
	cfg := testenv.Config(t, eng, im)
	cfg.Runner.Image = standintest.RunnerImage(t, im, "18.8.11")
	src, err := config.Encode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := writeFile(t, string(src))
	if code, _, errOut := runCLI(t, "--config", p, "builds"); code != 1 || !strings.Contains(errOut, "GitLab has no container yet") {
		t.Errorf("builds before up: exit %d, %s", code, errOut)
	}
	if code, out, errOut := runCLI(t, "--config", p, "up"); code != 0 {
		t.Fatalf("up: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, _ := runCLI(t, "--config", p, "builds"); code != 0 || !strings.Contains(out, "no pipelines yet") {
		t.Errorf("builds on a new GitLab: exit %d\n%s", code, out)
	}

	// A pipeline, made through the stand-in's own endpoint.
	det, err := eng.Inspect(context.Background(), cfg.Stack.Name+"-gitlab")
	if err != nil {
		t.Fatal(err)
	}
	sec, _ := config.OpenSecrets(cfg.Stack.DataDir)
	token, _ := sec.Get(config.SecretGitLabAdminToken)
	body := `{"project":"demo/cli","ref":"main","commit_title":"Build from the CLI","jobs":[
		{"name":"count","stage":"test","tags":["docker"],"script":["for i in 1 2 3 4 5; do echo \"count $i\"; sleep 1; done",
			"printf 'fetching 1/2\\r'; sleep 1; printf 'fetching 2/2\\r'; sleep 1; echo 'fetched 2 of 2'","echo 'warning: disk almost full' >&2","echo done counting"]},
		{"name":"train","stage":"test","tags":["gpu"],"script":["echo never"]}]}`
	req, _ := http.NewRequest("POST", "http://"+det.IPs[cfg.NetworkName()]+"/api/v4/standin/pipelines", strings.NewReader(body))
	req.Header.Set("PRIVATE-TOKEN", token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("stand-in pipeline: %d %s", res.StatusCode, b)
	}
	var created struct {
		ID   int64 `json:"id"`
		Jobs []struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
		} `json:"jobs"`
	}
	json.Unmarshal(b, &created)
	count, train := created.Jobs[0].ID, created.Jobs[1].ID

	code, out, errOut := runCLI(t, "--config", p, "builds")
	if code != 0 {
		t.Fatalf("builds: exit %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(lines[0], "PIPELINE") || !strings.Contains(lines[0], "STATUS") ||
		!strings.Contains(out, fmt.Sprintf("%d ", created.ID)) || !strings.Contains(out, "demo/cli") || !strings.Contains(out, "Build from the CLI") ||
		!strings.Contains(out, fmt.Sprintf("train#%d:pending(stuck)", train)) ||
		!strings.Contains(out, fmt.Sprintf("job %d (train, pipeline %d) is stuck: no runner has the tags gpu: add a runner profile with these tags", train, created.ID)) {
		t.Errorf("builds table:\n%s", out)
	}

	// Follow the job's log until it ends.
	start := time.Now()
	var stdout, stderr bytes.Buffer
	code = run([]string{"--config", p, "builds", "log", fmt.Sprint(count), "--follow"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("builds log --follow: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	log := stdout.String()
	for _, want := range []string{"$ for i in 1 2 3 4 5", "count 1\n", "count 5\n", "done counting\n", "Job succeeded"} {
		if !strings.Contains(log, want) {
			t.Errorf("followed log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "\x1b[") || strings.Contains(log, "section_start") || strings.Contains(log, "section_end") {
		t.Errorf("escape codes or section markers in a log printed to a file:\n%q", log)
	}
	if regexp.MustCompile(`\d{6}Z [0-9a-f]{2}[OE]`).MatchString(log) || regexp.MustCompile(`(?m)^fetching`).MatchString(log) || !strings.Contains(log, "\nfetched 2 of 2\n") ||
		!strings.Contains(log, "\nwarning: disk almost full\n") {
		t.Errorf("the runner's line headers or a continued line printed raw:\n%q", log)
	}

	// The runner's time first with --timestamps; stderr red with --color.
	code, stamped, errOut := runCLI(t, "--config", p, "builds", "log", fmt.Sprint(count), "--timestamps", "--color")
	if code != 0 {
		t.Fatalf("builds log --timestamps: exit %d %s", code, errOut)
	}
	stampedLine := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z `)
	for _, l := range strings.Split(strings.TrimSuffix(stamped, "\n"), "\n") {
		if !stampedLine.MatchString(l) {
			t.Errorf("a line without the runner's time: %q", l)
		}
	}
	for _, re := range []string{`(?m)^\S+Z count 3$`, `(?m)^\S+Z fetched 2 of 2$`, `(?m)^\S+Z \x1b\[31mwarning: disk almost full\x1b\[0m$`} {
		if !regexp.MustCompile(re).MatchString(stamped) {
			t.Errorf("--timestamps --color lacks %s:\n%q", re, stamped)
		}
	}
	if !strings.Contains(stderr.String(), fmt.Sprintf("job %d (count): success", count)) {
		t.Errorf("stderr: %s", stderr.String())
	}
	t.Logf("followed job %d for %s", count, time.Since(start).Round(time.Second))

	// The runners table names the profile; the stuck job cannot be retried.
	if code, out, _ := runCLI(t, "--config", p, "builds", "runners"); code != 0 || !strings.Contains(out, cfg.Stack.Name+"-default") || !strings.Contains(out, "default") || !strings.Contains(out, "online") {
		t.Errorf("runners: exit %d\n%s", code, out)
	}
	if code, _, errOut := runCLI(t, "--config", p, "builds", "retry", fmt.Sprint(train)); code != 1 || !strings.Contains(errOut, "Job is not retryable") {
		t.Errorf("retry a pending job: exit %d %s", code, errOut)
	}
	if code, out, _ := runCLI(t, "--config", p, "builds", "cancel", fmt.Sprint(train)); code != 0 || !strings.Contains(out, "canceled") {
		t.Errorf("cancel the stuck job: exit %d %s", code, out)
	}
	if code, _, _ := runCLI(t, "--config", p, "down"); code != 0 {
		t.Errorf("down failed")
	}
}
