package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// waitForServices is how long the stand-in waits for PostgreSQL and Redis to answer, like the
// real entrypoint's 60 tries of pg_isready and redis-cli ping.
const waitForServices = 60 * time.Second

// readyFile tells the exec path (bundle / gitlab-rails) that this server finished booting.
const readyFile = "/run/forgebox-standin/ready"

var logger = log.New(os.Stderr, "standin-gitlab: ", 0)

func logf(format string, args ...any) { logger.Printf(format, args...) }

type server struct {
	cfg   Config
	db    *pool
	logf  func(string, ...any)
	ready atomic.Bool
	phase string    // "entrypoint", "supervisord" (after the restart) or "single" (no restart)
	since time.Time // when this phase began serving
}

// serve is the container's main process (the image's entrypoint). It returns the exit code, or
// does not return when it replaces itself with the restarted "supervisord" (restart.go).
func serve() int {
	logf("forgebox GitLab stand-in (a test double, not GitLab; claims version %s) starting", claimedVersion())
	cfg, err := LoadConfig(osLookup)
	if err != nil {
		for _, p := range err.(*ConfigError).Problems {
			logf("refusing to start: %s", p)
		}
		return 1
	}
	logf("flavour %s: database %q as %q at %s:%d, Redis at %s:%d, external URL %s, ssh port %d, monitoring allowlist %v",
		cfg.Flavour, cfg.DBName, cfg.DBUser, cfg.DBHost, cfg.DBPort, cfg.RedisHost, cfg.RedisPort,
		cfg.ExternalURL(), cfg.PublicSSHPort, cfg.Monitoring)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Remove(readyFile)

	conn, err := connectWithRetry(ctx, cfg, waitForServices, logf)
	if err != nil {
		logf("refusing to start: %v", err)
		return 1
	}
	firstBoot, err := checkDatabase(ctx, conn, cfg)
	if err != nil {
		conn.Close(context.Background())
		logf("refusing to start: %v", err)
		return 1
	}
	if err := redisWait(ctx, cfg, waitForServices, logf); err != nil {
		conn.Close(context.Background())
		logf("refusing to start: %v", err)
		return 1
	}
	clearStoppedServices()
	if cfg.RestartAfterMigration {
		return entrypointWithRestart(ctx, conn, cfg, firstBoot) // restart.go
	}
	createdRoot, err := migrate(ctx, conn, cfg)
	if err == nil {
		err = prepareData(ctx, conn, cfg) // upgrade.go: version rules, migrations, secrets, host keys
	}
	conn.Close(context.Background())
	if err != nil {
		logf("refusing to start: %v", err)
		return 1
	}
	switch {
	case firstBoot:
		logf("first boot: database was empty; stand-in tables created, root user seeded")
	case createdRoot:
		logf("root user seeded")
	default:
		logf("existing stand-in state found in database %q", cfg.DBName)
	}
	r, err := startServices(ctx, cfg, "single", true)
	if err != nil {
		logf("refusing to start: %v", err)
		return 1
	}
	return r.runUntilStopped(ctx)
}

// running is the HTTP and SSH side of one boot: what supervisord runs in the real image.
type running struct {
	s      *server
	hs     *http.Server
	sshLn  net.Listener
	booted sync.Once
	failed chan struct{} // closed when the HTTP server fails
	cancel context.CancelFunc
}

// startServices listens and boots for cfg.BootDelay in the background; puma false keeps the API
// and readiness down (Puma stopped) until markBooted is called by the caller.
func startServices(ctx context.Context, cfg Config, phase string, puma bool) (*running, error) {
	db, err := newPool(cfg)
	if err != nil {
		return nil, err
	}
	s := &server{cfg: cfg, db: db, logf: logf, phase: phase, since: time.Now().UTC()}
	httpLn, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.HTTPListen))
	if err != nil {
		return nil, err
	}
	sshLn, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.SSHListen))
	if err != nil {
		httpLn.Close()
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &running{s: s, sshLn: sshLn, failed: make(chan struct{}), cancel: cancel,
		hs: &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}}
	go serveSSHBanner(sshLn)
	if phase != "entrypoint" { // queued by the migration; the restarted Sidekiq runs them
		go s.drainMigrations(rctx)
	}
	go func() {
		if err := r.hs.Serve(httpLn); err != nil && err != http.ErrServerClosed {
			logf("http: %v", err)
			close(r.failed)
		}
	}()
	logf("listening: http on :%d, ssh banner on :%d; booting for %s", cfg.HTTPListen, cfg.SSHListen, cfg.BootDelay)
	if puma {
		go func() {
			select {
			case <-rctx.Done():
			case <-time.After(cfg.BootDelay):
				r.markBooted()
			}
		}()
	}
	return r, nil
}

// markBooted makes readiness answer ok and the API and exec path work.
func (r *running) markBooted() {
	r.booted.Do(func() {
		if err := writeReadyFile(); err != nil {
			logf("cannot write %s: %v", readyFile, err)
		}
		r.s.ready.Store(true)
		logf("ready (stand-in): readiness reports ok")
	})
}

// shutdown stops answering: HTTP, the SSH banner, the background migrations.
func (r *running) shutdown() {
	r.s.ready.Store(false)
	os.Remove(readyFile)
	r.cancel()
	r.sshLn.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.hs.Shutdown(sctx)
}

// runUntilStopped serves until SIGTERM (exit 0) or an HTTP failure (exit 1).
func (r *running) runUntilStopped(ctx context.Context) int {
	code := 0
	select {
	case <-ctx.Done():
	case <-r.failed:
		code = 1
	}
	logf("stopping")
	r.shutdown()
	return code
}

