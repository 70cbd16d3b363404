package dsm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/redact"
)

// Authenticator answers who sent a request and whether they may use Forgebox.
type Authenticator interface {
	// User is the DSM user logged in on the request's session, "" when none is.
	User(ctx context.Context, r *http.Request) (string, error)
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
func (a DSMAuth) User(ctx context.Context, r *http.Request) (string, error) {
	token := r.Header.Get("X-SYNO-TOKEN")
	if token == "" {
		token = r.URL.Query().Get("SynoToken")
	}
	if token == "" && a.LoginCGI != "" {
		if _, err := os.Stat(a.LoginCGI); err == nil {
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
	Log        *slog.Logger
	PathInfo   string        // the CGI's PATH_INFO: the controller path
	ScriptName string        // the CGI's SCRIPT_NAME, to keep redirects below index.cgi
	RequestURI string        // the CGI's REQUEST_URI: the route when DSM sets no PATH_INFO
	SessionTTL time.Duration // how long an administrator's session is remembered for GETs; 0: never (frontsession.go)
	Transport  http.RoundTripper
	// The CGI environment, for the diagnostics (names only, and three path values).
	Getenv  func(string) string
	Environ func() []string
}

// NewFront makes the front for this CGI process, with DSM's tools.
func NewFront(env Env, getenv func(string) string) *Front {
	return &Front{
		Env:  env,
		Auth: DSMAuth{AuthenticateCGI: env.AuthenticateCGI, LoginCGI: env.LoginCGI, IDTool: env.IDTool},
		Log: slog.New(redact.New(func() string { return env.DataDir }).Handler(
			slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))).With("component", "index.cgi"),
		PathInfo:   getenv("PATH_INFO"),
		ScriptName: getenv("SCRIPT_NAME"),
		RequestURI: getenv("REQUEST_URI"),
		SessionTTL: SessionTTL,
		Getenv:     getenv,
		Environ:    os.Environ,
	}
}

// AppPrefix is the app window's URL path: DSM links the package's ui directory to
// webman/3rdparty/<package>, and index.cgi is in it.
const AppPrefix = "/webman/3rdparty/" + PackageName + "/index.cgi"

// route is where a request goes: the controller path, and the URL path of index.cgi itself (for
// redirects and Location headers). DSM's CGI runner may not set PATH_INFO or SCRIPT_NAME (stock
// nginx scgi_params pass only REQUEST_URI; Tailscale's DSM package routes on REQUEST_URI too),
// so without PATH_INFO the path is what REQUEST_URI has after index.cgi. redirect is set only
// for a request of exactly .../index.cgi, whose relative links would otherwise resolve beside
// it: the answer, .../index.cgi/, routes to "/" and never redirects again.
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

// ServeCGI answers the one request of this CGI process.
func ServeCGI(env Env) error {
	return cgi.Serve(NewFront(env, env.Getenv))
}

// Headers of the browser's request that reach the controller; X-Forgebox-* ones too, except
// those the front sets itself.
var forwardHeaders = []string{"Accept", "Content-Type", "Origin", "Sec-Fetch-Site"}

var langPattern = regexp.MustCompile(`^[a-z]{3}$`)

func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, base, redirect := f.route()
	if redirect {
		// Relative links of the web app must resolve below index.cgi/, not beside it.
		loc := base + "/"
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, loc, http.StatusFound)
		return
	}
	key := sessionKey(r)
	user, remembered := f.rememberedUser(key) // frontsession.go
	if !remembered {
		var err error
		user, err = f.Auth.User(r.Context(), r)
		if err != nil {
			f.Log.Warn("cannot check the DSM login", "err", err)
		}
		if user == "" {
			unauthorized(w, "Sign in to DSM first: Forgebox opens from the DSM desktop.")
			return
		}
		admin, err := f.Auth.IsAdmin(r.Context(), user)
		if err != nil {
			f.Log.Warn("cannot read the user's groups", "user", user, "err", err)
		}
		if !admin {
			unauthorized(w, fmt.Sprintf("Forgebox is for DSM administrators, and %s is not in the administrators group.", user))
			return
		}
		f.rememberSession(key, user)
	}
	if f.Getenv != nil && f.Environ != nil {
		facts := cgiFacts(f.Getenv, f.Environ())
		recordCGI(f.Env, facts)
		if path == ReportPath {
			f.report(w, r, facts)
			return
		}
	}
	// The package's data dir first: parsing the config costs every request of the app window
	// time, and only a hand-edited data_dir needs it.
	secret, err := FrontSecret(f.Env.DataDir)
	var cerr error
	if err != nil {
		var c config.Config
		c, cerr = config.Load(f.Env.ConfigFile)
		if cerr == nil && c.Stack.DataDir != "" && c.Stack.DataDir != f.Env.DataDir {
			secret, err = FrontSecret(c.Stack.DataDir)
		}
	}
	if err != nil {
		if errors.Is(cerr, fs.ErrPermission) {
			err = cerr // the config names the data dir: the first thing that could not be read
		}
		f.readFailed(w, err)
		return
	}
	f.proxy(path, base, user, secret).ServeHTTP(w, r)
}

