package compose_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/compose"
	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/pgprov"
	"github.com/forgebox/forgebox/service/internal/stack"
	"github.com/forgebox/forgebox/service/internal/testenv"
)

// TestExportOnEngine, on the real engine: the subnet comes from the network forgebox made, and
// the exported init script, run by PostgreSQL's entrypoint exactly as Compose would mount it,
// leaves the database as forgebox's own provisioning does (nothing missing, the role logs in
// with the password from .env).
func TestExportOnEngine(t *testing.T) {
	eng := testenv.Engine(t)
	im := testenv.TestImages(t)
	cfg := testenv.Config(t, eng, im)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	if _, err := eng.CreateNetwork(ctx, cfg.Stack.Name, cfg.NetworkName(), nil); err != nil {
		t.Fatal(err)
	}
	nw, ok, err := eng.FindNetwork(ctx, cfg.Stack.Name, cfg.NetworkName())
	if err != nil || !ok || len(nw.Subnets) == 0 {
		t.Fatalf("network: %v %v %+v", ok, err, nw)
	}
	subnet, from, err := compose.ResolveSubnet(ctx, eng, cfg, "")
	if err != nil || subnet != nw.Subnets[0] || !strings.Contains(from, cfg.NetworkName()) {
		t.Fatalf("ResolveSubnet = %q (%s), %v; the network has %v", subnet, from, err, nw.Subnets)
	}

	secrets, err := config.OpenSecrets(cfg.Stack.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := compose.Render(cfg, secrets, compose.Options{Version: "test", Env: stack.Env{Host: cfg.GitLab.Host, Subnet: subnet}})
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if _, err := compose.Write(out, f, false); err != nil {
		t.Fatal(err)
	}
	p := parseStrict(t, f.Compose)
	vars := parseDotEnv(t, f.DotEnv)
	svc := p.Services["postgres"]

	// The PostgreSQL container as Compose would create it from the file: its image, environment
	// (interpolated from .env), binds (the init directory relative to the file) and healthcheck.
	d, err := stack.Build(cfg, secrets, "test", stack.Env{Host: cfg.GitLab.Host, Subnet: subnet})
	if err != nil {
		t.Fatal(err)
	}
	pg, _ := d.Component("postgres")
	spec := pg.Spec
	spec.Env = nil
	for k, v := range svc.Environment {
		spec.Env = append(spec.Env, k+"="+interpolate(t, v, vars))
	}
	spec.Binds = nil
	for _, v := range svc.Volumes {
		src := interpolate(t, v.Source, vars)
		if strings.HasPrefix(src, "./") {
			src = filepath.Join(out, src)
		}
		spec.Binds = append(spec.Binds, engine.Bind{Source: src, Target: v.Target, ReadOnly: v.ReadOnly})
	}
	for _, dir := range pg.Dirs {
		os.MkdirAll(dir.Path, dir.Mode)
	}
	id, err := eng.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	det, err := eng.WaitHealthy(ctx, id, engine.WaitOptions{Deadline: 2 * time.Minute})
	if err != nil {
		t.Fatalf("postgres with the init script: %v", err)
	}
	logs, _ := eng.Logs(ctx, id, 200)
	if !strings.Contains(strings.Join(logs, "\n"), "forgebox-gitlab.sh") {
		t.Errorf("the entrypoint did not run the init script:\n%s", strings.Join(logs, "\n"))
	}
	super, _ := secrets.Get(config.SecretPostgresSuperuser)
	role, _ := secrets.Get(config.SecretPostgresGitLab)
	target := pgprov.Target{Host: det.IPs[cfg.NetworkName()], Port: 5432, Superuser: cfg.Postgres.Superuser, SuperPassword: super,
		Role: stack.GitLabRole, RolePassword: role, Database: stack.GitLabDatabase, Extensions: pgprov.Extensions}
	st, err := pgprov.Observe(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	if missing := st.Missing(target); len(missing) > 0 {
		t.Fatalf("after the init script, forgebox would still provision: %v", missing)
	}
	if st.RoleSuperuser || !st.RoleCreateDB {
		t.Fatalf("role: %+v", st)
	}
}
