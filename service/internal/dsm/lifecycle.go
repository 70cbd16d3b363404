package dsm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/redact"
)

// Exit codes of start-stop-status status (guide: scripts > start-stop-status).
const (
	StatusRunning    = 0
	StatusNotRunning = 3
)

// How long start waits for the controller to answer, and stop for the stack to go down. DSM's
// patience with a script is not documented; GitLab's own stop takes up to two minutes.
const (
	defaultStartWait = 60 * time.Second
	defaultStopWait  = 170 * time.Second
)

// Script is one run of a lifecycle script: DSM's environment, the log (stderr, which DSM keeps
// in /var/log/packages/forgebox.log) and the message shown to the user afterwards.
type Script struct {
	Env    Env
	Log    *slog.Logger
	Status string // SYNOPKG_PKG_STATUS: INSTALL, UPGRADE, UNINSTALL, START, STOP or empty (boot)
	Lang   string // SYNOPKG_DSM_LANGUAGE
	notes  []string
}

// Run runs one lifecycle action and returns the script's exit code.
func Run(ctx context.Context, action string, env Env, stderr io.Writer) int {
	s := &Script{
		Env:    env,
		Log:    slog.New(redact.New(func() string { return env.DataDir }).Handler(slog.NewTextHandler(stderr, nil))).With("action", action),
		Status: env.Getenv("SYNOPKG_PKG_STATUS"),
		Lang:   env.Getenv("SYNOPKG_DSM_LANGUAGE"),
	}
	code := s.run(ctx, action)
	s.flush()
	return code
}

func (s *Script) run(ctx context.Context, action string) int {
	switch action {
	case "preinst":
		return s.preinst()
	case "postinst":
		return s.postinst()
	case "preupgrade":
		return s.preupgrade()
	case "postupgrade":
		return s.postupgrade()
	case "preuninst":
		return s.preuninst()
	case "postuninst", "prestop", "killall", "log":
		return 0 // nothing to do; see each script's comment
	case "prestart":
		return s.prestart()
	case "start":
		return s.start(ctx)
	case "stop":
		return s.stop(ctx)
	case "status":
		return s.status(ctx)
	case "health":
		if err := s.health(ctx); err != nil {
			s.Log.Warn("controller unhealthy", "err", err)
			return 1
		}
		return 0
	}
	s.Log.Error("unknown action", "action", action)
	return 2
}

// note adds a line to the message DSM shows the user after this step.
func (s *Script) note(key string, args ...any) { s.notes = append(s.notes, msg(s.Lang, key, args...)) }

func (s *Script) flush() {
	path := s.Env.Getenv("SYNOPKG_TEMP_LOGFILE")
	if path == "" || len(s.notes) == 0 {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		s.Log.Warn("cannot write the message for the user", "file", path, "err", err)
		return
	}
	defer f.Close()
	fmt.Fprintln(f, strings.Join(s.notes, "\n"))
}

// problems adds each problem as a line naming the wizard field.
func (s *Script) problems(err error) {
	var pe *ProblemsError
	if !errors.As(err, &pe) {
		s.notes = append(s.notes, "- "+err.Error())
		return
	}
	for _, p := range pe.List {
		label := p.Key
		if p.Field != "" {
			label = msg(s.Lang, p.Field)
		}
		line := fmt.Sprintf("- %s: %s", label, p.Msg)
		if p.Hint != "" {
			line += " (" + p.Hint + ")"
		}
		s.notes = append(s.notes, line)
	}
}