func (f *Front) proxy(pathInfo, base, user, secret string) *httputil.ReverseProxy {
	target, err := url.Parse(f.Env.ControllerURL)
	if err != nil {
		target = &url.URL{Scheme: "http", Host: "127.0.0.1:8470"}
	}
	transport := f.Transport
	if transport == nil {
		transport = &http.Transport{
			Proxy:                 nil, // the controller is local; never through an HTTP proxy
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			ResponseHeaderTimeout: 5 * time.Minute,
		}
	}
	if !strings.HasPrefix(pathInfo, "/") {
		pathInfo = "/" + pathInfo
	}
	return &httputil.ReverseProxy{
		Transport:     transport,
		FlushInterval: -1, // pass each write on: progress streams arrive as they come
		Rewrite: func(pr *httputil.ProxyRequest) {
			in := pr.In
			pr.Out.URL = &url.URL{Scheme: target.Scheme, Host: target.Host, Path: pathInfo, RawQuery: withoutToken(in.URL.RawQuery)}
			pr.Out.Host = target.Host
			h := http.Header{}
			for _, k := range forwardHeaders {
				if v := in.Header.Values(k); len(v) > 0 {
					h[k] = slices.Clone(v)
				}
			}
			for k, v := range in.Header {
				if strings.HasPrefix(k, "X-Forgebox-") {
					h[k] = slices.Clone(v)
				}
			}
			h.Del(HeaderFrontSecret)
			h.Del(HeaderUser)
			h.Del(HeaderLang)
			h.Set(HeaderFrontSecret, secret)
			h.Set(HeaderUser, user)
			lang := in.URL.Query().Get("lang")
			if !langPattern.MatchString(lang) || lang == "def" {
				lang = in.Header.Get(HeaderLang)
			}
			if langPattern.MatchString(lang) && lang != "def" {
				h.Set(HeaderLang, lang)
			}
			pr.Out.Header = h
			pr.SetXForwarded()
		},
		ModifyResponse: func(resp *http.Response) error {
			// A cookie of the controller's would land on DSM's origin and is useless through
			// the front, which never forwards cookies.
			resp.Header.Del("Set-Cookie")
			if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") {
				resp.Header.Set("Location", base+loc)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			f.Log.Warn("controller unreachable", "url", f.Env.ControllerURL, "err", err)
			if wantsPage(r) {
				f.controllerPage(w, r)
				return
			}
			writeError(w, http.StatusBadGateway, "controller_unreachable",
				"The Forgebox controller is not answering. Check that Forgebox is running in Package Center.")
		},
	}
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

// report is the app window's "Download diagnostics": served by the front itself, so that it
// works while the controller does not answer, with the facts of this very request.
func (f *Front) report(w http.ResponseWriter, r *http.Request, facts CGIFacts) {
	rep := BuildReport(r.Context(), f.Env, "index.cgi", &facts)
	var b bytes.Buffer
	if err := rep.Encode(&b, f.Env); err != nil {
		writeError(w, http.StatusInternalServerError, "report", "cannot write the diagnostics: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="forgebox-dsm-report-`+time.Now().UTC().Format("20060102-150405")+`.json"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b.Bytes())
}

// readFailed answers a request the front could not serve because it could not read the
// config or the front secret. Which uid runs DSM's 3rdparty CGIs is not settled (reports say
// root, the package user or http; shared research audit-spk.md finding 5), so a permission
// problem names the effective uid and groups rather than passing for "not started".
func (f *Front) readFailed(w http.ResponseWriter, err error) {
	if errors.Is(err, fs.ErrPermission) {
		who := EffectiveIDs()
		f.Log.Error("index.cgi cannot read the controller's secret or config", "err", err, "euid", who.UID, "egid", who.GID, "groups", who.Groups)
		writeError(w, http.StatusInternalServerError, "front_permission",
			fmt.Sprintf("Forgebox's page cannot read its files: %v. DSM runs it as uid %d (groups %s); the files belong to the package user. "+
				"Download the diagnostics (forgebox dsm report) and report this at the support address in Package Center.",
				err, who.UID, who.GroupList()))
		return
	}
	f.Log.Warn("no front secret", "err", err)
	writeError(w, http.StatusServiceUnavailable, "controller_unavailable",
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
func wantsPage(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html")
}

// controllerPage is the app window's page while the controller does not answer: the
// controller's health, told as such. The package is not "stopped" (DSM's status answers from
// the started marker, see Script.status) and GitLab's containers keep running; Container
// Manager restarts the controller by its restart policy. The page asks again by itself.
func (f *Front) controllerPage(w http.ResponseWriter, r *http.Request) {
	started := "no"
	if _, err := os.Stat(f.Env.StartedMarker()); err == nil {
		started = "yes"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Forgebox-Controller", "not-answering")
	w.Header().Set("X-Forgebox-Package-Started", started)
	w.WriteHeader(http.StatusServiceUnavailable)
	zh := strings.HasPrefix(r.URL.Query().Get("lang"), "ch") || strings.HasPrefix(r.Header.Get(HeaderLang), "ch")
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

func unauthorized(w http.ResponseWriter, message string) {
	writeError(w, http.StatusUnauthorized, "unauthorized", message)
}

// writeError answers in the controller's error shape: {"error": {"code", "message"}}.
func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": message}})
}

// IsCGIRequest says whether this process was started as a CGI: by the name index.cgi (the hard
// link in the package's ui directory), or by a web server's CGI environment with no arguments.
func IsCGIRequest(args []string, getenv func(string) string) bool {
	if len(args) == 0 {
		return false
	}
	name := args[0]
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	return name == "index.cgi" || (getenv("GATEWAY_INTERFACE") != "" && len(args) == 1)
}
