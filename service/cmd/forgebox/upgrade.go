package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/forgebox/forgebox/service/internal/upgrade"
)

const upgradeUsage = `Usage:
  forgebox upgrade plan  [--to VERSION] [--postgres-image IMAGE] [--json]
        the hops from the running GitLab to VERSION (default: the newest forgebox knows) along
        GitLab's required upgrade stops, and any PostgreSQL major upgrade on the way
  forgebox upgrade apply [--to VERSION] [--postgres-image IMAGE] [--yes]
        carry the plan out, one hop at a time; run it again after an interruption to resume
`

func (g *globals) upgradeCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(g.stderr, upgradeUsage)
		return errors.New("say plan or apply")
	}
	fs := newFlags("upgrade "+args[0], g.stderr)
	to := fs.String("to", "", "target GitLab version, e.g. 18.8.11")
	pgImage := fs.String("postgres-image", "", "PostgreSQL image to move to when a hop needs a newer major (default: postgres.image with the major changed)")
	asJSON := fs.Bool("json", false, "print the plan as JSON (plan only)")
	yes := fs.Bool("yes", false, "do not ask for confirmation (apply only)")
	switch args[0] {
	case "plan", "apply":
	case "help", "-h", "--help":
		fmt.Fprint(g.stdout, upgradeUsage)
		return nil
	default:
		fmt.Fprint(g.stderr, upgradeUsage)
		return fmt.Errorf("unknown upgrade command %q", args[0])
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %s", strings.Join(fs.Args(), " "))
	}
	if args[0] == "plan" {
		st, eng, err := g.openStack(ctx, nil)
		if err != nil {
			return err
		}
		defer eng.Close()
		p, err := upgrade.PlanFor(ctx, st.View(), *to, *pgImage)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(g.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(p)
		}
		fmt.Fprint(g.stdout, p.String())
		return nil
	}

	printer := newPrinter(g.stdout, g.scrub)
	defer printer.close()
	st, eng, err := g.openStack(ctx, printer)
	if err != nil {
		return err
	}
	defer eng.Close()
	if !*yes {
		p, err := upgrade.PlanFor(ctx, st.View(), *to, *pgImage)
		if err != nil {
			return err
		}
		fmt.Fprint(g.stdout, p.String())
		if err := g.confirm("\nGitLab is down for part of each hop. Type yes to go on: ", "yes"); err != nil {
			return err
		}
	}
	x, err := st.Begin("upgrade")
	if err != nil {
		return err
	}
	defer x.End()
	res, err := upgrade.Apply(ctx, x, upgrade.Options{To: *to, PostgresImage: *pgImage, SaveConfig: g.saveConfig})
	if err != nil {
		return err
	}
	printer.close()
	fmt.Fprintf(g.stdout, "\nGitLab %s -> %s in %d hops (%s)\n  backups before each hop: %s\n", res.From, res.To, len(res.Hops), res.Took.Round(1e9), strings.Join(res.Backups, ", "))
	for _, d := range res.KeptDirs {
		fmt.Fprintf(g.stdout, "  the old PostgreSQL data directory stays at %s: remove it (rm -rf) once the upgraded stack works\n", d)
	}
	return nil
}
