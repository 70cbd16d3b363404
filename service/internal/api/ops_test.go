package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/api"
	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/stack"
)

// TestOperationsOnTheEngine drives a real stack through the API: busy answers, up, status with
// stats, the activity feed, logs followed by cursor, a component restart, a container stopped
// behind forgebox's back, the root password reveal, and down. At the end no response body and
// no log line holds a value from the secret store.
func TestOperationsOnTheEngine(t *testing.T) {
	h := newHarness(t, harnessOptions{engine: true})

	// The CLI holds the stack lock: the API says busy and names it.
	lock, err := stack.TryLock(h.cfg.Stack.DataDir, "up")
	if err != nil {
		t.Fatal(err)
	}
	res, body := h.do(h.bearer("POST", "/api/v1/up", nil), nil)
	e := expectError(t, res, body, http.StatusConflict, api.CodeBusy)
	if !strings.Contains(e.Error.Message, `"up"`) {
		t.Errorf("busy message %q does not name the holder", e.Error.Message)
	}
	lock.Unlock()

	// Two concurrent ups: one runs, the other is told the stack is busy.
	var wg sync.WaitGroup
	codes := make([]int, 2)
	answers := make([][]byte, 2)
	start := make(chan struct{})
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.front("POST", "/api/v1/up", nil)
			<-start
			res, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			codes[i] = res.StatusCode
			var b json.RawMessage
			json.NewDecoder(res.Body).Decode(&b)
			answers[i] = b
		}()
	}
	close(start)
	wg.Wait()
	var op api.Operation
	accepted, busy := 0, 0
	for i, c := range codes {
		switch c {
		case http.StatusAccepted:
			accepted++
			var out struct {
				Operation api.Operation `json:"operation"`
			}
			json.Unmarshal(answers[i], &out)
			op = out.Operation
		case http.StatusConflict:
			busy++
			var eb api.ErrorBody
			json.Unmarshal(answers[i], &eb)
			if eb.Error.Code != api.CodeBusy {
				t.Errorf("409 with code %q", eb.Error.Code)
			}
		}
	}
	if accepted != 1 || busy != 1 {
		t.Fatalf("two concurrent ups answered %v (%s / %s), want one 202 and one 409", codes, answers[0], answers[1])
	}
	if op.ID == "" || op.State != "running" || op.Op != "up" {
		t.Fatalf("accepted operation %+v", op)
	}
	// While it runs, the status names it and a component operation is busy too. A cold up
	// cannot end first: it waits for the GitLab stand-in, which boots for 3 s
	// (FORGEBOX_STANDIN_BOOT_DELAY's default), so these are checked every run.
	if st := h.status(false); st.Operation == nil || st.Operation.ID != op.ID {
		t.Errorf("status operation %+v, want %s", st.Operation, op.ID)
	}
	res, body = h.do(h.bearer("POST", "/api/v1/components/redis/restart", nil), nil)
	if res.StatusCode != http.StatusConflict {
		t.Errorf("a component restart during up: %d %s, want 409", res.StatusCode, body)
	}

	final := h.waitOperation(op.ID, 6*time.Minute)
	if final.State != "succeeded" {
		t.Fatalf("up: %s: %s", final.State, final.Error)
	}

	t.Run("status with stats", func(t *testing.T) {
		var st api.Status
		deadline := time.Now().Add(30 * time.Second)
		for {
			st = h.status(false)
			ready := true
			for _, name := range []string{"postgres", "redis"} {
				c := h.component(st, name)
				ready = ready && c.Memory != nil && len(c.MemoryHistory) >= 2 && c.CPUPercent != nil
			}
			if ready || time.Now().After(deadline) {
				break
			}
			time.Sleep(300 * time.Millisecond)
		}
		for _, name := range []string{"postgres", "redis"} {
			c := h.component(st, name)
			if c.State != "running" || c.Health != "healthy" || !c.UpToDate || c.ID == "" || c.Uptime == "" {
				t.Errorf("%s: %+v", name, c.ComponentStatus)
			}
			if c.Memory == nil || c.Memory.Usage == 0 || c.Memory.Limit == 0 || len(c.MemoryHistory) < 2 || c.CPUPercent == nil {
				t.Errorf("%s: no stats after 30s: memory %+v, history %v, cpu %v", name, c.Memory, c.MemoryHistory, c.CPUPercent)
			}
		}
		for _, c := range st.Components {
			if c.State != "running" || (c.Health != "healthy" && c.Health != "") {
				t.Errorf("after a full up %s is %s/%s", c.Component, c.State, c.Health)
			}
		}
		if len(st.Components) < 4 || st.Stack.State != "running" {
			t.Errorf("stack %+v with %d components", st.Stack, len(st.Components))
		}
		if !st.Engine.OK || st.Engine.Info == nil || st.Engine.Info.APIVersion == "" {
			t.Errorf("engine %+v", st.Engine)
		}
		if st.Operation != nil {
			t.Errorf("an operation still shows: %+v", st.Operation)
		}
	})

	t.Run("activity feed", func(t *testing.T) {
		var page api.EventsPage
		res, body := h.do(h.bearer("GET", "/api/v1/events?after=0&limit=2000", nil), &page)
		expectStatus(t, res, body, http.StatusOK)
		var plans, started, done int
		for _, e := range page.Events {
			switch {
			case e.Kind == events.KindPlan && strings.Contains(e.Message, ": "):
				plans++
			case e.Kind == events.KindStep && strings.Contains(e.Message, "started by admin"):
				started++
			case e.Kind == events.KindDone:
				done++
			}
			if e.Op == "" {
				t.Errorf("event without its operation: %+v", e)
			}
		}
		if plans == 0 || started == 0 || done == 0 {
			t.Errorf("feed has %d plan steps with reasons, %d starts, %d ends, want each", plans, started, done)
		}
		// Reading on from the cursor gives nothing old.
		var next api.EventsPage
		h.do(h.bearer("GET", "/api/v1/events?after="+itoa(page.Cursor), nil), &next)
		for _, e := range next.Events {
			if e.Seq <= page.Cursor {
				t.Errorf("event %d came again after cursor %d", e.Seq, page.Cursor)
			}
		}
		// A cursor from before a restart of the controller resets.
		h.do(h.bearer("GET", "/api/v1/events?after=999999999", nil), &next)
		if !next.Reset {
			t.Error("a cursor beyond the feed was not reset")
		}
	})

	var redisCursor string
	t.Run("logs by cursor", func(t *testing.T) {
		var page api.LogsPage
		res, body := h.do(h.bearer("GET", "/api/v1/components/postgres/logs?tail=20", nil), &page)
		expectStatus(t, res, body, http.StatusOK)
		if !page.Exists || len(page.Lines) == 0 || len(page.Lines) > 20 || page.Cursor == "" {
			t.Fatalf("postgres logs: exists %v, %d lines, cursor %q", page.Exists, len(page.Lines), page.Cursor)
		}
		var again api.LogsPage
		h.do(h.bearer("GET", "/api/v1/components/postgres/logs?after="+page.Cursor, nil), &again)
		for _, l := range again.Lines {
			for _, old := range page.Lines {
				if l == old {
					t.Errorf("line %q came again after the cursor", l.Text)
				}
			}
		}
		h.do(h.bearer("GET", "/api/v1/components/redis/logs?tail=5", nil), &page)
		redisCursor = page.Cursor
		res, body = h.do(h.bearer("GET", "/api/v1/components/nope/logs", nil), nil)
		expectError(t, res, body, http.StatusNotFound, api.CodeNotFound)
		res, body = h.do(h.bearer("GET", "/api/v1/components/redis/logs?after=yesterday", nil), nil)
		expectError(t, res, body, http.StatusBadRequest, api.CodeInvalidRequest)
	})

	t.Run("component restart", func(t *testing.T) {
		before := h.component(h.status(true), "redis")
		o := h.startOp("/api/v1/components/redis/restart")
		if f := h.waitOperation(o.ID, 3*time.Minute); f.State != "succeeded" || f.Component != "redis" {
			t.Fatalf("restart redis: %+v", f)
		}
		after := h.component(h.status(true), "redis")
		if !after.StartedAt.After(before.StartedAt) || after.Health != "healthy" || after.ID != before.ID {
			t.Errorf("redis before %+v, after %+v", before.ComponentStatus, after.ComponentStatus)
		}
		// The restart wrote new lines; following from the earlier cursor gets only those.
		var page api.LogsPage
		h.do(h.bearer("GET", "/api/v1/components/redis/logs?after="+redisCursor, nil), &page)
		cur, _ := time.Parse(time.RFC3339Nano, redisCursor)
		if len(page.Lines) == 0 {
			t.Error("no new redis lines after a restart")
		}
		for _, l := range page.Lines {
			if !l.Time.After(cur) {
				t.Errorf("line at %s is not after the cursor %s", l.Time, cur)
			}
		}
		res, body := h.do(h.bearer("POST", "/api/v1/components/nope/restart", nil), nil)
		expectError(t, res, body, http.StatusNotFound, api.CodeNotFound)
		res, body = h.do(h.bearer("POST", "/api/v1/components/redis/explode", nil), nil)
		expectError(t, res, body, http.StatusNotFound, api.CodeNotFound)
	})

	t.Run("engine events keep the status current", func(t *testing.T) {
		redis := h.component(h.status(true), "redis") // a fresh snapshot: only an event makes it stale
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := h.eng.Stop(ctx, redis.ID, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		// Wait for the event itself, not a window: once the feed tells that redis stopped, the
		// cached status (no refresh asked for) must say so too.
		stopped := time.Now()
		deadline := stopped.Add(time.Minute)
		for found := false; !found; {
			var page api.EventsPage
			h.do(h.bearer("GET", "/api/v1/events?after=0&limit=2000", nil), &page)
			for _, e := range page.Events {
				found = found || (e.Op == "engine" && e.Component == "redis" && strings.Contains(e.Message, "stopped"))
			}
			if !found && time.Now().After(deadline) {
				t.Fatal("the feed did not tell that redis stopped within a minute")
			}
			if !found {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if seen := h.component(h.status(false), "redis"); seen.State == "running" {
			t.Fatalf("the feed told that redis stopped (%s after the stop), but the status still says running", time.Since(stopped).Round(time.Millisecond))
		}
		o := h.startOp("/api/v1/components/redis/up")
		if f := h.waitOperation(o.ID, 3*time.Minute); f.State != "succeeded" {
			t.Fatalf("up redis: %+v", f)
		}
	})

	t.Run("doctor", func(t *testing.T) {
		var out struct {
			Checks []struct{ Name, Status string } `json:"checks"`
		}
		res, body := h.do(h.bearer("GET", "/api/v1/doctor", nil), &out)
		expectStatus(t, res, body, http.StatusOK)
		ok := false
		for _, c := range out.Checks {
			ok = ok || (c.Name == "engine" && c.Status == "ok")
		}
		if !ok {
			t.Errorf("doctor checks %+v: no passing engine check", out.Checks)
		}
	})

	t.Run("root password reveal", func(t *testing.T) {
		store, err := config.OpenSecrets(h.cfg.Stack.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		// The whole-stack up gave GitLab its root password; the test never makes one itself.
		want, ok := store.Get(config.SecretGitLabRootPassword)
		if !ok {
			t.Fatal("no GitLab root password in the secret store after a full up")
		}
		for name, r := range map[string]*http.Request{
			"anonymous":  h.req("POST", revealPath, nil),
			"no CSRF":    withoutHeader(h.front("POST", revealPath, nil), api.HeaderCSRF),
			"cross-site": withHeader(h.front("POST", revealPath, nil), "Sec-Fetch-Site", "cross-site"),
			"GET":        h.bearer("GET", revealPath, nil),
		} {
			res, body := h.do(r, nil)
			if res.StatusCode < 400 || strings.Contains(string(body), want) {
				t.Errorf("%s: status %d, body %s", name, res.StatusCode, body)
			}
		}
		var out struct{ Username, Password string }
		res, body := h.do(h.front("POST", revealPath, nil), &out)
		expectStatus(t, res, body, http.StatusOK)
		if out.Password != want || out.Username != "root" || res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("reveal gave %q for %q (cache %q)", out.Password, out.Username, res.Header.Get("Cache-Control"))
		}
		if st := h.status(true); !st.GitLab.RootPasswordAvailable {
			t.Error("status does not say the root password is there")
		}
	})

	t.Run("down", func(t *testing.T) {
		o := h.startOp("/api/v1/down")
		if f := h.waitOperation(o.ID, 3*time.Minute); f.State != "succeeded" {
			t.Fatalf("down: %+v", f)
		}
		st := h.status(false)
		for _, c := range st.Components {
			if c.State != "missing" {
				t.Errorf("after down %s is %s", c.Component, c.State)
			}
		}
		if st.Stack.State != "absent" {
			t.Errorf("stack state %q after down", st.Stack.State)
		}
	})

	// Last: nothing the API answered (but the reveal) and nothing it logged holds a secret.
	t.Run("no secret in any answer or log line", func(t *testing.T) {
		values := h.secretValues()
		if len(values) < 2 {
			t.Fatalf("the secret store has %d values after an up", len(values))
		}
		if !slices.ContainsFunc(values, func(v string) bool { return strings.HasPrefix(v, "glrt-") }) {
			t.Fatal("the whole stack came up but no runner token is among the values searched for")
		}
		bodies, logs := h.bodies.String(), h.logs.String()
		if !strings.Contains(logs, "operation finished") || len(bodies) < 1000 {
			t.Fatalf("the checks saw too little: %d bytes of answers, log:\n%s", len(bodies), logs)
		}
		for _, v := range append(values, h.creds.AdminToken, h.creds.FrontSecret) {
			if strings.Contains(bodies, v) {
				t.Errorf("a response body holds the secret %s…", v[:6])
			}
			if strings.Contains(logs, v) {
				t.Errorf("the log holds the secret %s…", v[:6])
			}
		}
	})
}

func (h *harness) operation(id string) (api.Operation, bool) {
	var out struct {
		Operation api.Operation `json:"operation"`
	}
	res, _ := h.do(h.bearer("GET", "/api/v1/operations/"+id, nil), &out)
	return out.Operation, res.StatusCode == http.StatusOK
}

func withoutHeader(r *http.Request, k string) *http.Request { r.Header.Del(k); return r }
func withHeader(r *http.Request, k, v string) *http.Request { r.Header.Set(k, v); return r }

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
