package api

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/stack"
)

// statusTTL is how long a status snapshot is served without asking the engine again, when no
// engine event said it changed. Engine events invalidate it at once.
const statusTTL = 5 * time.Second

// historyLen is how many memory samples a component keeps for its sparkline.
const historyLen = 60

// ComponentView is one component in the status: what the stack reports, plus resource use.
type ComponentView struct {
	stack.ComponentStatus
	Memory     *MemoryView `json:"memory,omitempty"`
	CPUPercent *float64    `json:"cpu_percent,omitempty"`
	// MemoryHistory is the recent memory use in bytes, oldest first, one sample per stats
	// interval, for the sparkline.
	MemoryHistory []uint64 `json:"memory_history,omitempty"`
}

// MemoryView is a container's memory use now.
type MemoryView struct {
	Usage uint64 `json:"usage"`
	Limit uint64 `json:"limit"`
}

// EngineView says whether the engine answers, and who it is.
type EngineView struct {
	OK    bool         `json:"ok"`
	Info  *engine.Info `json:"info,omitempty"`
	Error string       `json:"error,omitempty"`
}

// GitLabView is where people reach GitLab, as the config says.
type GitLabView struct {
	Host                  string `json:"host"`
	HostSource            string `json:"host_source"` // "config", or "hostname" when gitlab.host is empty
	URL                   string `json:"url"`
	SSHURL                string `json:"ssh_url"`
	Flavour               string `json:"flavour"`
	RootPasswordAvailable bool   `json:"root_password_available"`
}

// StackView sums the stack up.
type StackView struct {
	Name    string `json:"name"`
	State   string `json:"state"` // running, starting, degraded, stopped, partial, absent, unknown
	DataDir string `json:"data_dir"`
}

// Status is GET api/v1/status.
type Status struct {
	Stack       StackView       `json:"stack"`
	Engine      EngineView      `json:"engine"`
	Components  []ComponentView `json:"components"`
	GitLab      GitLabView      `json:"gitlab"`
	Operation   *Operation      `json:"operation"`
	EventCursor uint64          `json:"event_cursor"`
	ConfigFile  ConfigFileView  `json:"config_file"`
	Version     string          `json:"version"`
	ObservedAt  time.Time       `json:"observed_at"`
}

// ConfigFileView says where the config lives and whether it was ever saved.
type ConfigFileView struct {
	Path   string `json:"path"`
	Exists bool   `json:"exists"`
}

type snapshot struct {
	at           time.Time
	engine       EngineView
	rows         []stack.ComponentStatus
	stackOK      bool
	rootPassword bool // the GitLab root password exists in the secret store
	configExists bool
}

// monitor caches the status snapshot (one refresh at a time, the others wait for it) and samples
// container stats for memory, CPU and the sparklines.
type monitor struct {
	s *Server

	mu     sync.Mutex
	snap   *snapshot
	dirty  bool
	flight *refresh // the refresh under way, nil when none

	// observeFn takes a snapshot (m.observe; tests replace it).
	observeFn func(context.Context) *snapshot

	statsMu sync.Mutex
	stats   map[string]*statsHistory // by container ID

	lastWatched atomic.Int64 // unix nanos of the last status request
}

// refresh is one shared status refresh. It runs on its own context, cancelled only when every
// caller waiting for it has gone (tailscale's singleflight.DoChanContext does the same), so one
// browser poll that is aborted does not end, or poison, the refresh the others wait for.
type refresh struct {
	done    chan struct{} // closed when snap is set
	snap    *snapshot
	waiters int
	cancel  context.CancelFunc
}

type statsHistory struct {
	last   engine.Stats
	cpu    *float64
	memory []uint64
}

func newMonitor(s *Server) *monitor {
	m := &monitor{s: s, stats: map[string]*statsHistory{}}
	m.observeFn = m.observe
	return m
}

func (m *monitor) invalidate() {
	m.mu.Lock()
	m.dirty = true
	m.mu.Unlock()
}

