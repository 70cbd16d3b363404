// Command forgebox runs a private GitLab with CI runners on a Docker Engine. This file only wires
// subcommands to the internal packages; the work happens there.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/forgebox/forgebox/service/internal/advice"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/forgebox/forgebox/service/internal/buildinfo"
	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/redact"
)

// DefaultConfigPath is read when --config and FORGEBOX_CONFIG are not given. When it does not
// exist, the embedded defaults are used.
const DefaultConfigPath = "/etc/forgebox/forgebox.toml"

const usage = `forgebox runs PostgreSQL, Redis, GitLab and GitLab Runner on a Docker Engine.

Usage: forgebox [--config FILE] [--log-level LEVEL] COMMAND [ARGS]

Commands:
  up                  converge the stack to the config: pull, create, start, provision
  plan                show what "up" would do, changing nothing
  status [--json]     each component's state, health, image and uptime
  down                stop and remove the stack's containers; data is kept
  doctor [--json]     check the engine, socket, disk, ports and memory
  export compose [--output DIR] [--force] [--subnet CIDR]
  export secrets --format omnibus|helm [--output FILE] [--release NAME] [--force]
                                 GitLab's Rails secrets for an Omnibus or Helm GitLab (file 0600)
  runner export-helm PROFILE [--output FILE] [--force]
                                 values for GitLab's gitlab-runner Helm chart (file 0600: the runner token)
                      write the stack as compose.yaml, with its secrets in .env (mode 0600)
  serve [--listen ADDR]  run the controller: API and web app (default 127.0.0.1:8470)
  token [--url]       print the controller's admin token (or a login link) for browsers and scripts
  dsm ACTION          a step of the Synology package's lifecycle, run by its scripts:
                      preinst, postinst, preupgrade, postupgrade, preuninst, postuninst,
                      prestart, start, stop, status, health; "dsm report" prints the
                      diagnostics (DSM facts, never a secret) for a support request
  cgi                 answer one CGI request as the DSM app window's front (index.cgi)
  builds [--limit N] | builds log JOB [--follow] | builds runners | builds retry|cancel|play JOB
                      CI pipelines of every project, a job's log (followed while it runs), runners
  backup create|list|restore NAME  back up GitLab, config, secrets and host keys; list; put one back
  upgrade plan|apply [--to VERSION]  walk GitLab along its required upgrade stops, one hop at a time
  bundle save [--arch amd64|arm64] FILE | bundle load FILE
                      every image the config needs in one verified file, for a NAS offline
  config validate [FILE]  check a config file; errors name the key and line
  config show         print the effective config (secrets are never printed)
  config default      print the embedded default config
  version             print forgebox's version

The config file is --config, else $FORGEBOX_CONFIG, else ` + DefaultConfigPath + `;
when none exists the embedded defaults are used.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// globals are the options every command shares.
type globals struct {
	configPath     string
	configExplicit bool
	// embeddedDefaults: no config file was found, so openStack picks the defaults for the
	// engine's architecture.
	embeddedDefaults bool
	logLevel         string
	stdout, stderr   io.Writer
	log              *slog.Logger
	// scrub masks the secrets of the loaded config's data dir in the log, in events printed and
	// in status --json; dataDir is empty until a config is loaded.
	scrub   *redact.Scrubber
	dataDir atomic.Pointer[string]
}

func run(args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("forgebox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // printed below: to stdout when asked for, to stderr after a mistake
	fs.StringVar(&g.configPath, "config", "", "config file")
	fs.StringVar(&g.logLevel, "log-level", "", "log level: debug, info, warn, error (default info for serve, else warn)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprint(stderr, usage)
		return 2
	}
	if g.configPath != "" {
		g.configExplicit = true
	} else if env := os.Getenv("FORGEBOX_CONFIG"); env != "" {
		g.configPath, g.configExplicit = env, true
	} else {
		g.configPath = DefaultConfigPath
	}
	rest := fs.Args()
	var cmd string
	if len(rest) > 0 {
		cmd = rest[0]
	}
	level, err := logLevel(cmd, g.logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "forgebox: %v\n", err)
		return 2
	}
	g.scrub = redact.New(func() string {
		if d := g.dataDir.Load(); d != nil {
			return *d
		}
		return ""
	})
	g.log = slog.New(g.scrub.Handler(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))

	if len(rest) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cmdArgs := rest[1:]
	// --help anywhere after a command shows that command's usage and does nothing else, whatever
	// the command would do with its other arguments.
	if help := commandUsage(cmd); help != "" && wantsHelp(cmdArgs) {
		fmt.Fprint(stdout, help)
		return 0
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "forgebox", buildinfo.Version)
	case "config":
		err = g.configCmd(cmdArgs)
	case "up":
		err = g.upCmd(ctx, cmdArgs)
	case "plan":
		err = g.planCmd(ctx, cmdArgs)
	case "down":
		err = g.downCmd(ctx, cmdArgs)
	case "status":
		err = g.statusCmd(ctx, cmdArgs)
	case "doctor":
		err = g.doctorCmd(ctx, cmdArgs)
	case "export":
		err = g.exportCmd(ctx, cmdArgs)
	case "runner":
		err = g.runnerCmd(cmdArgs)
	case "serve", "token":
		err = g.serveCmd(ctx, cmd, cmdArgs)
	case "dsm":
		err = g.dsmCmd(ctx, cmdArgs)
	case "cgi":
		err = g.cgiCmd(cmdArgs)
	case "builds":
		err = g.buildsCmd(ctx, cmdArgs)
	case "backup":
		err = g.backupCmd(ctx, cmdArgs)
	case "upgrade":
		err = g.upgradeCmd(ctx, cmdArgs)
	case "bundle":
		err = g.bundleCmd(ctx, cmdArgs)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "forgebox: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) { // a subcommand's flag set printed its flags
		return 0
	}
	if err != nil {
		var silent silentError
		if !errors.As(err, &silent) {
			// The edge: what to do about the cause is said here, once (package advice).
			fmt.Fprintf(stderr, "forgebox %s: %s\n", cmd, g.scrub.Scrub(advice.Explain(err)))
		}
		return 1
	}
	return 0
}

// logLevel is the level --log-level names, or by default info for the controller (serve: what
// it did and who asked; polls that succeed are debug, see api.requestLog) and warn for the
// one-shot commands, whose own output says what happened.
func logLevel(cmd, flagValue string) (slog.Level, error) {
	if flagValue == "" {
		if cmd == "serve" {
			return slog.LevelInfo, nil
		}
		return slog.LevelWarn, nil
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(flagValue)); err != nil {
		return 0, fmt.Errorf("--log-level %q: use debug, info, warn or error", flagValue)
	}
	return level, nil
}

// wantsHelp: args ask for help (-h, -help, --help) before any "--".
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// commandUsage is the part of the usage text about cmd (its lines and their continuations), or
// "" for a command the usage does not list.
func commandUsage(cmd string) string {
	var b strings.Builder
	in := false
	for line := range strings.Lines(usage) {
		switch {
		case strings.HasPrefix(line, "  "+cmd+" ") || strings.HasPrefix(line, "  "+cmd+"\n"):
			in = true
		case in && strings.HasPrefix(line, "    "):
			// a continuation of the command's line
		default:
			in = false
		}
		if in {
			b.WriteString(line)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return "Usage: forgebox [--config FILE] [--log-level LEVEL] " + cmd + " ...\n\n" + b.String()
}

// silentError fails a command whose output already said what went wrong.
type silentError struct{ error }

// loadConfig reads the config file, or the embedded defaults when no file was named and the
// default path does not exist.
func (g *globals) loadConfig() (config.Config, error) {
	c, err := config.Load(g.configPath)
	if err != nil && !g.configExplicit && errors.Is(err, fs.ErrNotExist) {
		g.log.Info("no config file; using the embedded defaults", "path", g.configPath)
		g.embeddedDefaults = true
		c, err = config.Default(), nil
	}
	if err != nil {
		return config.Config{}, err
	}
	g.dataDir.Store(&c.Stack.DataDir)
	return c, nil
}

func (g *globals) configCmd(args []string) error {
	if len(args) == 0 {
		return errors.New("say validate, show or default")
	}
	switch args[0] {
	case "validate":
		path := g.configPath
		if len(args) > 1 {
			path = args[1]
		}
		c, err := config.Load(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "%s: valid\n", path)
		src, _ := os.ReadFile(path)
		for _, w := range c.Warnings(src) {
			fmt.Fprintf(g.stdout, "warning: %s\n", w.Error())
		}
		return nil
	case "show":
		c, err := g.loadConfig()
		if err != nil {
			return err
		}
		b, err := config.Encode(c)
		if err != nil {
			return err
		}
		g.stdout.Write(b)
		names := []string{}
		if sec, err := config.OpenSecrets(c.Stack.DataDir); err == nil {
			names = sec.Names()
		}
		fmt.Fprintf(g.stdout, "\n# Secrets in %s (values are never shown):\n", config.SecretsFile)
		for _, n := range names {
			fmt.Fprintf(g.stdout, "#   %s = ********\n", n)
		}
		if len(names) == 0 {
			fmt.Fprintln(g.stdout, "#   none yet: they are generated by the first `forgebox up`")
		}
		return nil
	case "default":
		g.stdout.Write(config.DefaultTOML())
		return nil
	}
	return fmt.Errorf("unknown config command %q: say validate, show or default", args[0])
}