// preinst checks the install wizard's answers, and that the NAS can take GitLab, before DSM
// changes anything. A non-zero exit aborts the installation with the message.
func (s *Script) preinst() int {
	if s.Status == "UPGRADE" {
		return 0 // no install wizard on upgrade; preupgrade checked the kept config
	}
	a := InstallAnswers(s.Env.Getenv)
	c, _, err := BuildConfig(s.Env, a, NASHostName())
	if err != nil {
		s.Log.Error("the wizard's answers do not make a valid config", "err", err)
		s.note("refused")
		s.problems(err)
		return 1
	}
	var refusals []string
	for _, p := range []int{c.GitLab.HTTPPort, c.GitLab.SSHPort} {
		if key, args := s.portTaken(p); key != "" {
			s.Log.Error("port taken", "port", p, "by", args)
			refusals = append(refusals, msg(s.Lang, key, args...))
		}
	}
	// The controller publishes its port on loopback; taken, Container Manager could not start it.
	if p := controllerPort(s.Env.ControllerURL); p != 0 {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err == nil {
			l.Close()
		} else if errors.Is(err, syscall.EADDRINUSE) {
			s.Log.Error("the controller's port is taken", "port", p)
			refusals = append(refusals, msg(s.Lang, "port.controller", p))
		}
	}
	if mem, err := memTotal(s.Env.MemInfo); err == nil && mem < 2<<30 && !a.LowMemoryOK {
		s.Log.Error("too little memory", "bytes", mem)
		refusals = append(refusals, msg(s.Lang, "memory.refused", gb(mem)))
	}
	if len(refusals) > 0 {
		s.note("refused")
		for _, r := range refusals {
			s.notes = append(s.notes, "- "+r)
		}
		return 1
	}
	s.Log.Info("wizard answers accepted", "host", c.GitLab.Host, "http_port", c.GitLab.HTTPPort, "ssh_port", c.GitLab.SSHPort,
		"flavour", c.GitLab.Flavour, "memory", c.GitLab.Memory)
	return 0
}

var conflictPattern = regexp.MustCompile(`IsConflict:\s*(\w+).*?ServiceName:\s*(\S+)`)

// portTaken says whether a port is registered by another DSM service (servicetool, guide:
// Port > Check port conflict: only stdout tells, not the exit code) or is listened on now.
func (s *Script) portTaken(port int) (string, []any) {
	if _, err := os.Stat(s.Env.ServiceTool); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, s.Env.ServiceTool, "--conf-port-conflict-check", "--tcp", strconv.Itoa(port)).Output()
		cancel()
		recordFact(s.Env, "preinst.servicetool_exit."+strconv.Itoa(port), exitCode(err), "preinst.servicetool_user", strconv.Itoa(os.Geteuid()))
		if m := conflictPattern.FindStringSubmatch(string(out)); err == nil && m != nil && m[1] == "true" {
			return "port.conflict", []any{port, m[2]}
		} else if err != nil {
			s.Log.Warn("servicetool failed; port not checked against DSM's services", "port", port, "err", err)
		}
	}
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err == nil {
		l.Close()
		return "", nil
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return "port.in_use", []any{port}
	}
	return "", nil // e.g. a port below 1024, which the package user may not bind but Docker may
}

// controllerPort is the port of the controller's URL, 0 when it has none.
func controllerPort(u string) int {
	_, port, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://"))
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(port)
	return p
}

func memTotal(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no MemTotal in %s", path)
}

func gb(b int64) float64 { return float64(b) / (1 << 30) }

// postinst writes the config: from the wizard's answers on install (over the config an earlier
// installation kept, if any), unchanged on upgrade. It also writes GitLab's ports into the
// port-config file and prepares the data dir. A non-zero exit marks the package broken, so
// everything that can be refused is refused in preinst.
func (s *Script) postinst() int {
	var c config.Config
	var err error
	kept := false
	if s.Status == "UPGRADE" {
		c, kept, err = LoadOrDefault(s.Env)
		if err != nil {
			s.Log.Error("the kept config does not load", "err", err)
			s.note("config.invalid", s.Env.ConfigFile)
			s.problems(asProblems(err))
			return 1
		}
		if !kept {
			s.Log.Warn("no config to keep; writing the defaults", "path", s.Env.ConfigFile)
		} else if adoptGitLabDir(s.Env, &c) {
			kept = false // write it: GitLab's data moves to the var dir at the next start
			s.Log.Info("GitLab's data moves from the shared folder to the var dir at the next start", "gitlab_dir", c.Stack.GitLabDir)
			s.note("gitlab.moving", filepath.Join(s.Env.ShareDir, GitLabShareDir), realPath(s.Env.VarDir))
		}
	} else {
		host := NASHostName()
		a := InstallAnswers(s.Env.Getenv)
		c, kept, err = BuildConfig(s.Env, a, host)
		if err != nil {
			s.Log.Error("the wizard's answers do not make a valid config", "err", err)
			s.note("refused")
			s.problems(err)
			return 1
		}
		if kept {
			s.note("installed.kept")
		}
		if a.Host == "" && !kept {
			if c.GitLab.Host != "" {
				s.note("host.auto", c.GitLab.Host)
			} else {
				s.note("host.none")
			}
		}
	}
	// The data dir holds the secrets: the package user's, closed to others. The controller
	// (root in its container) writes into it and gives front.secret to its owner.
	if err := os.MkdirAll(c.Stack.DataDir, 0o700); err != nil {
		s.Log.Error("cannot create the data dir", "err", err)
		return 1
	}
	if !kept || s.Status != "UPGRADE" {
		if err := config.Save(s.Env.ConfigFile, c); err != nil {
			s.Log.Error("cannot write the config", "path", s.Env.ConfigFile, "err", err)
			s.note("config.invalid", s.Env.ConfigFile)
			s.problems(asProblems(err))
			return 1
		}
		s.Log.Info("config written", "path", s.Env.ConfigFile)
	}
	s.recordPostinstFacts()
	s.writePorts(c)
	if s.Status != "UPGRADE" {
		if mem, err := memTotal(s.Env.MemInfo); err == nil && mem < 4<<30 {
			s.note("memory.low", gb(mem))
		}
		s.note("installed", fmt.Sprintf("http://%s:%d", hostOr(c.GitLab.Host, "NAS"), c.GitLab.HTTPPort))
	}
	return 0
}