// get returns a snapshot no older than statusTTL and not invalidated since, refreshing it when
// needed; fresh forces a refresh (joining one under way is fresh enough). When ctx ends first,
// it returns the last snapshot, and the refresh goes on for the callers still waiting.
func (m *monitor) get(ctx context.Context, fresh bool) *snapshot {
	m.lastWatched.Store(time.Now().UnixNano())
	m.mu.Lock()
	if m.snap != nil && !m.dirty && !fresh && time.Since(m.snap.at) < statusTTL {
		s := m.snap
		m.mu.Unlock()
		return s
	}
	f := m.flight
	if f == nil {
		f = m.startRefresh()
	}
	f.waiters++
	m.mu.Unlock()

	select {
	case <-f.done:
		return f.snap
	case <-ctx.Done():
		m.mu.Lock()
		defer m.mu.Unlock()
		if f.waiters--; f.waiters == 0 {
			f.cancel() // nobody wants it any more
			if m.flight == f {
				m.flight = nil // the next caller starts afresh instead of joining a cancelled one
			}
		}
		if m.snap == nil {
			return &snapshot{at: time.Now(), engine: EngineView{Error: ctx.Err().Error()}}
		}
		return m.snap
	}
}

// startRefresh begins a shared refresh; m.mu is held.
func (m *monitor) startRefresh() *refresh {
	base := context.Background()
	if m.s != nil && m.s.ctx != nil {
		base = m.s.ctx // shutdown still ends it
	}
	ctx, cancel := context.WithCancel(base)
	f := &refresh{done: make(chan struct{}), cancel: cancel}
	m.flight = f
	m.dirty = false
	go func() {
		defer cancel()
		snap := m.observeFn(ctx)
		m.mu.Lock()
		if ctx.Err() == nil {
			m.snap = snap
		} else {
			m.dirty = true // abandoned: its answer is not worth caching
		}
		if m.flight == f {
			m.flight = nil
		}
		m.mu.Unlock()
		f.snap = snap
		close(f.done)
	}()
	return f
}

func (m *monitor) observe(ctx context.Context) *snapshot {
	cfg := m.s.config()
	snap := &snapshot{at: time.Now(), configExists: fileExists(m.s.configPath())}
	if store, err := config.OpenSecrets(cfg.Stack.DataDir); err == nil {
		_, snap.rootPassword = store.Get(config.SecretGitLabRootPassword)
	}
	eng, err := m.s.engine()
	if err != nil {
		snap.engine = EngineView{Error: err.Error()}
		return snap
	}
	info, _ := m.s.engineInfo()
	snap.engine = EngineView{OK: true, Info: &info}
	secrets, err := config.OpenSecrets(cfg.Stack.DataDir)
	if err != nil {
		snap.engine.Error = err.Error()
		return snap
	}
	st := stack.New(cfg, eng, secrets, stack.Options{Logger: m.s.log, Events: events.Discard, Version: m.s.version})
	rows, err := st.Status(ctx)
	if err != nil {
		snap.engine = EngineView{Error: m.s.scrub.Scrub(err.Error())}
		if _, ierr := eng.Info(ctx); ierr == nil {
			snap.engine.OK, snap.engine.Info = true, &info
		}
		return snap
	}
	snap.rows, snap.stackOK = rows, true
	return snap
}

// status builds the response from a snapshot and the stats kept.
func (s *Server) status(ctx context.Context, fresh bool) Status {
	snap := s.mon.get(ctx, fresh)
	cfg := s.config()
	out := Status{
		Stack:      StackView{Name: cfg.Stack.Name, DataDir: cfg.Stack.DataDir},
		Engine:     snap.engine,
		GitLab:     s.gitlabView(cfg, snap.rootPassword),
		Operation:  s.ops.running(),
		Version:    s.version,
		ObservedAt: snap.at,
		ConfigFile: ConfigFileView{Path: s.configPath(), Exists: snap.configExists},
		Components: []ComponentView{},
	}
	out.EventCursor = s.feed.Head()
	s.mon.statsMu.Lock()
	for _, r := range snap.rows {
		v := ComponentView{ComponentStatus: r}
		if h, ok := s.mon.stats[r.ID]; ok && r.ID != "" && r.State == "running" {
			v.Memory = &MemoryView{Usage: h.last.MemoryUsage, Limit: h.last.MemoryLimit}
			v.CPUPercent = h.cpu
			v.MemoryHistory = append([]uint64(nil), h.memory...)
		}
		out.Components = append(out.Components, v)
	}
	s.mon.statsMu.Unlock()
	out.Stack.State = stackState(snap)
	return out
}

