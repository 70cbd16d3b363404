package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/api"
	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
)

// planted are secrets the leak tests put in the data dir, by what they are.
type planted map[string]string

// plantSecrets fills the secret store with known values: a runner record (its token inside
// JSON, as the stack keeps it), GitLab's admin token, and the generated passwords. The
// controller's own credentials are added from the harness.
func (h *harness) plantSecrets() planted {
	h.t.Helper()
	store, err := config.OpenSecrets(h.cfg.Stack.DataDir)
	if err != nil {
		h.t.Fatal(err)
	}
	p := planted{"runner token": "glrt-t1_" + randHex(10), "GitLab admin token": "glpat-" + randHex(10)}
	record, _ := json.Marshal(map[string]any{"id": 42, "token": p["runner token"], "description": h.cfg.Stack.Name + "-default",
		"tags": []string{"docker"}, "run_untagged": true, "created_at": time.Now().UTC()})
	if err := store.Set("runner/default", string(record)); err != nil {
		h.t.Fatal(err)
	}
	if err := store.Set(config.SecretGitLabAdminToken, p["GitLab admin token"]); err != nil {
		h.t.Fatal(err)
	}
	for what, name := range map[string]string{"root password": config.SecretGitLabRootPassword,
		"PostgreSQL superuser password": config.SecretPostgresSuperuser, "GitLab DB password": config.SecretPostgresGitLab} {
		if p[what], err = store.Ensure(name); err != nil {
			h.t.Fatal(err)
		}
	}
	p["controller admin token"], p["front secret"] = h.creds.AdminToken, h.creds.FrontSecret
	return p
}

// TestPlantedSecretsNeverShow plants known secrets, drives each of them into every way out the
// controller has (answers, the log at debug level, the activity feed), through paths that
// really carry text from elsewhere: a container's log shown in the browser, an engine event
// naming a container, a request's path and user name. Each must arrive masked.
func TestPlantedSecretsNeverShow(t *testing.T) {
	h := newHarness(t, harnessOptions{engine: true})
	secrets := h.plantSecrets()
	token := secrets["runner token"]
	image := testImages(t).Redis

	// The runner's container prints its token and a password in its log, as a misbehaving
	// tool would, and fails; a leftover container of the stack carries the token in its name, so
	// the engine event about it does too.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := func(name, component, script string) {
		labels := map[string]string{engine.LabelStack: h.cfg.Stack.Name}
		if component != "" {
			labels[engine.LabelComponent] = component
		}
		id, err := h.eng.Create(ctx, engine.ContainerSpec{Name: name, Image: image, Labels: labels,
			Entrypoint: []string{"sh", "-c", script}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			h.eng.Remove(ctx, id)
		})
		if err := h.eng.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	run(h.cfg.Stack.Name+"-runner", "runner", "echo 'registered with token "+token+"'; echo 'db password "+
		secrets["GitLab DB password"]+"' >&2; exit 3")
	run(h.cfg.Stack.Name+"-old-"+token, "", "exit 4")

	// The feed tells of the leftover's exit; wait for that event.
	var feed []byte
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(string(feed), "stopped with exit code 4") {
		if time.Now().After(deadline) {
			t.Fatalf("no event about the leftover container within a minute; feed: %s", feed)
		}
		time.Sleep(100 * time.Millisecond)
		res, body := h.do(h.bearer("GET", "/api/v1/events?after=0&limit=2000", nil), nil)
		expectStatus(t, res, body, http.StatusOK)
		feed = body
	}
	if !strings.Contains(string(feed), "-old-********") {
		t.Errorf("the event about the leftover does not show its name masked: %s", feed)
	}

	// The runner's log, as the browser's log view reads it.
	var logs api.LogsPage
	deadline = time.Now().Add(time.Minute)
	for len(logs.Lines) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the runner's log shows %d lines after a minute", len(logs.Lines))
		}
		time.Sleep(100 * time.Millisecond)
		res, body := h.do(h.bearer("GET", "/api/v1/components/runner/logs?refresh=1", nil), &logs)
		if res.StatusCode == http.StatusNotFound {
			continue // the status snapshot does not show the container yet
		}
		expectStatus(t, res, body, http.StatusOK)
	}
	if text := logs.Lines[0].Text + logs.Lines[1].Text; !strings.Contains(text, "token ********") || !strings.Contains(text, "password ********") {
		t.Errorf("the runner's log lines are not masked as expected: %+v", logs.Lines)
	}

	// Text from the request itself: a path (echoed by a 404 and logged), the DSM user name (on
	// the request's debug line), a login attempt.
	for _, v := range secrets {
		h.do(h.bearer("GET", "/api/v1/no-such/"+v, nil), nil)
		h.do(h.bearer("GET", "/api/v1/operations/"+v, nil), nil)
		h.do(h.bearer("GET", "/api/v1/components/"+v+"/logs", nil), nil)
		r := h.front("GET", "/api/v1/status", nil)
		r.Header.Set(api.HeaderUser, v)
		res, body := h.do(r, nil)
		expectStatus(t, res, body, http.StatusOK)
		h.srv.Logger().Debug("planted value at debug level "+v, "value", v, "err", &json.UnsupportedValueError{Str: v})
	}

	bodies, logText := h.bodies.String(), h.logs.String()
	for what, v := range secrets {
		for where, text := range map[string]string{"an API answer": bodies, "the controller log (debug level)": logText, "the activity feed": string(feed)} {
			if strings.Contains(text, v) {
				t.Errorf("%s holds the planted %s", where, what)
			}
		}
	}
	// The checks saw the values arrive: each was masked, not simply absent.
	if n := strings.Count(logText, "level=DEBUG msg=\"planted value at debug level ********\""); n != len(secrets) {
		t.Errorf("%d masked debug lines, want %d:\n%s", n, len(secrets), logText)
	}
	if !strings.Contains(logText, "level=DEBUG msg=request") || !strings.Contains(logText, "user=********") {
		t.Errorf("the debug request lines with the planted user names are missing:\n%s", logText)
	}
	if !strings.Contains(bodies, "no such API endpoint: GET /api/v1/no-such/********") {
		t.Errorf("the 404 answers do not echo the masked path")
	}
}