// recordPostinstFacts notes, for the diagnostics, what Container Manager's docker-project
// worker had done by postinst: whether the controller already answers (it "creates (or
// updates) and builds" the project at WHEN_POSTINST; does it also start it?) and what is at the
// share's path then.
func (s *Script) recordPostinstFacts() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	answering := s.health(ctx) == nil
	cancel()
	share := "absent"
	if fi, err := os.Lstat(s.Env.ShareDir); err == nil {
		share = "directory"
		if fi.Mode()&os.ModeSymlink != 0 {
			share = "symlink"
		}
	}
	recordFact(s.Env, "postinst.status", s.Status, "postinst.controller_answering", strconv.FormatBool(answering),
		"postinst.share_path", share, "postinst.at", time.Now().UTC().Format(time.RFC3339))
}

// exitCode is a command's exit code as text: "0", the code, or why it did not run.
func exitCode(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "0"
	case errors.As(err, &ee):
		return strconv.Itoa(ee.ExitCode())
	}
	return "did not run: " + err.Error()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func hostOr(h, def string) string {
	if h == "" {
		return def
	}
	return h
}

// writePorts puts the config's GitLab ports into target/port_conf/<package>.sc, then asks DSM
// to re-read it (guide: Resource Update). The port-config worker copied the shipped file before
// postinst ran (WHEN_POSTINST), so the update is what makes the firewall list the real ports.
func (s *Script) writePorts(c config.Config) {
	path := filepath.Join(s.Env.TargetDir(), "port_conf", PackageName+".sc")
	src, err := os.ReadFile(path)
	if err != nil {
		s.Log.Warn("no port-config file to update", "path", path, "err", err)
		return
	}
	out := RewritePorts(src, c.GitLab.HTTPPort, c.GitLab.SSHPort)
	if string(out) != string(src) {
		if err := config.WriteFileAtomic(path, out, 0o644); err != nil {
			s.Log.Warn("cannot update the port-config file", "path", path, "err", err)
			return
		}
	}
	if _, err := os.Stat(s.Env.PkgHelper); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err = exec.CommandContext(ctx, s.Env.PkgHelper, "update", PackageName, "port-config").CombinedOutput()
	recordFact(s.Env, "postinst.synopkghelper_exit", exitCode(err), "postinst.synopkghelper_output", truncate(strings.TrimSpace(string(out)), 300),
		"postinst.synopkghelper_user", strconv.Itoa(os.Geteuid()))
	if err != nil {
		// Not fatal: the ports work; only DSM's firewall list shows the shipped defaults.
		s.Log.Warn("synopkghelper could not update port-config", "err", err, "output", strings.TrimSpace(string(out)))
		return
	}
	s.Log.Info("port-config updated", "http_port", c.GitLab.HTTPPort, "ssh_port", c.GitLab.SSHPort)
}

var dstPortsLine = regexp.MustCompile(`(?m)^dst\.ports="[0-9]+/tcp"`)

