package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/doctor"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/msg"
	"github.com/forgebox/forgebox/service/internal/stack"
)

func (s *Server) getSession(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"auth": c.GetString(ctxAuth), "user": c.GetString(ctxUser), "version": s.version})
}

// getStatus answers from the cached snapshot (kept current by engine events); ?refresh=1 asks
// the engine now.
func (s *Server) getStatus(c *gin.Context) {
	c.JSON(http.StatusOK, s.status(c, c.Query("refresh") == "1"))
}

// EventsPage is GET api/v1/events.
type EventsPage struct {
	Events []events.Event `json:"events"`
	Cursor uint64         `json:"cursor"` // pass as ?after= next time
	Lost   uint64         `json:"lost"`   // events that fell out of the feed before being read
	More   bool           `json:"more"`   // more events wait: ask again at once
	Reset  bool           `json:"reset"`  // the cursor was from before a controller restart
}

func (s *Server) getEvents(c *gin.Context) {
	after, err := uintQuery(c, "after", 0)
	if err != nil {
		fail(c, err)
		return
	}
	limit, err := uintQuery(c, "limit", 500)
	if err != nil {
		fail(c, err)
		return
	}
	limit = min(max(limit, 1), 2000)
	page := EventsPage{}
	if head := s.feed.Head(); after > head {
		after, page.Reset = 0, true
	}
	page.Events, page.Cursor, page.Lost = s.feed.Since(after, int(limit))
	if page.Events == nil {
		page.Events = []events.Event{}
	}
	page.More = page.Cursor < s.feed.Head()
	c.JSON(http.StatusOK, page)
}

func uintQuery(c *gin.Context, name string, def uint64) (uint64, error) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, codedError(http.StatusBadRequest, CodeInvalidRequest, msg.New("api.notWholeNumber", "name", name, "value", msg.Q(v)))
	}
	return n, nil
}

func (s *Server) getOperations(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"operations": s.ops.list(), "running": s.ops.running()})
}

func (s *Server) getOperation(c *gin.Context) {
	op, ok := s.ops.get(c.Param("id"))
	if !ok {
		abort(c, codedError(http.StatusNotFound, CodeNotFound, msg.New("api.noOperation", "id", c.Param("id"))))
		return
	}
	c.JSON(http.StatusOK, gin.H{"operation": op})
}

func (s *Server) postStackOp(op string) gin.HandlerFunc {
	run := map[string]opFunc{
		"up":      func(ctx context.Context, st *stack.Stack) error { _, err := st.Up(ctx); return err },
		"down":    func(ctx context.Context, st *stack.Stack) error { return st.Down(ctx) },
		"restart": func(ctx context.Context, st *stack.Stack) error { _, err := st.Restart(ctx); return err },
	}[op]
	return func(c *gin.Context) { s.startOperation(c, op, "", run) }
}

func (s *Server) postComponentOp(c *gin.Context) {
	name, action := c.Param("name"), c.Param("action")
	var run opFunc
	switch action {
	case "up":
		run = func(ctx context.Context, st *stack.Stack) error { _, err := st.UpComponent(ctx, name); return err }
	case "down":
		run = func(ctx context.Context, st *stack.Stack) error { return st.DownComponent(ctx, name) }
	case "restart":
		run = func(ctx context.Context, st *stack.Stack) error { return st.RestartComponent(ctx, name) }
	default:
		abort(c, codedError(http.StatusNotFound, CodeNotFound, msg.New("api.noAction", "action", msg.Q(action))))
		return
	}
	s.startOperation(c, action, name, run)
}

// LogsPage is GET api/v1/components/:name/logs.
type LogsPage struct {
	Component string           `json:"component"`
	Container string           `json:"container"`
	Exists    bool             `json:"exists"` // false: no container yet
	Lines     []engine.LogLine `json:"lines"`
	Cursor    string           `json:"cursor"` // pass as ?after= to get only newer lines
	Truncated bool             `json:"truncated,omitempty"`
}

