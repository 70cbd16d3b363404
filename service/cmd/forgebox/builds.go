package main

// forgebox builds: CI builds from the command line, through GitLab's API with forgebox's admin
// token (GitLab reached at its address on the stack network, as the stack reaches it).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/gitlab"
	"github.com/forgebox/forgebox/service/internal/gitlab/tracefmt"
	"github.com/forgebox/forgebox/service/internal/stack"
)

const buildsUsage = `Usage:
  forgebox builds [--limit N] [--json]      recent pipelines of every project, newest first
  forgebox builds runners [--json]          runners: status, last contact, profile, tags
  forgebox builds log JOB [--follow] [--timestamps] [--color]
                                           a job's log; --follow prints it as it grows until the job ends,
                                           --timestamps puts the time the runner wrote each line first
                                           (runner 18.7 and later), --color keeps colours in a pipe
  forgebox builds retry|cancel|play JOB     run a job again, stop it, or start a manual job
  forgebox builds retry-pipeline|cancel-pipeline PIPELINE
JOB and PIPELINE are GitLab's ids (as the list shows them); add --project ID for one that is
not among the recent pipelines.
`

// buildsEnv is what a builds command works with.
type buildsEnv struct {
	api   *gitlab.Client
	cfg   config.Config
	cache gitlab.BuildsCache
	close func()
}

func (g *globals) openBuilds(ctx context.Context) (*buildsEnv, error) {
	st, eng, err := g.openStack(ctx, nil)
	if err != nil {
		return nil, err
	}
	api, err := st.GitLabAPI(ctx)
	if err != nil {
		eng.Close()
		return nil, err
	}
	cfg, _ := g.loadConfig()
	return &buildsEnv{api: api, cfg: cfg, close: func() { eng.Close() }}, nil
}

func (g *globals) buildsCmd(ctx context.Context, args []string) error {
	sub := "list"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "list":
		return g.buildsList(ctx, args)
	case "runners":
		return g.buildsRunners(ctx, args)
	case "log":
		return g.buildsLog(ctx, args)
	case "retry", "cancel", "play", "retry-pipeline", "cancel-pipeline":
		return g.buildsAction(ctx, sub, args)
	case "help":
		fmt.Fprint(g.stdout, buildsUsage)
		return nil
	}
	fmt.Fprint(g.stderr, buildsUsage)
	return fmt.Errorf("unknown builds command %q", sub)
}