// RewritePorts sets dst.ports of the [forgebox-gitlab-http] and [forgebox-gitlab-ssh] sections
// of a port-config file.
func RewritePorts(sc []byte, httpPort, sshPort int) []byte {
	var out strings.Builder
	section := ""
	for _, line := range strings.SplitAfter(string(sc), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "[") && strings.HasSuffix(trimmed, "]") {
			section = strings.Trim(trimmed, "[]")
		}
		port := 0
		switch section {
		case PackageName + "-gitlab-http":
			port = httpPort
		case PackageName + "-gitlab-ssh":
			port = sshPort
		}
		if port != 0 && dstPortsLine.MatchString(trimmed) {
			nl := line[len(strings.TrimRight(line, "\r\n")):]
			line = fmt.Sprintf(`dst.ports="%d/tcp"`, port) + nl
		}
		out.WriteString(line)
	}
	return []byte(out.String())
}

// preupgrade checks, with the new version, that the kept config still loads. A non-zero exit
// aborts the upgrade and leaves the old version in place.
func (s *Script) preupgrade() int {
	_, err := config.Load(s.Env.ConfigFile)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	s.Log.Error("the new version does not accept the kept config", "err", err)
	s.note("upgrade.refused", s.Env.ConfigFile)
	s.problems(asProblems(err))
	return 1
}

func (s *Script) postupgrade() int {
	from, to := s.Env.Getenv("SYNOPKG_OLD_PKGVER"), s.Env.Getenv("SYNOPKG_PKGVER")
	s.Log.Info("upgraded; config, secrets and data kept", "from", from, "to", to)
	s.note("upgraded", hostOr(from, "?"), hostOr(to, "?"))
	return 0
}

// preuninst deletes the package's data when the uninstall wizard says so. It runs here rather
// than in postuninst because the binary is still installed. It never fails: a refusal would
// leave the package half uninstalled.
func (s *Script) preuninst() int {
	if s.Status != "UNINSTALL" {
		return 0 // an upgrade runs the old preuninst too: never delete then
	}
	share := s.Env.ShareDir
	images := s.stackImages() // read before the config goes
	if s.Env.Getenv(KeyDeleteData) != "true" {
		s.Log.Info("uninstall keeps the data", "var", s.Env.VarDir, "share", share)
		s.note("uninstall.kept", realPath(s.Env.VarDir), ShareName)
		return 0
	}
	// The config may name the data dir and share; delete only what lies in the package's own
	// var dir and the share's GitLab part, whatever the config says.
	left := removeContents(s.Env.VarDir, s.Log)
	// GitLab's data of an earlier version, in the share, and the folder its move left.
	legacy, _ := filepath.Glob(filepath.Join(share, GitLabShareDir+MovedSuffix+"*"))
	for _, p := range append([]string{filepath.Join(share, GitLabShareDir)}, legacy...) {
		if err := os.RemoveAll(p); err != nil {
			s.Log.Warn("could not delete GitLab's data in the share", "path", p, "err", err)
			left = append(left, p)
		}
	}
	s.note("uninstall.deleted", ShareName)
	if s.Env.Getenv(KeyRemoveImages) == "true" {
		images = s.removeImages(images)
	}
	if len(images) > 0 {
		s.note("uninstall.images", strings.Join(images, ", "), strings.Join(images, " "))
	}
	if len(left) > 0 {
		real := make([]string, len(left))
		for i, p := range left {
			real[i] = realPath(p)
		}
		s.note("uninstall.leftover", strings.Join(real, ", "), strings.Join(real, " "))
	}
	s.Log.Info("uninstall deleted the data", "var", s.Env.VarDir, "left", len(left))
	return 0
}

// ImageRemover removes an image tag, never by force (engine.Client.RemoveImageTag).
type ImageRemover interface {
	RemoveImageTag(ctx context.Context, ref string) error
}

// ConnectImages reaches the engine for the uninstall's image removal. The forgebox binary sets
// it (this package stays free of the Docker client: index.cgi links it); nil, or an error, means
// the package user cannot reach the engine, and the message lists the images instead.
var ConnectImages func(ctx context.Context) (ImageRemover, func(), error)

