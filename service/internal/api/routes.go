package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/forgebox/forgebox/service/internal/msg"
	"github.com/forgebox/forgebox/ui/web"
)

func itoa(n int) string { return strconv.Itoa(n) }

func (s *Server) routes() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	// Handlers pass c as their context: with the fallback, it ends when the client goes, so a
	// closed browser tab stops its engine and GitLab calls.
	r.ContextWithFallback = true
	// Redirects gin would make are absolute paths, wrong under the DSM prefix; none are needed.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	r.SetTrustedProxies(nil) // the client address is the peer's; the front is on loopback
	r.Use(s.requestLog, s.recover, securityHeaders, limitBody, s.scrubAnswers)

	healthz := func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }
	r.GET("/healthz", healthz)
	r.HEAD("/healthz", healthz)
	r.GET("/login", s.getLogin)
	r.GET("/", s.index)
	r.GET("/index.html", s.index)
	r.POST("/api/v1/login", s.csrfGuard, s.postLogin)

	v1 := r.Group("/api/v1", s.requireAuth, s.csrfGuard)
	v1.POST("/logout", s.postLogout)
	v1.GET("/session", s.getSession)
	v1.GET("/status", s.getStatus)
	v1.GET("/events", s.getEvents)
	v1.GET("/operations", s.getOperations)
	v1.GET("/operations/:id", s.getOperation)
	s.backupRoutes(v1) // backup.go: backups, restore, upgrade
	v1.POST("/up", s.postStackOp("up"))
	v1.POST("/down", s.postStackOp("down"))
	v1.POST("/restart", s.postStackOp("restart"))
	v1.POST("/components/:name/:action", s.postComponentOp)
	v1.GET("/components/:name/logs", s.getLogs)
	v1.GET("/config", s.getConfig)
	v1.PUT("/config", s.putConfig)
	v1.GET("/runner/profiles", s.listProfiles)
	v1.POST("/runner/profiles", s.createProfile)
	v1.GET("/runner/profiles/:name", s.getProfile)
	v1.PUT("/runner/profiles/:name", s.updateProfile)
	v1.DELETE("/runner/profiles/:name", s.deleteProfile)
	v1.GET("/doctor", s.getDoctor)
	v1.POST("/gitlab/root-password/reveal", s.revealRootPassword)
	s.buildRoutes(v1)  // builds.go
	s.bundleRoutes(v1) // bundles.go

	r.NoRoute(s.noRoute)
	r.NoMethod(func(c *gin.Context) {
		abort(c, codedError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, msg.New("api.methodNotAllowed", "method", c.Request.Method)))
	})
	return r
}

// requestLog writes one line per request into the server's logger: method, path (never the
// query, which may hold a login token), status, time, client and user. Polls that succeed are
// debug-level, so an open browser does not fill the log.
func (s *Server) requestLog(c *gin.Context) {
	start := time.Now()
	c.Set(ctxScrub, s.scrub)
	c.Next()
	status := c.Writer.Status()
	level := slog.LevelInfo
	switch {
	case status >= 500:
		level = slog.LevelWarn
	case status < 400 && (c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead):
		level = slog.LevelDebug
	}
	if !s.log.Enabled(c, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", c.Request.Method),
		slog.String("path", c.Request.URL.Path),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
		slog.String("client", c.ClientIP()),
	}
	if u := c.GetString(ctxUser); u != "" {
		attrs = append(attrs, slog.String("user", u), slog.String("auth", c.GetString(ctxAuth)))
	}
	if len(c.Errors) > 0 {
		attrs = append(attrs, slog.String("err", c.Errors.Last().Err.Error()))
	}
	s.log.LogAttrs(c, level, "request", attrs...)
}

func (s *Server) recover(c *gin.Context) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic in handler", "path", c.Request.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if !c.Writer.Written() {
				abort(c, codedError(http.StatusInternalServerError, CodeInternal, msg.New("api.panic")))
			}
		}
	}()
	c.Next()
}

const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'; object-src 'none'"

func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "SAMEORIGIN")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	if strings.HasPrefix(c.Request.URL.Path, "/api/") {
		h.Set("Cache-Control", "no-store")
	}
	c.Next()
}