func (g *globals) buildsList(ctx context.Context, args []string) error {
	fs := newFlags("builds", g.stderr)
	limit := fs.Int("limit", 20, "how many pipelines")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	env, err := g.openBuilds(ctx)
	if err != nil {
		return err
	}
	defer env.close()
	runners, err := env.api.Runners(ctx)
	if err != nil {
		return err
	}
	pipelines, err := env.api.RecentPipelines(ctx, &env.cache, *limit)
	if err != nil {
		return err
	}
	gitlab.MarkStuck(pipelines, runners)
	if *asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(pipelines)
	}
	if len(pipelines) == 0 {
		fmt.Fprintln(g.stdout, "no pipelines yet")
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PIPELINE\tPROJECT\tREF\tSTATUS\tJOBS\tDURATION\tBY\tCOMMIT")
	var stuck []string
	for _, p := range pipelines {
		var jobs []string
		for _, j := range p.Jobs() {
			s := fmt.Sprintf("%s#%d:%s", j.Name, j.ID, j.Status)
			if j.Stuck != nil {
				s += "(stuck)"
				stuck = append(stuck, fmt.Sprintf("job %d (%s, pipeline %d) is stuck: %s", j.ID, j.Name, p.ID, j.Stuck.Hint))
			}
			jobs = append(jobs, s)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Project, p.Ref, p.Status, strings.Join(jobs, " "),
			clock(p.Duration), orDash(p.User), clip(p.CommitTitle, 50))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range stuck {
		fmt.Fprintln(g.stdout, s)
	}
	return nil
}

func clock(seconds int64) string {
	if seconds <= 0 {
		return "-"
	}
	d := time.Duration(seconds) * time.Second
	if d >= time.Hour {
		return fmt.Sprintf("%d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
	}
	return fmt.Sprintf("%02d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func (g *globals) buildsRunners(ctx context.Context, args []string) error {
	fs := newFlags("builds runners", g.stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	env, err := g.openBuilds(ctx)
	if err != nil {
		return err
	}
	defer env.close()
	runners, err := env.api.Runners(ctx)
	if err != nil {
		return err
	}
	profiles := stack.RunnerProfiles(env.cfg)
	if *asJSON {
		type row struct {
			gitlab.RunnerStatus
			Profile string `json:"profile"`
		}
		var out []row
		for _, r := range runners {
			out = append(out, row{r, profiles[r.Description]})
		}
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUNNER\tPROFILE\tSTATUS\tLAST CONTACT\tTAGS\tUNTAGGED")
	for _, r := range runners {
		contact := "never"
		if r.ContactedAt != nil {
			contact = time.Since(*r.ContactedAt).Round(time.Second).String() + " ago"
		}
		st := r.Status
		if r.Paused {
			st += " (paused)"
		}
		fmt.Fprintf(tw, "%d %s\t%s\t%s\t%s\t%s\t%v\n", r.ID, r.Description, orDash(profiles[r.Description]), st, contact,
			orDash(strings.Join(r.Tags, ",")), r.RunUntagged)
	}
	return tw.Flush()
}

// splitArgs takes the one positional id and flags in any order.
func splitArgs(args []string) (id string, rest []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--project" || a == "-project":
			rest = append(rest, a)
			if i+1 < len(args) {
				i++
				rest = append(rest, args[i])
			}
		case strings.HasPrefix(a, "-"):
			rest = append(rest, a)
		case id == "":
			id = a
		default:
			rest = append(rest, a)
		}
	}
	return id, rest
}

// findProject finds the project of a job (or pipeline) among the recent pipelines.
func findProject(ctx context.Context, env *buildsEnv, id int64, pipeline bool) (int64, error) {
	list, err := env.api.RecentPipelines(ctx, &env.cache, 100)
	if err != nil {
		return 0, err
	}
	for _, p := range list {
		if pipeline && p.ID == id {
			return p.ProjectID, nil
		}
		for _, j := range p.Jobs() {
			if !pipeline && j.ID == id {
				return p.ProjectID, nil
			}
		}
	}
	what := "job"
	if pipeline {
		what = "pipeline"
	}
	return 0, fmt.Errorf("no %s %d among the 100 most recent pipelines: name its project with --project ID", what, id)
}

func parseID(s, what string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s must be a %s id (a positive number), not %q", what, what, s)
	}
	return n, nil
}

func (g *globals) buildsAction(ctx context.Context, action string, args []string) error {
	raw, rest := splitArgs(args)
	fs := newFlags("builds "+action, g.stderr)
	project := fs.Int64("project", 0, "the project's id")
	if err := fs.Parse(rest); err != nil {
		return err
	}
	pipeline := strings.HasSuffix(action, "-pipeline")
	what := "job"
	if pipeline {
		what = "pipeline"
	}
	if raw == "" {
		fmt.Fprint(g.stderr, buildsUsage)
		return fmt.Errorf("say which %s", what)
	}
	id, err := parseID(raw, what)
	if err != nil {
		return err
	}
	env, err := g.openBuilds(ctx)
	if err != nil {
		return err
	}
	defer env.close()
	if *project == 0 {
		if *project, err = findProject(ctx, env, id, pipeline); err != nil {
			return err
		}
	}
	switch action {
	case "retry-pipeline", "cancel-pipeline":
		var st string
		if action == "retry-pipeline" {
			st, err = env.api.RetryPipeline(ctx, *project, id)
		} else {
			st, err = env.api.CancelPipeline(ctx, *project, id)
		}
		if err == nil {
			fmt.Fprintf(g.stdout, "pipeline %d: %s\n", id, st)
		}
		return err
	}
	var j gitlab.Job
	switch action {
	case "retry":
		j, err = env.api.RetryJob(ctx, *project, id)
	case "cancel":
		j, err = env.api.CancelJob(ctx, *project, id)
	default:
		j, err = env.api.PlayJob(ctx, *project, id)
	}
	if err != nil {
		return err
	}
	if action == "retry" {
		fmt.Fprintf(g.stdout, "job %d (%s) runs again as job %d: %s\n", id, j.Name, j.ID, j.Status)
	} else {
		fmt.Fprintf(g.stdout, "job %d (%s): %s\n", j.ID, j.Name, j.Status)
	}
	return nil
}

// followInterval is how often a followed log is fetched again.
var followInterval = time.Second

func (g *globals) buildsLog(ctx context.Context, args []string) error {
	raw, rest := splitArgs(args)
	fs := newFlags("builds log", g.stderr)
	follow := fs.Bool("follow", false, "keep printing the log as it grows, until the job ends")
	fs.BoolVar(follow, "f", false, "short for --follow")
	stamps := fs.Bool("timestamps", false, "put the time the runner wrote each line first (a log of runner 18.7 or later has it)")
	forceColor := fs.Bool("color", false, "keep colours when the output is not a terminal")
	project := fs.Int64("project", 0, "the project's id")
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if raw == "" {
		fmt.Fprint(g.stderr, buildsUsage)
		return errors.New("say which job")
	}
	id, err := parseID(raw, "job")
	if err != nil {
		return err
	}
	env, err := g.openBuilds(ctx)
	if err != nil {
		return err
	}
	defer env.close()
	if *project == 0 {
		if *project, err = findProject(ctx, env, id, false); err != nil {
			return err
		}
	}
	color := *forceColor
	if f, ok := g.stdout.(*os.File); ok && !color {
		color = term.IsTerminal(int(f.Fd()))
	}
	out := logWriter{w: g.stdout, color: color, stamps: *stamps}
	var offset int64
	var lastNote string
	for {
		j, err := env.api.Job(ctx, *project, id)
		if err != nil {
			return err
		}
		ch, err := env.api.Trace(ctx, *project, id, offset, 0)
		if err != nil {
			return err
		}
		if ch.Reset {
			out.flush()
			fmt.Fprintln(g.stderr, "(the log was erased; starting over)")
			out.p = tracefmt.Parser{}
		}
		out.feed([]byte(g.scrub.Scrub(string(ch.Data)))) // masked as the API masks it
		offset = ch.Offset + int64(len(ch.Data))
		ended := !j.Active() && offset >= ch.Size
		if !*follow || ended {
			out.flush()
			if *follow || !j.Active() {
				fmt.Fprintf(g.stderr, "job %d (%s): %s\n", j.ID, j.Name, j.Status)
			}
			if *follow && (j.Status == "failed" || j.Status == "canceled") {
				return silentError{fmt.Errorf("job %d %s", j.ID, j.Status)}
			}
			return nil
		}
		if j.Status == "pending" || j.Status == "created" || j.Status == "manual" {
			note := "waiting: job " + strconv.FormatInt(j.ID, 10) + " is " + j.Status
			if j.Status == "pending" {
				if runners, err := env.api.Runners(ctx); err == nil {
					if s := gitlab.StuckReason(j, runners); s != nil {
						note = fmt.Sprintf("job %d is stuck: %s", j.ID, s.Hint)
					}
				}
			}
			if note != lastNote {
				fmt.Fprintln(g.stderr, note)
				lastNote = note
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(followInterval):
		}
	}
}

// logWriter prints a job log line by line (tracefmt): section markers and the runner's line
// headers never show; colours only on a terminal (or with --color), where stderr lines are red;
// the runner's time first with --timestamps.
type logWriter struct {
	w      io.Writer
	color  bool
	stamps bool
	p      tracefmt.Parser
}

func (l *logWriter) feed(data []byte) { l.print(l.p.Feed(data)) }

// flush prints what the log holds back at its end (a line without its line feed).
func (l *logWriter) flush() { l.print(l.p.Flush()) }

// noTime stands in the time column for a line without a header.
var noTime = strings.Repeat(" ", len(tracefmt.TimeLayout))

func (l *logWriter) print(lines []tracefmt.Line) {
	if len(lines) == 0 {
		return
	}
	var b strings.Builder
	for _, ln := range lines {
		if l.stamps {
			if ln.HasHeader() {
				b.WriteString(ln.Time.Format(tracefmt.TimeLayout))
			} else {
				b.WriteString(noTime)
			}
			b.WriteByte(' ')
		}
		text := tracefmt.Visible(ln.Text)
		switch {
		case !l.color:
			b.WriteString(tracefmt.StripANSI(text))
		case ln.Stderr:
			// Red; colours the text sets itself still win where it sets them.
			b.WriteString("\x1b[31m" + text + "\x1b[0m")
		default:
			b.WriteString(text)
			if strings.Contains(text, "\x1b[") {
				b.WriteString("\x1b[0m")
			}
		}
		b.WriteByte('\n')
	}
	io.WriteString(l.w, b.String())
}
