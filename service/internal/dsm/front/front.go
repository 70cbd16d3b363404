package front

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/forgebox/forgebox/service/internal/redact"
)

// Authenticator answers who sent a request and whether they may use Forgebox.
type Authenticator interface {
	// User is the DSM user logged in on the request's session, "" when none is.
	User(ctx context.Context, r *Request) (string, error)
	// IsAdmin says whether the user is in DSM's administrators group.
	IsAdmin(ctx context.Context, user string) (bool, error)
}

// DSMAuth asks DSM's own tools, from inside the CGI process so that they see the request's
// environment (HTTP_COOKIE, REMOTE_ADDR, ...), as the guide's "Application Authentication"
// says: authenticate.cgi prints the logged-in user's name, or nothing.
type DSMAuth struct {
	AuthenticateCGI string
	LoginCGI        string
	IDTool          string
	Environ         func() []string // the CGI environment; os.Environ when nil
}

// SynoToken step. With DSM's "Improve protection against CSRF" on, authenticate.cgi wants the
// session's SynoToken in its QUERY_STRING. The browser sends it as the X-SYNO-TOKEN header or
// the SynoToken parameter when it has it (the app window passes it to the iframe); otherwise
// DSM's login.cgi, run as a GET in the same environment, tells the token of the session the
// cookie names ({"SynoToken": "..."}).
func (a DSMAuth) User(ctx context.Context, r *Request) (string, error) {
	token := r.Header.Get("X-SYNO-TOKEN")
	if token == "" {
		token = r.Query("SynoToken")
	}
	if token == "" && a.LoginCGI != "" {
		if exists(a.LoginCGI) {
			out, err := a.runTool(ctx, a.LoginCGI, "")
			if err != nil {
				return "", fmt.Errorf("login.cgi: %w", err)
			}
			token = parseSynoToken(out)
		}
	}
	query := ""
	if token != "" {
		query = "SynoToken=" + url.QueryEscape(token)
	}
	out, err := a.runTool(ctx, a.AuthenticateCGI, query)
	if err != nil {
		return "", fmt.Errorf("authenticate.cgi: %w", err)
	}
	user, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	user = strings.TrimSpace(user)
	if user == "" {
		return "", nil
	}
	if !validUser(user) {
		return "", fmt.Errorf("authenticate.cgi answered something that is not a user name")
	}
	return user, nil
}

// runTool runs one of DSM's CGIs with the request's environment, as a GET with the given query
// and no body: the request body stays on our stdin for the controller.
func (a DSMAuth) runTool(ctx context.Context, path, query string) ([]byte, error) {
	environ := a.Environ
	if environ == nil {
		environ = os.Environ
	}
	env := slices.DeleteFunc(slices.Clone(environ()), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return k == "QUERY_STRING" || k == "REQUEST_METHOD" || k == "CONTENT_LENGTH" || k == "CONTENT_TYPE"
	})
	env = append(env, "REQUEST_METHOD=GET", "QUERY_STRING="+query)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// parseSynoToken finds {"SynoToken": "..."} in login.cgi's output, after its CGI headers if it
// printed any.
func parseSynoToken(out []byte) string {
	i := bytes.IndexByte(out, '{')
	if i < 0 {
		return ""
	}
	var v struct {
		SynoToken string `json:"SynoToken"`
	}
	if json.NewDecoder(bytes.NewReader(out[i:])).Decode(&v) != nil {
		return ""
	}
	return v.SynoToken
}