// limitBody refuses a body over MaxBody: at once when its length is declared, else when a
// handler reads past the limit.
func limitBody(c *gin.Context) {
	if c.Request.ContentLength > MaxBody {
		abort(c, errTooLarge)
		return
	}
	if c.Request.Body != nil {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, MaxBody)
	}
	c.Next()
}

// readBody reads the whole (size-limited) body.
func readBody(c *gin.Context) ([]byte, error) {
	if c.Request.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(c.Request.Body)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, errTooLarge
	}
	if err != nil {
		return nil, codedError(http.StatusBadRequest, CodeInvalidRequest, msg.New("api.readBody", "error", msg.Raw(err.Error())))
	}
	return b, nil
}

// decodeJSON reads the body into v, refusing unknown fields and trailing data.
func decodeJSON(c *gin.Context, v any) error {
	b, err := readBody(c)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return codedError(http.StatusBadRequest, CodeInvalidRequest, msg.New("api.badJSON", "error", msg.Raw(err.Error())))
	}
	if dec.More() {
		return codedError(http.StatusBadRequest, CodeInvalidRequest, msg.New("api.trailingJSON"))
	}
	return nil
}

// asset is one embedded file, with its type and an ETag of its content.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

var assets = loadAssets()

// publicAssets are what the login page needs; every other file is served to authenticated
// requests only.
var publicAssets = map[string]bool{"login.html": true, "login.js": true, "i18n.js": true, "style.css": true, "favicon.svg": true}

func loadAssets() map[string]asset {
	out := map[string]asset{}
	fs.WalkDir(web.Files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := web.Files.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ctype := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) {
		case ".js":
			ctype = "text/javascript; charset=utf-8"
		case ".go":
			return nil
		}
		out[p] = asset{body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	return out
}

func serveAsset(c *gin.Context, name string, status int) {
	a, ok := assets[name]
	if !ok {
		abort(c, errNoPage)
		return
	}
	c.Header("ETag", a.etag)
	c.Header("Cache-Control", "no-cache") // revalidate: cheap with the ETag, and never stale
	if status == http.StatusOK && c.GetHeader("If-None-Match") == a.etag {
		c.Status(http.StatusNotModified)
		return
	}
	c.Data(status, a.ctype, a.body)
}

var langPattern = regexp.MustCompile(`^[A-Za-z_-]{1,12}$`)

// index serves the app to an authenticated browser, with DSM's language (from the front's
// header) in <html data-dsm-lang>; anyone else gets the login page.
func (s *Server) index(c *gin.Context) {
	if s.authenticate(c.Request) == "" {
		s.serveLoginPage(c, http.StatusUnauthorized)
		return
	}
	a := assets["index.html"]
	lang := c.GetHeader(HeaderLang)
	if !langPattern.MatchString(lang) {
		lang = ""
	}
	body := bytes.Replace(a.body, []byte(`data-dsm-lang=""`), []byte(`data-dsm-lang="`+lang+`"`), 1)
	c.Header("Cache-Control", "no-cache")
	c.Data(http.StatusOK, a.ctype, body)
}

func (s *Server) serveLoginPage(c *gin.Context, status int) {
	c.Header("Cache-Control", "no-store")
	serveAsset(c, "login.html", status)
}

func (s *Server) noRoute(c *gin.Context) {
	p := c.Request.URL.Path
	if strings.HasPrefix(p, "/api/") {
		if s.authenticate(c.Request) == "" {
			abort(c, errUnauthorized)
			return
		}
		abort(c, codedError(http.StatusNotFound, CodeNotFound, msg.New("api.noEndpoint", "method", c.Request.Method, "path", p)))
		return
	}
	name := strings.TrimPrefix(p, "/")
	if c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead {
		abort(c, errNoPage)
		return
	}
	if _, ok := assets[name]; !ok || strings.Contains(name, "/") || name == "index.html" {
		abort(c, errNoPage)
		return
	}
	if !publicAssets[name] && s.authenticate(c.Request) == "" {
		abort(c, errUnauthorized)
		return
	}
	serveAsset(c, name, http.StatusOK)
}
