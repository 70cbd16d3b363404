package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/msg"
)

// Headers of the authentication contract with the DSM CGI front and with scripts.
const (
	HeaderFrontSecret = "X-Forgebox-Front-Secret" // the front's shared secret (front.secret)
	HeaderUser        = "X-Forgebox-User"         // the DSM user the front authenticated
	HeaderLang        = "X-Forgebox-Lang"         // DSM's language, when the front knows it
	HeaderCSRF        = "X-Forgebox-CSRF"         // must be "1" on state-changing browser requests
	SessionCookie     = "forgebox_session"
	sessionLifetime   = 30 * 24 * time.Hour
)

// Auth methods, as recorded on a request.
const (
	authFront   = "front"
	authBearer  = "bearer"
	authSession = "session"
)

// Credentials are the two secrets the controller accepts, read from (or created in) the data dir.
type Credentials struct {
	FrontSecret string
	AdminToken  string
}

// EnsureCredentials reads front.secret and admin.token from dataDir, creating each one that is
// missing: 32 random bytes as hex, no newline, written atomically, front.secret mode 0640 and
// admin.token 0600, both given to the owner of the data dir (on DSM the package user, who runs
// the CGI front and must read front.secret).
func EnsureCredentials(dataDir string, log *slog.Logger) (Credentials, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return Credentials{}, fmt.Errorf("create data dir %s: %w", dataDir, err)
	}
	front, err := ensureSecretFile(dataDir, config.FrontSecretFile, 0o640, log)
	if err != nil {
		return Credentials{}, err
	}
	admin, err := ensureSecretFile(dataDir, config.AdminTokenFile, 0o600, log)
	if err != nil {
		return Credentials{}, err
	}
	return Credentials{FrontSecret: front, AdminToken: admin}, nil
}

// ReadAdminToken returns the admin token, creating it when missing, for `forgebox token`.
func ReadAdminToken(dataDir string, log *slog.Logger) (string, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", fmt.Errorf("create data dir %s: %w", dataDir, err)
	}
	return ensureSecretFile(dataDir, config.AdminTokenFile, 0o600, log)
}

// minSecretLen refuses a hand-edited, guessable secret file.
const minSecretLen = 16

func ensureSecretFile(dir, name string, mode os.FileMode, log *slog.Logger) (string, error) {
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		v := strings.TrimSpace(string(b))
		if len(v) < minSecretLen {
			return "", fmt.Errorf("%s holds fewer than %d characters: delete it and restart forgebox serve to get a new one", path, minSecretLen)
		}
		return v, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	v, err := config.RandomSecret(32)
	if err != nil {
		return "", err
	}
	if err := config.WriteFileAtomic(path, []byte(v), mode); err != nil {
		return "", err
	}
	if fi, err := os.Stat(dir); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			if err := os.Lchown(path, int(st.Uid), int(st.Gid)); err != nil && log != nil {
				log.Warn("cannot give the file to the data dir's owner", "path", path, "uid", st.Uid, "gid", st.Gid, "err", err)
			}
		}
	}
	if log != nil {
		log.Info("created credential file", "path", path)
	}
	return v, nil
}

func equalSecret(got, want string) bool {
	if want == "" {
		return false
	}
	// ConstantTimeCompare leaks only the length, which is fixed for generated secrets.
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// Session cookies are "v2.<generation>.<issued unix>.<hex HMAC>", keyed by the admin token:
// valid across restarts, all revoked at once by replacing admin.token, and all revoked by a
// logout, which bumps the generation kept in the data dir (session.generation). A cookie of an
// older generation is refused, so a copy taken before a logout is worth nothing after it.
func (s *Server) newSession(now time.Time) string {
	payload := strconv.FormatUint(s.sessionGen.Load(), 10) + "." + strconv.FormatInt(now.Unix(), 10)
	return "v2." + payload + "." + s.sessionMAC(payload)
}

func (s *Server) sessionMAC(payload string) string {
	m := hmac.New(sha256.New, []byte(s.creds.AdminToken))
	m.Write([]byte("forgebox-session-v2|" + payload))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Server) validSession(v string, now time.Time) bool {
	parts := strings.Split(v, ".")
	if len(parts) != 4 || parts[0] != "v2" {
		return false
	}
	gen, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil || gen != s.sessionGen.Load() {
		return false
	}
	issued, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return false
	}
	age := now.Sub(time.Unix(issued, 0))
	if age < -time.Minute || age > sessionLifetime {
		return false
	}
	return hmac.Equal([]byte(parts[3]), []byte(s.sessionMAC(parts[1]+"."+parts[2])))
}

// readSessionGeneration reads the session generation from dataDir; a missing file is
// generation 0 (no logout yet).
func readSessionGeneration(dataDir string) (uint64, error) {
	path := filepath.Join(dataDir, config.SessionGenerationFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	gen, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s does not hold a number: delete it and restart forgebox serve (every browser then logs in again)", path)
	}
	return gen, nil
}

// endSessions bumps the session generation, on disk first (0600, atomic) so a restart cannot
// bring the old cookies back, then in memory.
func (s *Server) endSessions() error {
	s.sessionMu.Lock()
	defer s.sessionMu.Unlock()
	next := s.sessionGen.Load() + 1
	path := filepath.Join(s.sessionDir, config.SessionGenerationFile)
	if err := config.WriteFileAtomic(path, []byte(strconv.FormatUint(next, 10)), 0o600); err != nil {
		return fmt.Errorf("end the sessions: %w", err)
	}
	s.sessionGen.Store(next)
	return nil
}