// validUser accepts DSM's local and directory user names (alice, DOMAIN\bob, carol@example.com)
// and nothing that could break a header or a command line.
func validUser(u string) bool {
	if len(u) > 256 || strings.HasPrefix(u, "-") {
		return false
	}
	return !strings.ContainsFunc(u, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

// IsAdmin asks `id -Gn <user>`, which lists the groups DSM gives the user, local or directory.
func (a DSMAuth) IsAdmin(ctx context.Context, user string) (bool, error) {
	if !validUser(user) {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, a.IDTool, "-Gn", user).Output()
	if err != nil {
		return false, fmt.Errorf("%s -Gn %s: %w", a.IDTool, user, err)
	}
	return slices.Contains(strings.Fields(string(out)), AdminGroup), nil
}

// Front is index.cgi: DSM's authentication in front of the controller. Only members of DSM's
// administrators group get through; everything else gets 401 with a JSON body. Through the
// front, the controller sees the path after index.cgi (PATH_INFO), the method, query, body and
// a few headers, never DSM's cookie or token, plus the shared secret and the DSM user.
type Front struct {
	Env        Env
	Auth       Authenticator
	Log        *slog.Logger  // made on first use when nil: making it reads the secret files
	PathInfo   string        // the CGI's PATH_INFO: the controller path
	ScriptName string        // the CGI's SCRIPT_NAME, to keep redirects below index.cgi
	RequestURI string        // the CGI's REQUEST_URI: the route when DSM sets no PATH_INFO
	SessionTTL time.Duration // how long an administrator's session is remembered for GETs; 0: never (session.go)
	// The CGI environment, for the diagnostics (names only, and three path values).
	Getenv  func(string) string
	Environ func() []string
	// Report answers GET index.cgi/_dsm/report, the app window's "Download diagnostics", with
	// this request's CGI facts: package dsm builds the report (the small front binary hands
	// the request to the forgebox binary for it). Nil: the front has no report to give.
	Report func(w ResponseWriter, r *Request, facts CGIFacts)
	// DataDir finds the controller's data dir when front.secret is not in Env.DataDir; nil
	// reads what prestart recorded (RecordedDataDir).
	DataDir func() (string, error)
}

// NewFront makes the front for this CGI process, with DSM's tools.
func NewFront(env Env, getenv func(string) string) *Front {
	return &Front{
		Env:        env,
		Auth:       DSMAuth{AuthenticateCGI: env.AuthenticateCGI, LoginCGI: env.LoginCGI, IDTool: env.IDTool},
		PathInfo:   getenv("PATH_INFO"),
		ScriptName: getenv("SCRIPT_NAME"),
		RequestURI: getenv("REQUEST_URI"),
		SessionTTL: SessionTTL,
		Getenv:     getenv,
		Environ:    os.Environ,
	}
}

// log is the front's logger: warnings and errors on stderr (DSM's web server log), every
// secret of the data dir masked.
func (f *Front) log() *slog.Logger {
	if f.Log == nil {
		dataDir := f.Env.DataDir
		f.Log = slog.New(redact.New(func() string { return dataDir }).Handler(
			slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))).With("component", "index.cgi")
	}
	return f.Log
}

func (f *Front) route() (path, base string, redirect bool) {
	base = f.ScriptName
	if f.PathInfo != "" {
		if base == "" {
			base = AppPrefix
		}
		return f.PathInfo, base, false
	}
	uriPath := f.RequestURI
	if u, err := url.ParseRequestURI(f.RequestURI); err == nil {
		uriPath = u.Path
	} else if i := strings.IndexAny(uriPath, "?#"); i >= 0 {
		uriPath = uriPath[:i]
	}
	for _, prefix := range []string{f.ScriptName, AppPrefix} {
		if prefix == "" || !strings.HasPrefix(uriPath, prefix) {
			continue
		}
		rest := uriPath[len(prefix):]
		switch {
		case rest == "":
			return "/", prefix, true
		case strings.HasPrefix(rest, "/"):
			return rest, prefix, false
		}
	}
	// Another prefix (an alias DSM might use): cut at the index.cgi path segment.
	if i := strings.Index(uriPath+"/", "/index.cgi/"); i >= 0 {
		prefix := uriPath[:i+len("/index.cgi")]
		if rest := uriPath[len(prefix):]; rest != "" {
			return rest, prefix, false
		}
		return "/", prefix, true
	}
	// Nothing tells the path: serve the app's root rather than redirect, which could loop.
	if base == "" {
		base = AppPrefix
	}
	return "/", base, false
}

// Serve answers the one request of this CGI process: read from f.Getenv, f.Environ and stdin,
// answered on stdout.
func Serve(f *Front, stdin io.Reader, stdout io.Writer) error {
	r, err := RequestFromEnv(f.Getenv, f.Environ(), stdin)
	if err != nil {
		return err
	}
	w := newCGIWriter(stdout)
	f.ServeRequest(w, r)
	return w.Flush()
}

// Headers of the browser's request that reach the controller; X-Forgebox-* ones too, except
// those the front sets itself.
var forwardHeaders = []string{"Accept", "Content-Type", "Origin", "Sec-Fetch-Site"}

// ServeRequest answers r.
func (f *Front) ServeRequest(w ResponseWriter, r *Request) {
	path, base, redirect := f.route()
	if redirect {
		// Relative links of the web app must resolve below index.cgi/, not beside it.
		loc := base + "/"
		if r.RawQuery != "" {
			loc += "?" + r.RawQuery
		}
		w.Header().Set("Location", loc)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(302)
		if r.Method == "GET" {
			fmt.Fprintf(w, "<a href=\"%s\">Found</a>.\n", html.EscapeString(loc))
		}
		return
	}
	key := sessionKey(r)
	user, remembered := f.rememberedUser(key) // session.go
	if !remembered {
		var err error
		user, err = f.Auth.User(r.Context, r)
		if err != nil {
			f.log().Warn("cannot check the DSM login", "err", err)
		}
		if user == "" {
			unauthorized(w, "Sign in to DSM first: Forgebox opens from the DSM desktop.")
			return
		}
		admin, err := f.Auth.IsAdmin(r.Context, user)
		if err != nil {
			f.log().Warn("cannot read the user's groups", "user", user, "err", err)
		}
		if !admin {
			unauthorized(w, fmt.Sprintf("Forgebox is for DSM administrators, and %s is not in the administrators group.", user))
			return
		}
		f.rememberSession(key, user)
	}
	// The CGI record is kept by the requests DSM checked (at least one per session every
	// SessionTTL): the window's remembered polls skip it, since DSM's web server gives them
	// the environment it gave the checked one.
	if f.Getenv != nil && f.Environ != nil && (!remembered || path == ReportPath) {
		facts := cgiFacts(f.Getenv, f.Environ())
		recordCGI(f.Env, facts)
		if path == ReportPath {
			if f.Report == nil {
				writeError(w, 404, "no_report", "This index.cgi cannot write the diagnostics; run forgebox dsm report on the NAS.")
				return
			}
			f.Report(w, r, withUserName(facts))
			return
		}
	}
	secret, err := f.secret()
	if err != nil {
		f.readFailed(w, err)
		return
	}
	f.proxy(w, r, path, base, user, secret)
}

// secret reads front.secret: from the package's data dir, else from the data dir a hand-edited
// config names (Front.DataDir). A permission problem with the second is the one to tell, since
// the data dir it names is the first thing that could not be read.
func (f *Front) secret() (string, error) {
	secret, err := FrontSecret(f.Env.DataDir)
	if err == nil {
		return secret, nil
	}
	locate := f.DataDir
	if locate == nil {
		locate = func() (string, error) { return RecordedDataDir(f.Env.VarDir) }
	}
	dir, derr := locate()
	if derr == nil && dir != "" && dir != f.Env.DataDir {
		return FrontSecret(dir)
	}
	if errors.Is(derr, fs.ErrPermission) {
		return "", derr
	}
	return "", err
}

// withoutToken drops DSM's SynoToken from a query, keeping everything else as it was sent.
func withoutToken(raw string) string {
	if raw == "" {
		return ""
	}
	parts := strings.Split(raw, "&")
	kept := parts[:0]
	for _, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		if uk, err := url.QueryUnescape(k); err == nil && strings.EqualFold(uk, "SynoToken") {
			continue
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "&")
}

// readFailed answers a request the front could not serve because it could not read the
// config or the front secret. Which uid runs DSM's 3rdparty CGIs is not settled (reports say
// root, the package user or http; shared research audit-spk.md finding 5), so a permission
// problem names the effective uid and groups rather than passing for "not started".
func (f *Front) readFailed(w ResponseWriter, err error) {
	if errors.Is(err, fs.ErrPermission) {
		who := EffectiveIDs()
		f.log().Error("index.cgi cannot read the controller's secret or config", "err", err, "euid", who.UID, "egid", who.GID, "groups", who.Groups)
		writeError(w, 500, "front_permission",
			fmt.Sprintf("Forgebox's page cannot read its files: %v. DSM runs it as uid %d (groups %s); the files belong to the package user. "+
				"Download the diagnostics (forgebox dsm report) and report this at the support address in Package Center.",
				err, who.UID, who.GroupList()))
		return
	}
	f.log().Warn("no front secret", "err", err)
	writeError(w, 503, "controller_unavailable",
		"The Forgebox controller has not started yet. Start Forgebox in Package Center, then try again.")
}

// IDs is a process's effective user and groups.
type IDs struct {
	UID, GID int
	Groups   []int
}

// EffectiveIDs tells who this process runs as.
func EffectiveIDs() IDs {
	groups, _ := os.Getgroups()
	return IDs{UID: os.Geteuid(), GID: os.Getegid(), Groups: groups}
}

// GroupList is the groups as "1,2,3", the primary one first.
func (i IDs) GroupList() string {
	parts := []string{strconv.Itoa(i.GID)}
	for _, g := range i.Groups {
		if g != i.GID {
			parts = append(parts, strconv.Itoa(g))
		}
	}
	return strings.Join(parts, ",")
}

// wantsPage says whether the request is the browser loading a page (the app window's iframe)
// rather than the web app's API call, which wants JSON.
func wantsPage(r *Request) bool {
	return r.Method == "GET" && strings.Contains(r.Header.Get("Accept"), "text/html")
}

// controllerPage is the app window's page while the controller does not answer: the
// controller's health, told as such. The package is not "stopped" (DSM's status answers from
// the started marker, see Script.status) and GitLab's containers keep running; Container
// Manager restarts the controller by its restart policy. The page asks again by itself.
func (f *Front) controllerPage(w ResponseWriter, r *Request) {
	started := "no"
	if exists(f.Env.StartedMarker()) {
		started = "yes"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Forgebox-Controller", "not-answering")
	w.Header().Set("X-Forgebox-Package-Started", started)
	w.WriteHeader(503)
	zh := strings.HasPrefix(r.Query("lang"), "ch") || strings.HasPrefix(r.Header.Get(HeaderLang), "ch")
	title, body := "Forgebox: the controller is not answering",
		"The Forgebox controller is not answering right now: it may be restarting (after an update of Container Manager, for example). "+
			"GitLab's containers keep running meanwhile. This page tries again every 5 seconds. "+
			"If it stays like this, open Container Manager and look at the forgebox project's log, or stop and start Forgebox in Package Center."
	if started == "no" {
		body = "Forgebox is stopped. Start it in Package Center; this page tries again every 5 seconds."
	}
	if zh {
		title = "Forgebox：控制器未响应"
		body = "Forgebox 控制器暂时没有响应，可能正在重启（例如 Container Manager 更新之后）。在此期间 GitLab 的容器仍在运行。本页面每 5 秒自动重试。" +
			"如果一直如此，请在 Container Manager 中查看 forgebox 项目的日志，或在套件中心中停止并重新启动 Forgebox。"
		if started == "no" {
			body = "Forgebox 已停止。请在套件中心中启动它；本页面每 5 秒自动重试。"
		}
	}
	fmt.Fprintf(w, "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"5\"><title>%s</title></head>"+
		"<body style=\"font-family:sans-serif;margin:2em\"><h1 style=\"font-size:1.3em\">%s</h1><p id=\"controller-health\">%s</p></body></html>\n",
		html.EscapeString(title), html.EscapeString(title), html.EscapeString(body))
}

func unauthorized(w ResponseWriter, message string) {
	writeError(w, 401, "unauthorized", message)
}

// writeError answers in the controller's error shape: {"error": {"code", "message"}}.
func writeError(w ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": message}})
}
