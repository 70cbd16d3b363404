// Package api is the controller's HTTP face: a gin server with the JSON API under api/v1, the
// embedded web app at /, authentication (the DSM front's shared secret, the admin token, or a
// session cookie got with it), CSRF and size guards, and the background work that keeps the
// status current (engine connection, engine events, container stats). Handlers only translate
// HTTP: the work is done by the stack, engine, config and doctor packages.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/doctor"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/msg"
	"github.com/forgebox/forgebox/service/internal/redact"
	"github.com/forgebox/forgebox/service/internal/stack"
)

// DefaultListen is where `forgebox serve` listens unless told otherwise: loopback only; the DSM
// front and local scripts reach it there.
const DefaultListen = "127.0.0.1:8470"

// MaxBody is the largest request body accepted.
const MaxBody = 1 << 20

// Engine is what the controller asks of the Docker Engine.
type Engine interface {
	stack.Engine
	doctor.Engine
	ContainerStats(ctx context.Context, id string) (engine.Stats, error)
	ReadLogs(ctx context.Context, id string, q engine.LogQuery) ([]engine.LogLine, error)
	WatchContainers(ctx context.Context, fn func(engine.ContainerEvent)) error
	Close() error
}

// Options configure a Server.
type Options struct {
	Config     config.Config
	ConfigPath string // where PUT config writes
	Logger     *slog.Logger
	Version    string
	// Connect reaches the engine; engine.Connect when nil. The server keeps retrying in the
	// background while it fails, and serves meanwhile.
	Connect func(ctx context.Context) (Engine, error)
	// StatsEvery is the container stats interval while someone watches (default 5s).
	StatsEvery time.Duration
	// Preflight, when set, is asked before an operation that starts containers (up, restart);
	// its error refuses the operation with 412 and its message. The DSM package sets it to
	// check that the data share really is the shared folder (dsm.ShareCheck).
	Preflight func(config.Config) error
}

// Server is the controller.
type Server struct {
	opts    Options
	log     *slog.Logger
	creds   Credentials
	scrub   *redact.Scrubber
	feed    *feed
	ops     *operations
	mon     *monitor
	router  *gin.Engine
	version string

	cfgMu    sync.RWMutex
	cfgWrite sync.Mutex // one config write at a time
	cfg      config.Config
	cfgPath  string
	// cfgRev is the config file's revision as the controller last loaded or wrote it: a file
	// that differs was edited outside forgebox, and saving over it would undo that edit.
	cfgRev string

	engMu    sync.RWMutex
	started  atomic.Bool   // Start ran: the engine loop is connecting
	engOnce  sync.Once     // closes engFirst
	engFirst chan struct{} // closed when the first connection attempt has an outcome
	eng      Engine
	engErr   error
	engInfo  engine.Info

	backups backupState // backup.go: the backup scheduler

	builds buildsState // builds.go: GitLab client, pipeline cache, runners

	sessionMu  sync.Mutex    // one logout at a time
	sessionGen atomic.Uint64 // auth.go: cookies of another generation are refused
	sessionDir string        // where session.generation lives: the data dir the server started with

	bg     sync.WaitGroup
	ctx    context.Context // the server's life; operations run under it
	cancel context.CancelFunc
}