// serveSSHBanner stands in for sshd: it greets with an SSH-2.0 banner and hangs up.
func serveSSHBanner(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write([]byte(sshGreeting()))
			buf := make([]byte, 256)
			c.Read(buf)
		}()
	}
}

// processStart is field 22 of /proc/<pid>/stat: when the process started, in clock ticks since
// boot; with the pid it names one process for good.
func processStart(pid int) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", fmt.Errorf("bad stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", fmt.Errorf("bad stat")
	}
	return f[19], nil
}

func writeReadyFile() error {
	st, err := processStart(os.Getpid())
	if err != nil {
		return err
	}
	if err := os.MkdirAll("/run/forgebox-standin", 0o755); err != nil {
		return err
	}
	return os.WriteFile(readyFile, []byte(fmt.Sprintf("%d %s\n", os.Getpid(), st)), 0o644)
}

// serverReady reports whether a stand-in server in this container finished booting and still
// runs (a ready file left by a previous run of a restarted container does not count).
func serverReady() bool {
	b, err := os.ReadFile(readyFile)
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		return false
	}
	st, err := processStart(pid)
	return err == nil && st == f[1]
}

func (s *server) allowedMonitor(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range s.cfg.Monitoring {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /-/health", s.monitor(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("GitLab OK"))
	}))
	mux.HandleFunc("GET /-/liveness", s.monitor(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	}))
	mux.HandleFunc("GET /-/readiness", s.monitor(s.handleReadiness))
	// GitLab's Prometheus endpoint. MetricsController includes
	// RequiresAllowlistedMonitoringClient (gitlabhq, app/controllers/metrics_controller.rb and
	// app/controllers/concerns/requires_allowlisted_monitoring_client.rb): a client outside
	// the monitoring allowlist gets 404. The health_check_access_token alternative is not
	// emulated: forgebox never uses it.
	mux.HandleFunc("GET /-/metrics", s.monitor(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Write([]byte("# stand-in: no real metrics\nstandin_up 1\n"))
	}))

	api := http.NewServeMux()
	api.HandleFunc("GET /api/v4/version", s.handleVersion)
	api.HandleFunc("GET /api/v4/user", s.handleUser)
	api.HandleFunc("POST /api/v4/user/runners", s.handleCreateRunner)
	api.HandleFunc("DELETE /api/v4/personal_access_tokens/self", s.handleRevokeSelf)
	api.HandleFunc("POST /api/v4/runners/verify", s.handleVerify)
	api.HandleFunc("DELETE /api/v4/runners", s.handleDeleteByToken)
	api.HandleFunc("GET /api/v4/runners/all", s.handleListRunners)
	api.HandleFunc("GET /api/v4/runners/{id}", s.handleGetRunner)
	api.HandleFunc("PUT /api/v4/runners/{id}", s.handleUpdateRunner)
	api.HandleFunc("DELETE /api/v4/runners/{id}", s.handleDeleteRunner)
	api.HandleFunc("GET /api/v4/standin/fetches", s.handleFetches)
	s.ciRoutes(api) // ci.go: projects, pipelines, jobs, traces; the runner's job protocol
	api.HandleFunc("GET /api/v4/standin/state", s.handleState)
	api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/api/"):
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "404 Not Found"})
		case r.Method == http.MethodGet:
			s.handleGitInfoRefs(w, r)
		default:
			http.NotFound(w, r)
		}
	})
	mux.Handle("/", s.booted(api))

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Forgebox-Standin", "gitlab")
		rec := &statusRecorder{ResponseWriter: w, status: 200}
		mux.ServeHTTP(rec, r)
		if r.URL.Path != "/-/readiness" && r.URL.Path != "/-/liveness" && r.URL.Path != "/-/health" && r.URL.Path != "/-/metrics" {
			s.logf("%s %s -> %d (%s)", r.Method, r.URL.Path, rec.status, r.RemoteAddr)
		}
	})
}

// monitor restricts the health endpoints to the monitoring allowlist; GitLab answers others 404.
func (s *server) monitor(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.allowedMonitor(r) {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}
}

// booted answers 502 like GitLab Workhorse while Puma is still booting or stopped (and while
// sameersbn's nginx is stopped, where the real image would refuse the connection).
func (s *server) booted(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() || serviceStopped("puma") || serviceStopped("nginx") {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("GitLab is not responding"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

type check struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

func result(err error) []check {
	if err != nil {
		return []check{{Status: "failed", Message: err.Error()}}
	}
	return []check{{Status: "ok"}}
}

// handleReadiness is GET /-/readiness[?all=1]: master_check fails until the boot delay passed;
// ?all=1 adds the dependency checks (PostgreSQL, and the Redis-backed ones).
func (s *server) handleReadiness(w http.ResponseWriter, r *http.Request) {
	out := map[string]any{}
	failed := false
	if s.ready.Load() {
		out["master_check"] = result(nil)
	} else {
		out["master_check"] = []check{{Status: "failed", Message: "unexpected Master check result: false"}}
		failed = true
	}
	if v := r.URL.Query().Get("all"); v == "1" || v == "true" {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		dbErr := s.db.with(ctx, func(c *pgx.Conn) error { return c.Ping(ctx) })
		redisErr := redisPing(ctx, s.cfg)
		out["db_check"] = result(dbErr)
		for _, k := range []string{"cache_check", "queues_check", "shared_state_check", "sessions_check"} {
			out[k] = result(redisErr)
		}
		failed = failed || dbErr != nil || redisErr != nil
	}
	status := http.StatusOK
	out["status"] = "ok"
	if failed {
		status = http.StatusServiceUnavailable
		out["status"] = "failed"
	}
	writeJSON(w, status, out)
}