// removeImages removes the stack's images when the uninstall wizard asks for it (with "delete
// data"), and returns those that stay: all of them when the engine cannot be reached (DSM runs
// package scripts as the package user, who may lack the Docker socket), and any an other
// container still uses (never forced).
func (s *Script) removeImages(images []string) []string {
	if ConnectImages == nil {
		return images
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	eng, closeEng, err := ConnectImages(ctx)
	if err != nil {
		s.Log.Warn("cannot reach the engine to remove the stack's images", "err", err)
		s.note("uninstall.images_unreachable")
		return images
	}
	defer closeEng()
	var left, removed []string
	for _, im := range images {
		if err := eng.RemoveImageTag(ctx, im); err != nil {
			if !strings.Contains(err.Error(), "No such image") {
				s.Log.Warn("image stays", "image", im, "err", err)
				left = append(left, im)
			}
			continue
		}
		removed = append(removed, im)
	}
	if len(removed) > 0 {
		s.note("uninstall.images_removed", strings.Join(removed, ", "))
	}
	return left
}

// stackImages are the images the config names, and the controller's: what uninstalling leaves
// on the engine. The package user cannot reach the Docker socket to remove them itself.
func (s *Script) stackImages() []string {
	c, _, err := LoadOrDefault(s.Env)
	if err != nil {
		return nil
	}
	var out []string
	for _, im := range []string{c.GitLab.Image, c.Runner.Image, c.Runner.HelperImage, c.Postgres.Image, c.Redis.Image} {
		if im != "" && !slices.Contains(out, im) {
			out = append(out, im)
		}
	}
	if v := s.Env.Getenv("SYNOPKG_PKGVER"); v != "" {
		out = append(out, ControllerImageRepo+":"+v)
	}
	return out
}

// removeContents deletes everything inside dir (not dir itself, which DSM owns) and returns
// what it could not delete.
func removeContents(dir string, log *slog.Logger) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			log.Warn("cannot read the var dir", "dir", dir, "err", err)
			return []string{dir}
		}
		return nil
	}
	var left []string
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if err := os.RemoveAll(p); err != nil {
			log.Warn("could not delete", "path", p, "err", err)
			left = append(left, p)
		}
	}
	return left
}

// realPath resolves DSM's /var/packages symlinks, so that a path in a message still exists
// after DSM has removed /var/packages/<package>.
func realPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// prestart refuses to start with a config that does not load: the controller would not start
// either, and Package Center shows this message instead of a container restarting.
func (s *Script) prestart() int {
	c, err := config.Load(s.Env.ConfigFile)
	if err != nil {
		s.Log.Error("config does not load", "err", err)
		s.note("config.invalid", s.Env.ConfigFile)
		s.problems(asProblems(err))
		return 1
	}
	// index.cgi reads front.secret on every request without parsing the config: it learns a
	// hand-edited data_dir from here. Not fatal: the app window would say the controller has
	// not started, and the log says why.
	if err := recordDataDir(s.Env, c); err != nil {
		s.Log.Warn("cannot record the data dir for the app window", "err", err)
	}
	return 0
}

func (s *Script) user() string {
	if u := s.Env.Getenv("SYNOPKG_USERNAME"); u != "" {
		return u
	}
	return "DSM"
}

func waitFromEnv(env Env, key string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(env.Getenv(key)); err == nil && d > 0 {
		return d
	}
	return def
}