// New prepares a server: it creates the credential files when missing and builds the routes.
// Background work starts with Start (Run calls it).
func New(o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Connect == nil {
		o.Connect = func(ctx context.Context) (Engine, error) { return engine.Connect(ctx) }
	}
	if o.StatsEvery == 0 {
		o.StatsEvery = 5 * time.Second
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	creds, err := EnsureCredentials(o.Config.Stack.DataDir, o.Logger)
	if err != nil {
		return nil, err
	}
	rev, _ := fileRevision(o.ConfigPath)
	s := &Server{opts: o, creds: creds, cfg: o.Config, cfgPath: o.ConfigPath, cfgRev: rev, version: o.Version,
		feed: &feed{Feed: events.NewFeed(4000)}, engErr: errors.New("connecting to the Docker Engine"),
		engFirst: make(chan struct{})}
	gen, err := readSessionGeneration(o.Config.Stack.DataDir)
	if err != nil {
		return nil, err
	}
	s.sessionGen.Store(gen)
	s.sessionDir = o.Config.Stack.DataDir
	s.scrub = redact.New(func() string { return s.config().Stack.DataDir }, creds.FrontSecret, creds.AdminToken)
	s.feed.scrub = s.scrub
	// One logger, and every line of it passes the scrubber (a no-op when the caller's logger
	// already scrubs: masked text holds no secret).
	s.log = slog.New(s.scrub.Handler(o.Logger.Handler())).With("component", "api")
	s.ops = newOperations()
	s.mon = newMonitor(s)
	s.router = s.routes()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Logger is the server's scrubbing logger, for callers that log beside it.
func (s *Server) Logger() *slog.Logger { return s.log }

// Handler is the HTTP handler: API, web app and health check.
func (s *Server) Handler() http.Handler { return s.router }

// Start begins the background work: connecting to the engine, watching its events, sampling
// stats. Stop ends it.
func (s *Server) Start() {
	s.bg.Add(2)
	s.started.Store(true)
	go func() { defer s.bg.Done(); s.engineLoop(s.ctx) }()
	go func() { defer s.bg.Done(); s.mon.statsLoop(s.ctx) }()
	s.startBackupSchedule() // backup.go
}

// Stop lets a running operation finish for up to grace, then cancels it and the background
// work, and closes the engine client.
func (s *Server) Stop(grace time.Duration) {
	// waitIdle hands back the operation it saw running under the same lock, so one that ends
	// right at the deadline cannot leave a nil to dereference here.
	if op := s.ops.waitIdle(grace); op != nil {
		s.log.Warn("an operation was still running at shutdown; cancelling it", "op", op.Op, "operation", op.ID)
	}
	s.cancel()
	s.bg.Wait()
	s.ops.waitIdle(30 * time.Second)
	s.engMu.Lock()
	if s.eng != nil {
		s.eng.Close()
		s.eng = nil
	}
	s.engMu.Unlock()
}

// Run serves on addr until ctx ends, then shuts down cleanly.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.router,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.Start()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	s.Stop(20 * time.Second)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// feed is the activity feed. Every event passes the scrubber on the way in, whoever emits it.
// Its head is the ring's own (under the ring's lock), so a cursor and the sequence numbers of
// events emitted at the same time never disagree.
type feed struct {
	*events.Feed
	scrub *redact.Scrubber
}

func (f *feed) Emit(e events.Event) { f.Append(e) }

// Append scrubs e, stores it and returns its sequence number.
func (f *feed) Append(e events.Event) uint64 {
	if f.scrub != nil {
		for _, field := range []*string{&e.Op, &e.Component, &e.Message, &e.Image, &e.Layer} {
			*field = f.scrub.Scrub(*field)
		}
	}
	return f.Feed.Append(e)
}

func (s *Server) configPath() string {
	s.cfgMu.RLock()
	defer s.cfgMu.RUnlock()
	return s.cfgPath
}

func (s *Server) config() config.Config {
	s.cfgMu.RLock()
	defer s.cfgMu.RUnlock()
	return s.cfg
}

// firstConnectWait bounds how long a request made just after start waits for the first
// connection attempt, so a client that asks at once is not told the engine is unreachable
// while forgebox has not yet tried (the fault suite's serve trials did exactly that).
const firstConnectWait = 20 * time.Second

func (s *Server) engine() (Engine, error) {
	s.awaitFirstConnect()
	s.engMu.RLock()
	defer s.engMu.RUnlock()
	if s.eng == nil {
		return nil, s.engErr
	}
	return s.eng, nil
}

func (s *Server) awaitFirstConnect() {
	if !s.started.Load() {
		return
	}
	t := time.NewTimer(firstConnectWait)
	defer t.Stop()
	select {
	case <-s.engFirst:
	case <-s.ctx.Done():
	case <-t.C:
	}
}

func (s *Server) engineInfo() (engine.Info, error) {
	s.awaitFirstConnect()
	s.engMu.RLock()
	defer s.engMu.RUnlock()
	if s.eng == nil {
		return engine.Info{}, s.engErr
	}
	return s.engInfo, nil
}

// engineLoop connects, watches engine events until the stream breaks, and reconnects, with a
// capped backoff. Connection trouble is logged on the change from working to failing only.
func (s *Server) engineLoop(ctx context.Context) {
	backoff := time.Second
	failing := false
	for ctx.Err() == nil {
		eng, err := s.opts.Connect(ctx)
		var info engine.Info
		if err == nil {
			if info, err = eng.Info(ctx); err != nil {
				eng.Close()
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				s.log.Warn("the Docker Engine is not reachable; retrying", "err", err)
				failing = true
			}
			s.engMu.Lock()
			s.engErr = err
			s.engMu.Unlock()
			s.engOnce.Do(func() { close(s.engFirst) })
			s.mon.invalidate()
			sleep(ctx, backoff)
			backoff = min(backoff*2, 30*time.Second)
			continue
		}
		if failing {
			s.log.Info("the Docker Engine is reachable again")
			failing = false
		}
		backoff = time.Second
		s.log.Info("engine connected", "host", info.Host, "api_version", info.APIVersion, "server_version", info.ServerVersion)
		s.engMu.Lock()
		s.eng, s.engInfo, s.engErr = eng, info, nil
		s.engMu.Unlock()
		s.engOnce.Do(func() { close(s.engFirst) })
		s.mon.invalidate()
		// Watch until the stream breaks; a healthy engine that only dropped the stream is
		// watched again at once, a gone one is reconnected.
		for ctx.Err() == nil {
			werr := eng.WatchContainers(ctx, s.onEngineEvent)
			if ctx.Err() != nil {
				return
			}
			s.mon.invalidate()
			if _, ierr := eng.Info(ctx); ierr != nil {
				s.log.Warn("lost the Docker Engine; reconnecting", "err", werr)
				s.engMu.Lock()
				s.eng, s.engErr = nil, fmt.Errorf("lost the Docker Engine: %w", ierr)
				s.engMu.Unlock()
				eng.Close()
				break
			}
			sleep(ctx, time.Second)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// onEngineEvent keeps the status current and tells the activity feed about changes nobody
// asked for: a crash, an out-of-memory kill, a health change.
func (s *Server) onEngineEvent(ev engine.ContainerEvent) {
	s.mon.invalidate()
	if ev.Stack != s.config().Stack.Name {
		return
	}
	name := ev.Component
	if name == "" {
		name = ev.Name
	}
	var m msg.Msg
	status := events.Done
	busy := s.ops.running() != nil
	switch {
	case ev.Action == "oom":
		m, status = msg.New("engine.oom", "name", name), events.Error
	case ev.Action == "die" && ev.ExitCode != "" && ev.ExitCode != "0":
		m, status = msg.New("engine.exited", "name", name, "code", ev.ExitCode), events.Error
	case ev.Action == "health_status: unhealthy":
		m, status = msg.New("engine.unhealthy", "name", name), events.Warning
	case busy:
		return // an operation is reporting its own steps
	case ev.Action == "die":
		m = msg.New("engine.stopped", "name", name)
	case ev.Action == "start":
		m = msg.New("engine.started", "name", name)
	case ev.Action == "health_status: healthy":
		m = msg.New("engine.healthy", "name", name)
	case ev.Action == "destroy":
		m = msg.New("engine.removed", "name", name)
	default:
		return
	}
	s.feed.Emit(events.Event{Kind: events.KindInfo, Status: status, Op: "engine", Component: ev.Component}.With(m))
}

// sink is where a stack operation's events go: secrets masked, pull progress thinned to a few
// updates a second per layer, stamped with the operation, into the feed.
type sink struct {
	s  *Server
	op string

	mu       sync.Mutex
	lastPull map[string]time.Time
}

func (k *sink) Emit(e events.Event) {
	if e.Op == "" {
		e.Op = k.op
	}
	if e.Kind == events.KindPull && e.Total > 0 && e.Current < e.Total {
		key := e.Image + "/" + e.Layer + "/" + e.Message
		k.mu.Lock()
		if k.lastPull == nil {
			k.lastPull = map[string]time.Time{}
		}
		if last, ok := k.lastPull[key]; ok && time.Since(last) < 250*time.Millisecond {
			k.mu.Unlock()
			return
		}
		k.lastPull[key] = time.Now()
		k.mu.Unlock()
	}
	e.Message = k.s.scrub.Scrub(e.Message)
	k.s.feed.Emit(e)
	if e.Kind != events.KindPull {
		k.s.mon.invalidate()
	}
}

// newStack gives an operation a Stack on the current config, with a fresh read of the secret
// store (the CLI may have added to it) and the operation's sink.
func (s *Server) newStack(eng Engine, cfg config.Config, op string) (*stack.Stack, error) {
	secrets, err := config.OpenSecrets(cfg.Stack.DataDir)
	if err != nil {
		return nil, err
	}
	return stack.New(cfg, eng, secrets, stack.Options{
		Logger: s.log, Events: &sink{s: s, op: op}, Version: s.version, SecretsPath: secrets.Path(),
	}), nil
}