func stackState(snap *snapshot) string {
	if !snap.stackOK {
		return "unknown"
	}
	var running, healthy, missing, starting, bad int
	for _, r := range snap.rows {
		switch {
		case r.State == "missing":
			missing++
		case r.State == "running":
			running++
			switch r.Health {
			case "healthy", "":
				healthy++
			case "starting":
				starting++
			default:
				bad++
			}
		}
	}
	n := len(snap.rows)
	switch {
	case n == 0 || missing == n:
		return "absent"
	case running == 0:
		return "stopped"
	case bad > 0:
		return "degraded"
	case starting > 0:
		return "starting"
	case healthy == n:
		return "running"
	}
	return "partial"
}

func (s *Server) gitlabView(cfg config.Config, rootPassword bool) GitLabView {
	v := GitLabView{Host: cfg.GitLab.Host, HostSource: "config", Flavour: cfg.GitLab.Flavour, RootPasswordAvailable: rootPassword}
	if v.Host == "" {
		v.HostSource = "hostname"
		v.Host, _ = os.Hostname()
	}
	v.URL = "http://" + hostPort(v.Host, cfg.GitLab.HTTPPort) + "/"
	v.SSHURL = "ssh://git@" + hostPort(v.Host, cfg.GitLab.SSHPort) + "/"
	return v
}

func hostPort(host string, port int) string {
	if port == 80 {
		return host
	}
	return host + ":" + itoa(port)
}

// statsLoop samples each running container's stats every StatsEvery while someone looked at
// the status in the last two minutes, and not at all otherwise: with nobody watching, the
// controller needs only the engine's event stream (on a NAS, idle Engine API calls cost CPU
// that GitLab wants; bench/README.md has the count). A status request wakes it at once.
func (m *monitor) statsLoop(ctx context.Context) {
	every := m.s.opts.StatsEvery
	for {
		watched := time.Since(time.Unix(0, m.lastWatched.Load())) <= 2*time.Minute
		if watched {
			m.sample(ctx)
		}
		wait := every
		if !watched {
			wait = time.Hour // until someone watches again (below)
		}
		// Wake early when someone starts watching again.
		deadline := time.Now().Add(wait)
		for time.Now().Before(deadline) {
			step := min(every, time.Until(deadline))
			sleep(ctx, step)
			if ctx.Err() != nil {
				return
			}
			if time.Since(time.Unix(0, m.lastWatched.Load())) < every {
				break
			}
		}
	}
}

func (m *monitor) sample(ctx context.Context) {
	eng, err := m.s.engine()
	if err != nil {
		return
	}
	m.mu.Lock()
	snap := m.snap
	m.mu.Unlock()
	if snap == nil || time.Since(snap.at) > statusTTL {
		snap = m.get(ctx, false)
	}
	live := map[string]bool{}
	for _, r := range snap.rows {
		if r.ID == "" || r.State != "running" {
			continue
		}
		live[r.ID] = true
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := eng.ContainerStats(sctx, r.ID)
		cancel()
		if err != nil {
			continue
		}
		m.statsMu.Lock()
		h := m.stats[r.ID]
		if h == nil {
			h = &statsHistory{}
			m.stats[r.ID] = h
		}
		if pct, ok := engine.CPUPercent(h.last, st); ok {
			h.cpu = &pct
		}
		h.last = st
		h.memory = append(h.memory, st.MemoryUsage)
		if len(h.memory) > historyLen {
			h.memory = h.memory[len(h.memory)-historyLen:]
		}
		m.statsMu.Unlock()
	}
	m.statsMu.Lock()
	for id := range m.stats {
		if !live[id] {
			delete(m.stats, id)
		}
	}
	m.statsMu.Unlock()
}

func fileExists(p string) bool {
	if p == "" {
		return false
	}
	_, err := os.Stat(p)
	return err == nil
}