const (
	defaultTail = 200
	maxLogLines = 5000
)

// getLogs returns the last ?tail= lines, or with ?after=CURSOR the lines written since: a
// client follows a log by polling with the cursor it was given.
func (s *Server) getLogs(c *gin.Context) {
	name := c.Param("name")
	tail, err := uintQuery(c, "tail", defaultTail)
	if err != nil {
		fail(c, err)
		return
	}
	tail = min(max(tail, 1), maxLogLines)
	var after time.Time
	if v := c.Query("after"); v != "" {
		if after, err = time.Parse(time.RFC3339Nano, v); err != nil {
			abort(c, codedError(http.StatusBadRequest, CodeInvalidRequest, msg.New("api.badCursor")))
			return
		}
	}
	eng, err := s.engine()
	if err != nil {
		abort(c, errNoEngine)
		return
	}
	row, found := s.findComponent(c, name, false)
	if !found || (row.ID == "" && row.State != "missing") {
		row, found = s.findComponent(c, name, true)
	}
	if !found {
		known := []string{}
		for _, r := range s.mon.get(c, false).rows {
			known = append(known, r.Component)
		}
		fail(c, &stack.UnknownComponentError{Name: name, Known: known})
		return
	}
	page := LogsPage{Component: name, Container: row.Container, Exists: row.ID != "", Lines: []engine.LogLine{}, Cursor: c.Query("after")}
	if row.ID == "" {
		c.JSON(http.StatusOK, page)
		return
	}
	q := engine.LogQuery{Tail: int(tail), After: after}
	if !after.IsZero() {
		q.Tail = maxLogLines
	}
	readAt := time.Now()
	lines, err := eng.ReadLogs(c, row.ID, q)
	if engine.IsNotFound(err) {
		s.mon.invalidate()
		page.Exists = false
		c.JSON(http.StatusOK, page)
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	page.Truncated = !after.IsZero() && len(lines) >= maxLogLines
	for i := range lines {
		lines[i].Text = s.scrub.Scrub(lines[i].Text)
	}
	page.Lines = lines
	switch {
	case len(lines) > 0:
		page.Cursor = lines[len(lines)-1].Time.Format(time.RFC3339Nano)
	case after.IsZero():
		// Nothing yet: anything written from now on (with a margin for the read itself) is new.
		page.Cursor = readAt.Add(-2 * time.Second).UTC().Format(time.RFC3339Nano)
	}
	c.JSON(http.StatusOK, page)
}

func (s *Server) findComponent(c *gin.Context, name string, fresh bool) (stack.ComponentStatus, bool) {
	for _, r := range s.mon.get(c, fresh).rows {
		if r.Component == name {
			return r, true
		}
	}
	return stack.ComponentStatus{}, false
}

func (s *Server) getDoctor(c *gin.Context) {
	cfg := s.config()
	var checks []doctor.Check
	if eng, err := s.engine(); err != nil {
		checks = doctor.Run(c, cfg, nil, err)
	} else {
		checks = doctor.Run(c, cfg, eng, nil)
	}
	for i := range checks {
		checks[i].Detail = s.scrub.Scrub(checks[i].Detail)
	}
	c.JSON(http.StatusOK, gin.H{"checks": checks, "failed": doctor.Failed(checks)})
}

// revealRootPassword is the one call that returns a secret: GitLab's initial root password,
// to an authenticated user who asked for it explicitly. It is logged (who, not what).
func (s *Server) revealRootPassword(c *gin.Context) {
	store, err := config.OpenSecrets(s.config().Stack.DataDir)
	if err != nil {
		fail(c, err)
		return
	}
	pw, ok := store.Get(config.SecretGitLabRootPassword)
	if !ok {
		abort(c, codedError(http.StatusNotFound, CodeNotFound, msg.New("api.noRootPassword")))
		return
	}
	s.log.Info("revealed GitLab's initial root password", "user", c.GetString(ctxUser), "client", c.ClientIP())
	c.Set(ctxMayShowSecret, true)
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"username": "root", "password": pw})
}