// authenticate says how the request proved itself, or "" when it did not.
func (s *Server) authenticate(r *http.Request) string {
	if v := r.Header.Get(HeaderFrontSecret); v != "" {
		if equalSecret(v, s.creds.FrontSecret) {
			return authFront
		}
		return "" // a wrong secret is not rescued by another credential
	}
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if ok && equalSecret(strings.TrimSpace(tok), s.creds.AdminToken) {
			return authBearer
		}
		return ""
	}
	if ck, err := r.Cookie(SessionCookie); err == nil && s.validSession(ck.Value, time.Now()) {
		return authSession
	}
	return ""
}

const (
	ctxAuth = "forgebox.auth"
	ctxUser = "forgebox.user"
)

// requireAuth lets authenticated requests through and answers 401 to the rest.
func (s *Server) requireAuth(c *gin.Context) {
	method := s.authenticate(c.Request)
	if method == "" {
		abort(c, errUnauthorized)
		return
	}
	c.Set(ctxAuth, method)
	user := "admin"
	if method == authFront {
		if u := c.GetHeader(HeaderUser); u != "" && len(u) <= 64 {
			user = u
		}
	}
	c.Set(ctxUser, user)
	c.Next()
}

// csrfGuard refuses state-changing requests that a page on another site could have made. A
// browser attaches cookies (and the DSM front adds its secret) to any request, so such requests
// must carry X-Forgebox-CSRF (a custom header, which a cross-site form cannot send and a
// cross-site fetch cannot send without a preflight we never grant), must not be marked
// cross-site by Sec-Fetch-Site, and must come from our own origin when they name one. A bearer
// token is never attached by a browser on its own, so scripts using it need no custom header.
func (s *Server) csrfGuard(c *gin.Context) {
	switch c.Request.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		c.Next()
		return
	}
	r := c.Request
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		abort(c, codedError(http.StatusForbidden, CodeForbidden, msg.New("api.crossSite")))
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" && !sameOrigin(r, origin) {
		abort(c, codedError(http.StatusForbidden, CodeForbidden, msg.New("api.otherOrigin")))
		return
	}
	if c.GetString(ctxAuth) != authBearer && r.Header.Get(HeaderCSRF) != "1" {
		abort(c, codedError(http.StatusForbidden, CodeForbidden, msg.New("api.csrf", "header", HeaderCSRF)))
		return
	}
	c.Next()
}

// sameOrigin compares the Origin's host with the one the request was sent to: Host, or the
// X-Forwarded-Host a reverse proxy (the DSM front) sets when it rewrites Host.
func sameOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false // includes "null": sandboxed frames, file: pages
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	if fh := r.Header.Get("X-Forwarded-Host"); fh != "" {
		first, _, _ := strings.Cut(fh, ",")
		return strings.EqualFold(u.Host, strings.TrimSpace(first))
	}
	return false
}

type loginRequest struct {
	Token string `json:"token"`
}

// login trades the admin token for a session cookie (HttpOnly, SameSite=Strict), so the browser
// never holds the token itself.
func (s *Server) postLogin(c *gin.Context) {
	var req loginRequest
	if err := decodeJSON(c, &req); err != nil {
		fail(c, err)
		return
	}
	if !equalSecret(strings.TrimSpace(req.Token), s.creds.AdminToken) {
		s.log.Warn("login refused: wrong admin token", "client", c.ClientIP())
		abort(c, codedError(http.StatusUnauthorized, CodeUnauthorized, msg.New("api.wrongToken")))
		return
	}
	s.setSessionCookie(c)
	s.log.Info("logged in with the admin token", "client", c.ClientIP())
	c.JSON(http.StatusOK, gin.H{"ok": true})
}

// getLogin serves the login page, or with ?token= logs in and goes to the app (a link that
// `forgebox token --url` prints for hosts without DSM).
func (s *Server) getLogin(c *gin.Context) {
	tok := c.Query("token")
	if tok == "" {
		s.serveLoginPage(c, http.StatusOK)
		return
	}
	if !equalSecret(strings.TrimSpace(tok), s.creds.AdminToken) {
		s.log.Warn("login refused: wrong admin token", "client", c.ClientIP())
		s.serveLoginPage(c, http.StatusUnauthorized)
		return
	}
	s.setSessionCookie(c)
	s.log.Info("logged in with the admin token", "client", c.ClientIP())
	c.Header("Cache-Control", "no-store")
	// Relative, so it stays under the DSM prefix (http.Redirect would make it absolute), and it
	// drops the token from the address bar.
	c.Header("Location", "./")
	c.Status(http.StatusSeeOther)
}

func (s *Server) setSessionCookie(c *gin.Context) {
	secure := c.Request.TLS != nil || c.GetHeader("X-Forwarded-Proto") == "https"
	http.SetCookie(c.Writer, &http.Cookie{
		Name: SessionCookie, Value: s.newSession(time.Now()), Path: "/",
		MaxAge: int(sessionLifetime / time.Second), HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode,
	})
}

// postLogout ends every browser session, not only the caller's: sessions are not tracked one
// by one, and a cookie copied off this browser must stop working too.
func (s *Server) postLogout(c *gin.Context) {
	if err := s.endSessions(); err != nil {
		fail(c, err)
		return
	}
	s.log.Info("logged out: every session cookie issued so far is refused from now on", "user", c.GetString(ctxUser))
	http.SetCookie(c.Writer, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	c.JSON(http.StatusOK, gin.H{"ok": true})
}
