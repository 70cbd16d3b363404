package main

import (
	"github.com/docker/go-units"

	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/forgebox/forgebox/service/internal/backup"
	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/stack"
)

const backupUsage = `Usage:
  forgebox backup create             back up GitLab, the config, the secrets and the host keys now
  forgebox backup list [--json]      the backups in the backup directory, newest first
  forgebox backup restore NAME [--yes]
                                     put a backup back (NAME from list, or a path to a file);
                                     the stack must run the GitLab version that made it, and a
                                     safety backup of the stack as it is is taken first
`

func (g *globals) backupCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(g.stderr, backupUsage)
		return errors.New("say create, list or restore")
	}
	switch args[0] {
	case "create":
		return g.backupCreate(ctx, args[1:])
	case "list", "ls":
		return g.backupList(args[1:])
	case "restore":
		return g.backupRestore(ctx, args[1:])
	case "help", "-h", "--help":
		fmt.Fprint(g.stdout, backupUsage)
		return nil
	}
	fmt.Fprint(g.stderr, backupUsage)
	return fmt.Errorf("unknown backup command %q", args[0])
}

func (g *globals) backupCreate(ctx context.Context, args []string) error {
	var res backup.Result
	err := g.withStack(ctx, "backup create", args, func(st *stack.Stack) error {
		x, err := st.Begin("backup")
		if err != nil {
			return err
		}
		defer x.End()
		res, err = backup.Create(ctx, x, backup.KindManual)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "\nbackup %s\n  file %s (%s, mode 0600: it holds the secrets; keep a copy off this box)\n", res.Name, res.File, units.BytesSize(float64(res.Size)))
	return nil
}

func (g *globals) backupList(args []string) error {
	fs := newFlags("backup list", g.stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	list, err := backup.List(cfg.BackupDir())
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"dir": cfg.BackupDir(), "backups": list})
	}
	if len(list) == 0 {
		fmt.Fprintf(g.stdout, "no backups in %s yet (forgebox backup create takes one)\n", cfg.BackupDir())
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tGITLAB\tSIZE\tCREATED")
	for _, e := range list {
		if e.Manifest == nil {
			fmt.Fprintf(tw, "%s\t?\t?\t%s\t%s (unreadable: %s)\n", e.Name, units.BytesSize(float64(e.Size)), e.Modified.Local().Format(time.DateTime), e.Problem)
			continue
		}
		m := e.Manifest
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Name, m.Kind, m.GitLab.Version, units.BytesSize(float64(e.Size)), m.CreatedAt.Local().Format(time.DateTime))
	}
	tw.Flush()
	fmt.Fprintf(g.stdout, "\nin %s\n", cfg.BackupDir())
	return nil
}

func (g *globals) backupRestore(ctx context.Context, args []string) error {
	fs := newFlags("backup restore", g.stderr)
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	if err := fs.Parse(reorder(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprint(g.stderr, backupUsage)
		return errors.New("name one backup")
	}
	name := fs.Arg(0)
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	file, err := backup.Resolve(cfg.BackupDir(), name)
	if err != nil {
		return err
	}
	m, err := backup.ReadManifest(file)
	if err != nil {
		return err
	}
	if !*yes {
		fmt.Fprintf(g.stdout, "Restore %s (GitLab %s, taken %s)?\nGitLab's data, its secrets, SSH host keys and the runner tokens are replaced by the backup's.\nA safety backup of the stack as it is now is taken first.\n",
			m.Name, m.GitLab.Version, m.CreatedAt.Local().Format(time.DateTime))
		if err := g.confirm("Type the backup's name to go on: ", m.Name); err != nil {
			return err
		}
	}
	var res backup.RestoreResult
	err = g.onStack(ctx, func(st *stack.Stack) error {
		x, err := st.Begin("restore")
		if err != nil {
			return err
		}
		defer x.End()
		res, err = backup.Restore(ctx, x, file, g.saveConfig)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "\nrestored %s (GitLab %s): %d of %d runners verified with their tokens\n  safety backup of the stack before: %s\n", res.Name, res.Version, res.RunnersOK, res.Runners, res.SafetyBackup)
	if res.FromFlavour != "" {
		fmt.Fprintf(g.stdout, "  flavour switched from %s to %s: GitLab's Rails secrets were carried over\n", res.FromFlavour, cfg.GitLab.Flavour)
	}
	if len(res.Reregistered) > 0 {
		fmt.Fprintf(g.stdout, "  registered again (GitLab did not know their restored token): %s\n", strings.Join(res.Reregistered, ", "))
	}
	return nil
}

// saveConfig writes what an operation changed (images, runner profiles) to the config file, over
// the file as it is now, so a change saved meanwhile (by the web app, say) stays; it creates the
// file when forgebox ran on the embedded defaults.
func (g *globals) saveConfig(cfg config.Config) error {
	if cur, err := config.Load(g.configPath); err == nil {
		cfg = stack.WithOperationChanges(cur, cfg)
	}
	if err := config.Save(g.configPath, cfg); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w (create the directory, or pass --config with a writable path)", err)
		}
		return err
	}
	return nil
}

// confirm asks on the terminal for want; without a terminal it refuses (use --yes).
func (g *globals) confirm(prompt, want string) error {
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return errors.New("not confirmed: no terminal to ask on; pass --yes")
	}
	fmt.Fprint(g.stdout, prompt)
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	if strings.TrimSpace(line) != want {
		return errors.New("not confirmed; nothing was changed")
	}
	return nil
}

// reorder puts flags before the arguments, so `restore NAME --yes` works like `restore --yes NAME`.
func reorder(args []string) []string {
	var flags, rest []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			flags = append(flags, a)
		} else {
			rest = append(rest, a)
		}
	}
	return append(flags, rest...)
}