// start asks the controller to bring the stack up and returns as soon as it has accepted:
// progress is for the app window, not for this script. Container Manager has started the
// controller just before (WHEN_STARTUP); it may need a moment to answer. If it never does,
// start still succeeds, with a log line: the stack's containers come back by their restart
// policy, and the app window offers "up". The controller does not bring the stack up by
// itself when it starts, so that a stack the user stopped stays stopped when Container Manager
// restarts the controller.
func (s *Script) start(ctx context.Context) int {
	// First: from now on DSM's status polls say "running", whatever the controller does.
	if err := s.markStarted(true); err != nil {
		s.Log.Error("cannot mark the package started; DSM would see it as stopped", "err", err)
		s.note("start.marker", s.Env.StartedMarker(), err)
		return 1
	}
	if rec, err := RecordShare(s.Env); err != nil {
		s.Log.Error("the shared folder is not where it must be; the stack was not asked to come up", "share", s.Env.ShareDir, "resolved", rec.Resolved, "err", err)
		s.notes = append(s.notes, err.Error())
		if err := s.markStarted(false); err != nil {
			s.Log.Warn("cannot remove the started marker", "err", err)
		}
		return 1
	}
	wait := waitFromEnv(s.Env, EnvStartWait, defaultStartWait)
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	c := NewController(s.Env, s.user())
	if err := c.WaitHealthy(ctx); err != nil {
		s.Log.Warn("the controller is not answering; the stack was not asked to come up", "wait", wait, "err", err)
		return 0
	}
	for {
		op, err := c.Start(ctx, "up")
		if err == nil {
			s.Log.Info("stack coming up; the Forgebox window shows the progress", "operation", op.ID)
			return 0
		}
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == 409 {
			s.Log.Info("the stack is busy with another operation; not asking for up", "detail", ae.Message)
			return 0
		}
		if !isRetryable(err) || ctx.Err() != nil {
			s.Log.Warn("the controller did not accept up", "err", err)
			return 0
		}
		select {
		case <-ctx.Done():
			s.Log.Warn("the controller did not accept up in time", "err", err)
			return 0
		case <-time.After(time.Second):
		}
	}
}

// stop asks the controller to take the stack down (containers stopped and removed, data kept)
// and waits for it, so that a stopped package leaves no GitLab running. Then Container Manager
// stops the controller (WHEN_HALT). stop never fails: DSM stops the controller either way.
func (s *Script) stop(ctx context.Context) int {
	if err := s.markStarted(false); err != nil {
		s.Log.Warn("cannot remove the started marker; status still answers running", "err", err)
	}
	wait := waitFromEnv(s.Env, EnvStopWait, defaultStopWait)
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	c := NewController(s.Env, s.user())
	hctx, hcancel := context.WithTimeout(ctx, 5*time.Second)
	err := c.Healthy(hctx)
	hcancel()
	if err != nil {
		s.Log.Info("the controller is not running; nothing to stop", "err", err)
		return 0
	}
	for {
		op, err := c.Start(ctx, "down")
		if err == nil {
			done, err := c.Wait(ctx, op.ID)
			switch {
			case err != nil:
				s.Log.Warn("the stack did not finish going down in time", "operation", op.ID, "wait", wait, "err", err)
			case done.State == "failed":
				s.Log.Warn("the stack did not go down cleanly", "operation", op.ID, "err", done.Error)
			default:
				s.Log.Info("stack down; data kept", "operation", op.ID)
			}
			return 0
		}
		if !isRetryable(err) || ctx.Err() != nil {
			s.Log.Warn("the controller did not accept down", "err", err)
			return 0
		}
		select {
		case <-ctx.Done():
			s.Log.Warn("the controller did not accept down in time", "err", err)
			return 0
		case <-time.After(time.Second):
		}
	}
}

// status answers from the marker that start writes and stop removes, never from the
// controller's health: DSM may stop a package whose status answers "not running" while it
// runs (a community report on DSM 7.4.1, shared research audit-spk.md finding 3), and stop
// takes GitLab down, so a controller restart or a slow /healthz during a poll must not count.
// The controller's health is shown in the app window instead (the front's page when it does
// not answer) and kept in the status log, which `forgebox dsm report` includes.
func (s *Script) status(ctx context.Context) int {
	code := StatusNotRunning
	if _, err := os.Stat(s.Env.StartedMarker()); err == nil {
		code = StatusRunning
	}
	health := "ok"
	if code == StatusRunning {
		// Only for the log: a short look, and its answer changes nothing.
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		if err := s.health(hctx); err != nil {
			health = "not answering"
		}
		cancel()
	} else {
		health = "not asked"
	}
	s.Env.recordStatus(code, health)
	return code
}

// markStarted writes or removes the marker status answers from.
func (s *Script) markStarted(started bool) error {
	path := s.Env.StartedMarker()
	if !started {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove the started marker: %w", err)
		}
		return nil
	}
	if err := config.WriteFileAtomic(path, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return fmt.Errorf("write the started marker: %w", err)
	}
	return nil
}

func (s *Script) health(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c := &Controller{BaseURL: s.Env.ControllerURL, HTTP: &httpClientNoRedirect}
	return c.Healthy(ctx)
}
