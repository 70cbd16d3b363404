package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"text/tabwriter"

	"github.com/docker/docker/pkg/jsonmessage"
	"golang.org/x/term"

	"github.com/forgebox/forgebox/service/internal/buildinfo"
	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/doctor"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/redact"
	"github.com/forgebox/forgebox/service/internal/stack"
)

// loadConfigAndSecrets loads the config, then the secret store it names: the order in which a
// broken config is reported before the store is touched.
func (g *globals) loadConfigAndSecrets() (config.Config, *config.Secrets, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return config.Config{}, nil, err
	}
	secrets, err := config.OpenSecrets(cfg.Stack.DataDir)
	if err != nil {
		return config.Config{}, nil, err
	}
	return cfg, secrets, nil
}

// openStack loads the config, the secret store and the engine, in that order, so a broken config
// is reported before anything else is touched.
func (g *globals) openStack(ctx context.Context, sink events.Sink) (*stack.Stack, *engine.Client, error) {
	cfg, secrets, err := g.loadConfigAndSecrets()
	if err != nil {
		return nil, nil, err
	}
	eng, err := engine.Connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	if g.embeddedDefaults {
		// No config file: the defaults for the engine's architecture (omnibus on arm64).
		info, err := eng.Info(ctx)
		if err != nil {
			eng.Close()
			return nil, nil, err
		}
		cfg = config.DefaultFor(info.Arch)
	}
	g.log.Debug("engine connected", "api_version", eng.APIVersion())
	st := stack.New(cfg, eng, secrets, stack.Options{
		Logger: g.log, Events: sink, Version: buildinfo.Version, SecretsPath: secrets.Path(),
	})
	return st, eng, nil
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// withStack runs a command that takes no flags of its own and works on the stack, printing its
// events as they come.
func (g *globals) withStack(ctx context.Context, name string, args []string, fn func(*stack.Stack) error) error {
	if err := newFlags(name, g.stderr).Parse(args); err != nil {
		return err
	}
	return g.onStack(ctx, fn)
}

// onStack opens the stack with an event printer, runs fn and closes both; the printer is done
// (a pull's progress display ended) when it returns, so a summary can follow.
func (g *globals) onStack(ctx context.Context, fn func(*stack.Stack) error) error {
	printer := newPrinter(g.stdout, g.scrub)
	defer printer.close()
	st, eng, err := g.openStack(ctx, printer)
	if err != nil {
		return err
	}
	defer eng.Close()
	return fn(st)
}

func (g *globals) upCmd(ctx context.Context, args []string) error {
	return g.withStack(ctx, "up", args, func(st *stack.Stack) error {
		_, err := st.Up(ctx)
		return err
	})
}

func (g *globals) planCmd(ctx context.Context, args []string) error {
	return g.withStack(ctx, "plan", args, func(st *stack.Stack) error {
		plan, err := st.Plan(ctx)
		if err != nil {
			return err
		}
		fmt.Fprint(g.stdout, plan.String())
		return nil
	})
}

func (g *globals) downCmd(ctx context.Context, args []string) error {
	return g.withStack(ctx, "down", args, func(st *stack.Stack) error { return st.Down(ctx) })
}

func (g *globals) statusCmd(ctx context.Context, args []string) error {
	fs := newFlags("status", g.stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, eng, err := g.openStack(ctx, nil)
	if err != nil {
		return err
	}
	defer eng.Close()
	rows, err := st.Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := json.MarshalIndent(rows, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(g.stdout, g.scrub.Scrub(string(b)))
		return err
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tSTATE\tHEALTH\tIMAGE\tUPTIME")
	for _, r := range rows {
		health := r.Health
		if health == "" {
			health = "-"
		}
		uptime := r.Uptime
		if uptime == "" {
			uptime = "-"
		}
		state := r.State
		if r.State != "missing" && !r.UpToDate && r.ID != "" {
			state += " (config changed: run up)"
		}
		fmt.Fprint(tw, g.scrub.Scrub(fmt.Sprintf("%s\t%s\t%s\t%s\t%s\n", r.Component, state, health, r.Image, uptime)))
		if r.HelperImage != "" {
			fmt.Fprintf(tw, "  job helper\t%s\t-\t%s\t-\n", r.HelperState, r.HelperImage)
		}
	}
	return tw.Flush()
}

func (g *globals) doctorCmd(ctx context.Context, args []string) error {
	fs := newFlags("doctor", g.stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	var checks []doctor.Check
	eng, connErr := engine.Connect(ctx)
	if connErr != nil {
		checks = doctor.Run(ctx, cfg, nil, connErr)
	} else {
		defer eng.Close()
		checks = doctor.Run(ctx, cfg, eng, nil)
	}
	if *asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(checks); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
		for _, c := range checks {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Status, c.Name, c.Detail)
			if c.Fix != "" && c.Status != doctor.OK {
				fmt.Fprintf(tw, "\t\t-> %s\n", c.Fix)
			}
		}
		tw.Flush()
	}
	if doctor.Failed(checks) {
		return silentError{fmt.Errorf("some checks failed")}
	}
	return nil
}

// printer shows events on a terminal: plan steps and messages as lines, pulls as docker-style
// per-layer progress bars (jsonmessage draws them, in place on a terminal, as lines elsewhere).
type printer struct {
	out      io.Writer
	scrub    *redact.Scrubber
	mu       sync.Mutex
	pullPipe *io.PipeWriter
	pullEnc  *json.Encoder
	pullDone chan struct{}
}

func newPrinter(out io.Writer, scrub *redact.Scrubber) *printer {
	return &printer{out: out, scrub: scrub}
}

func (p *printer) Emit(e events.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e.Message, e.Image = p.scrub.Scrub(e.Message), p.scrub.Scrub(e.Image)
	if e.Kind == events.KindPull {
		if p.pullPipe == nil {
			p.startPull(e.Image)
		}
		m := jsonmessage.JSONMessage{ID: e.Layer, Status: e.Message}
		if e.Total > 0 {
			m.Progress = &jsonmessage.JSONProgress{Current: e.Current, Total: e.Total}
		}
		p.pullEnc.Encode(m)
		return
	}
	p.endPull()
	if e.Kind == events.KindError {
		return // the command prints the error it returns, once
	}
	prefix := map[events.Kind]string{
		events.KindPlan: "plan: ", events.KindStep: "==> ", events.KindWait: "    ",
		events.KindInfo: "    ", events.KindDone: "",
	}[e.Kind]
	fmt.Fprintf(p.out, "%s%s\n", prefix, e.Message)
}

func (p *printer) startPull(image string) {
	fmt.Fprintf(p.out, "    pulling %s\n", image)
	r, w := io.Pipe()
	p.pullPipe, p.pullEnc, p.pullDone = w, json.NewEncoder(w), make(chan struct{})
	fd, isTerm := uintptr(0), false
	if f, ok := p.out.(*os.File); ok {
		fd, isTerm = f.Fd(), term.IsTerminal(int(f.Fd()))
	}
	go func(done chan struct{}) {
		defer close(done)
		jsonmessage.DisplayJSONMessagesStream(r, p.out, fd, isTerm, nil)
		io.Copy(io.Discard, r)
	}(p.pullDone)
}

func (p *printer) endPull() {
	if p.pullPipe == nil {
		return
	}
	p.pullPipe.Close()
	<-p.pullDone
	p.pullPipe, p.pullEnc, p.pullDone = nil, nil, nil
}

func (p *printer) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endPull()
}
