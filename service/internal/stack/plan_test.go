package stack

import (
	"errors"
	"flag"
	"github.com/forgebox/forgebox/service/internal/msg"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/gitlab"
	"github.com/forgebox/forgebox/service/internal/pgprov"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fixedSecrets returns the same value for every name, so specs and hashes are stable.
type fixedSecrets struct{}

func (fixedSecrets) Ensure(name string) (string, error) { return "secret-" + name, nil }
func (fixedSecrets) Get(name string) (string, bool)     { return "secret-" + name, true }

var testEnv = Env{Subnet: "172.30.0.0/16", Host: "nas.example.lan", Arch: "amd64", TimeZone: "Europe/Berlin"}

func testConfig() config.Config {
	cfg := config.Default()
	cfg.Stack.DataDir = "/srv/forgebox"
	return cfg
}

func desiredForTest(t *testing.T) Desired {
	return desiredFrom(t, testConfig())
}

func desiredFrom(t *testing.T, cfg config.Config) Desired {
	t.Helper()
	d, err := Build(cfg, fixedSecrets{}, "test", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var recordCreated = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// converged is what the engine holds right after a successful up of d.
func converged(d Desired) Observed {
	o := Observed{
		Networks: map[string]engine.Network{
			d.Network:     {ID: "net1", Name: d.Network, Internal: true, Subnets: []string{testEnv.Subnet}},
			d.JobsNetwork: {ID: "net2", Name: d.JobsNetwork},
		},
		Containers: map[string]engine.Detail{},
		Images:     map[string]string{},
		Postgres: &pgprov.State{RoleExists: true, RoleCanLogin: true, RoleCreateDB: true, RolePasswordOK: true, DatabaseExists: true,
			DatabaseOwner: GitLabRole, ExtensionsFound: map[string]bool{"pg_trgm": true, "btree_gist": true, "amcheck": true}},
	}
	g := &GitLabObserved{Ready: true, TokenOK: true, Runners: map[string]RunnerRecord{}, Known: map[string]bool{}}
	for i, p := range d.Config.Runner.Profiles {
		g.Runners[p.Name] = RunnerRecord{ID: int64(i + 1), Token: "glrt-test-" + p.Name, Description: runnerDescription(d.Config, p),
			Tags: wantedTags(p), RunUntagged: p.RunUntagged, CreatedAt: recordCreated}
		g.Known[p.Name] = true
	}
	toml, err := renderRunnerConfig(d.Config, g.Runners)
	if err != nil {
		panic(err)
	}
	g.ConfigTOML = toml
	o.GitLab = g
	if d.HelperImage != "" {
		o.Images[d.HelperImage] = "sha256:helperimage"
	}
	for _, c := range d.Components {
		o.Images[c.Spec.Image] = "sha256:" + c.Name + "image"
		o.Containers[c.Name] = engine.Detail{Container: engine.Container{
			ID: c.Name + "-id", Name: c.Spec.Name, Component: c.Name, State: "running",
			SpecHash: c.Spec.Labels[engine.LabelSpecHash], ImageID: "sha256:" + c.Name + "image",
		}, Health: "healthy"}
	}
	return o
}

func TestPlanGolden(t *testing.T) {
	d := desiredForTest(t)
	cases := map[string]func(o *Observed){
		"empty-engine": func(o *Observed) {
			*o = Observed{Containers: map[string]engine.Detail{}, Images: map[string]string{}}
		},
		"converged": func(o *Observed) {},
		"images-present-no-containers": func(o *Observed) {
			o.Networks = nil
			o.Containers = map[string]engine.Detail{}
			o.Postgres = nil
		},
		"redis-spec-changed": func(o *Observed) {
			r := o.Containers["redis"]
			r.SpecHash = "0123456789abcdef"
			o.Containers["redis"] = r
		},
		"postgres-image-updated": func(o *Observed) {
			o.Images[d.Components[0].Spec.Image] = "sha256:newer"
		},
		"stopped-and-unhealthy": func(o *Observed) {
			p := o.Containers["postgres"]
			p.State, p.Health = "exited", ""
			o.Containers["postgres"] = p
			o.Postgres = nil
			r := o.Containers["redis"]
			r.Health = "unhealthy"
			o.Containers["redis"] = r
		},
		"provisioning-incomplete": func(o *Observed) {
			o.Postgres.ExtensionsFound = map[string]bool{"pg_trgm": true}
			o.Postgres.RolePasswordOK = false
		},
		"postgres-unreachable": func(o *Observed) {
			o.Postgres = nil
			o.PostgresErr = errors.New("connection refused")
		},
		"gitlab-booting": func(o *Observed) {
			o.GitLab = &GitLabObserved{ReadyErr: errors.New("readiness: HTTP 503")}
		},
		"admin-token-expiring": func(o *Observed) {
			o.GitLab.TokenOK, o.GitLab.TokenWhy = false, msg.New("token.why.expires", "date", "2026-12-01")
		},
		"runner-forgotten-by-gitlab": func(o *Observed) {
			o.GitLab.Known["default"] = false
		},
		"runner-tags-changed": func(o *Observed) {
			r := o.GitLab.Runners["default"]
			r.Tags = []string{"old-tag"}
			o.GitLab.Runners["default"] = r
		},
		"profile-removed": func(o *Observed) {
			o.GitLab.Runners["arm"] = RunnerRecord{ID: 7, Token: "glrt-arm", Description: "forgebox-arm", Tags: []string{"arm"}}
			o.GitLab.Known["arm"] = true
		},
		"runner-leftover-from-killed-run": func(o *Observed) {
			o.GitLab.Leftovers = []gitlab.RunnerInfo{{ID: 9, Description: "forgebox-default"}}
		},
		"runner-config-edited": func(o *Observed) {
			o.GitLab.ConfigTOML = append([]byte("# hand edit\n"), o.GitLab.ConfigTOML...)
		},
		"jobs-network-missing": func(o *Observed) {
			delete(o.Networks, d.JobsNetwork)
		},
		// A stack made by a forgebox with one network: every container ran there, with the
		// specs of that time, and the two networks were just made by up.
		"single-network-layout": func(o *Observed) {
			o.ExtraNetworks = []engine.Network{{ID: "old", Name: "forgebox-net", Subnets: []string{"172.18.0.0/16"}}}
			for name, c := range o.Containers {
				c.SpecHash = "0ld0ld0ld0ld0ld0"
				c.IPs = map[string]string{"forgebox-net": "172.18.0.9"}
				o.Containers[name] = c
			}
			// Not asked on the old network: they are recreated first.
			o.Postgres, o.GitLab = nil, nil
		},
		"leftover-component": func(o *Observed) {
			o.Extra = []engine.Container{{ID: "old-id", Name: "forgebox-mailer", Component: "mailer", State: "running"}}
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			o := converged(d)
			mutate(&o)
			got := MakePlan(d, o, "missing").String()
			golden := filepath.Join("testdata", "plan", name+".golden")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				os.WriteFile(golden, []byte(got), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./service/internal/stack -run TestPlanGolden -update)", err)
			}
			if got != string(want) {
				t.Errorf("plan differs from %s\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

func TestPlanPullPolicy(t *testing.T) {
	d := desiredForTest(t)
	o := converged(d)
	o.Images[d.Components[1].Spec.Image] = "" // redis image missing
	count := func(p Plan) (n int) {
		for _, a := range p.Actions {
			if a.Kind == ActPull {
				n++
			}
		}
		return n
	}
	if n := count(MakePlan(d, o, "never")); n != 0 {
		t.Errorf("pull_policy never: %d pulls", n)
	}
	if n := count(MakePlan(d, o, "missing")); n != 1 {
		t.Errorf("pull_policy missing: %d pulls, want 1 (redis)", n)
	}
	if n := count(MakePlan(d, o, "always")); n != len(d.Components)+1 {
		t.Errorf("pull_policy always: %d pulls, want one per component (%d) and the runner's helper", n, len(d.Components))
	}
}

// TestHelperImage: with runner.helper_image empty, the desired state names the helper GitLab
// Runner of the runner image's version picks on the engine's arch; config.toml names it; up pulls
// it (in the runner's stage, before the runner) when missing, and refuses under "never".
func TestHelperImage(t *testing.T) {
	for arch, want := range map[string]string{
		"amd64": HelperRegistryName + ":x86_64-v19.2.2",
		"arm64": HelperRegistryName + ":arm64-v19.2.2",
	} {
		env := testEnv
		env.Arch = arch
		d, err := Build(testConfig(), fixedSecrets{}, "test", env)
		if err != nil {
			t.Fatal(err)
		}
		if d.HelperImage != want || d.Config.Runner.HelperImage != want {
			t.Errorf("%s: helper %q (config %q), want %q", arch, d.HelperImage, d.Config.Runner.HelperImage, want)
		}
		toml, _ := renderRunnerConfig(d.Config, map[string]RunnerRecord{"default": {ID: 1, Token: "t"}})
		if !strings.Contains(string(toml), `helper_image = "`+want+`"`) {
			t.Errorf("%s: config.toml does not name the helper:\n%s", arch, toml)
		}
	}
	d := desiredForTest(t)
	o := converged(d)
	o.Images[d.HelperImage] = ""
	p := MakePlan(d, o, "missing")
	var pulls []Action
	runnerAt := -1
	for i, a := range p.Actions {
		if a.Kind == ActPull {
			pulls = append(pulls, a)
		}
		if a.Component == "runner" && a.Kind != ActPull && runnerAt < 0 {
			runnerAt = i
		}
	}
	if len(pulls) != 1 || pulls[0].Target != d.HelperImage || pulls[0].Component != "runner" || !strings.Contains(pulls[0].Reason, "every job") {
		t.Errorf("plan with the helper missing: %v", p)
	}
	if err := helperAvailable(d, o, "missing"); err != nil {
		t.Errorf("missing + pullable: %v", err)
	}
	err := helperAvailable(d, o, "never")
	if err == nil || !strings.Contains(err.Error(), d.HelperImage) || !strings.Contains(err.Error(), "runner.helper_image") {
		t.Errorf("never + missing helper: %v", err)
	}
	// A runner image whose tag names no version: config.toml leaves the helper to the runner.
	cfg := testConfig()
	cfg.Runner.Image = "gitlab/gitlab-runner:latest"
	d = desiredFrom(t, cfg)
	if d.HelperImage != "" || !strings.Contains(d.HelperWhy.String(), "runner.helper_image") {
		t.Errorf("latest: helper %q (%s)", d.HelperImage, d.HelperWhy)
	}
	cfg.Runner.HelperImage = "nas.lan/helper:x86_64-v19.2.2"
	if d = desiredFrom(t, cfg); d.HelperImage != cfg.Runner.HelperImage {
		t.Errorf("configured helper: %q", d.HelperImage)
	}
}

func TestRunnerVersion(t *testing.T) {
	for ref, want := range map[string]string{
		"gitlab/gitlab-runner:alpine-v19.2.2":                    "19.2.2",
		"gitlab/gitlab-runner:v18.5.0":                           "18.5.0",
		"gitlab/gitlab-runner:ubuntu-v18.11.4":                   "18.11.4",
		"gitlab/gitlab-runner:alpine3.21-v19.2.2":                "19.2.2",
		"registry.nas.lan:5000/runner:alpine-v19.2.2":            "19.2.2",
		"gitlab/gitlab-runner:latest":                            "",
		"gitlab/gitlab-runner:alpine-bleeding":                   "",
		"forgebox-test/runner-standin:0123456789ab":              "",
		"gitlab/gitlab-runner@sha256:" + strings.Repeat("a", 64): "",
	} {
		if got, _ := RunnerVersion(ref); got != want {
			t.Errorf("RunnerVersion(%q) = %q, want %q", ref, got, want)
		}
	}
}

func TestSpecHash(t *testing.T) {
	d := desiredForTest(t)
	spec := d.Components[0].Spec
	h := SpecHash(spec)
	if h != spec.Labels[engine.LabelSpecHash] {
		t.Fatal("Build did not label the spec with its hash")
	}
	spec.Labels = map[string]string{}
	for k, v := range d.Components[0].Spec.Labels {
		spec.Labels[k] = v
	}
	spec.Labels[engine.LabelVersion] = "a newer forgebox"
	if SpecHash(spec) != h {
		t.Error("a new forgebox version changes the spec hash: every upgrade would recreate every container")
	}
	spec.Env = append([]string{"EXTRA=1"}, spec.Env...)
	if SpecHash(spec) == h {
		t.Error("an env change does not change the hash")
	}
}

func TestBuildWiresNetworkLabelsAndDirs(t *testing.T) {
	// The runner's socket bind follows DOCKER_HOST; this checks the default socket's.
	t.Setenv("DOCKER_HOST", "")
	d := desiredForTest(t)
	var names []string
	for _, c := range d.Components {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"postgres", "redis", "gitlab", "runner"}) {
		t.Fatalf("components %v, want postgres, redis, gitlab, runner in that order", names)
	}
	// CI jobs (on the runner's network) share a network with GitLab and the runner only.
	wantNets := map[string][]string{
		"postgres": {d.Network},
		"redis":    {d.Network},
		"gitlab":   {d.Network, d.JobsNetwork},
		"runner":   {d.JobsNetwork},
	}
	for _, c := range d.Components {
		nets := []string{c.Spec.Network}
		for _, ep := range c.Spec.Networks {
			nets = append(nets, ep.Network)
			if !slices.Equal(ep.Aliases, c.Spec.Aliases) {
				t.Errorf("%s: aliases %v on %s, want %v as on %s", c.Name, ep.Aliases, ep.Network, c.Spec.Aliases, c.Spec.Network)
			}
		}
		if !slices.Equal(nets, wantNets[c.Name]) {
			t.Errorf("%s: networks %v, want %v", c.Name, nets, wantNets[c.Name])
		}
		if c.Spec.Labels[engine.LabelStack] != d.Stack || c.Spec.Labels[engine.LabelComponent] != c.Name {
			t.Errorf("%s: labels %v", c.Name, c.Spec.Labels)
		}
		if len(c.Spec.Ports) != 0 && c.Name != "gitlab" {
			t.Errorf("%s publishes ports: %v", c.Name, c.Spec.Ports)
		}
		if c.Spec.Restart != "unless-stopped" {
			t.Errorf("%s restart policy %q", c.Name, c.Spec.Restart)
		}
		for _, b := range c.Spec.Binds {
			if !strings.HasPrefix(b.Source, "/srv/forgebox/") && b.Source != "/var/run/docker.sock" {
				t.Errorf("%s binds %s outside the data dir", c.Name, b.Source)
			}
		}
	}
	pg := d.Components[0]
	if pg.Dirs[0].Mode&0o005 != 0o005 {
		t.Errorf("postgres bind dir mode %o: the postgres user cannot reach PGDATA inside it", pg.Dirs[0].Mode)
	}
}

func TestLeftoverRunnersAreOnlyUnrecordedOnesNamedLikeAProfile(t *testing.T) {
	cfg := testConfig()
	listed := []gitlab.RunnerInfo{
		{ID: 1, Description: "forgebox-default"}, // recorded
		{ID: 2, Description: "forgebox-default"}, // an interrupted registration
		{ID: 3, Description: "someone-elses"},    // made by hand in GitLab: never touched
	}
	got := leftoverRunners(cfg, listed, map[string]RunnerRecord{"default": {ID: 1}})
	if len(got) != 1 || got[0].ID != 2 {
		t.Errorf("leftovers %+v, want only runner 2", got)
	}
}

func TestInternalNetworkUnlessTheEngineCutsTheHostOff(t *testing.T) {
	for v, want := range map[string]bool{
		"20.10.24": true, "24.0.7": true, "25.0.0": false, "25.0.3": false, "25.0.4": true,
		"26.1.4": true, "28.3.0": true, "": true, "weird": true,
	} {
		if got := hostReachesInternal(v); got != want {
			t.Errorf("Docker %q: internal %v, want %v", v, got, want)
		}
	}
}

func TestRedisPasswordOnlyWhereTheFlavourSendsOne(t *testing.T) {
	for _, flavour := range []string{"sameersbn", "omnibus"} {
		cfg := testConfig()
		cfg.GitLab.Flavour = flavour
		d := desiredFrom(t, cfg)
		redis, _ := d.Component("redis")
		gl, _ := d.Component("gitlab")
		pw := "secret-" + config.SecretRedisPassword
		cmd := strings.Join(redis.Spec.Cmd, " ")
		if flavour == "omnibus" {
			if !strings.HasSuffix(cmd, "--requirepass "+pw) || !slices.Contains(redis.Spec.Env, "REDISCLI_AUTH="+pw) {
				t.Errorf("omnibus: redis cmd %q env %v", cmd, redis.Spec.Env)
			}
			if !strings.Contains(strings.Join(gl.Spec.Env, "\n"), "gitlab_rails['redis_password'] = '"+pw+"'") {
				t.Error("omnibus: GitLab is not given the Redis password")
			}
		} else if strings.Contains(cmd, "requirepass") || len(redis.Spec.Env) != 0 {
			t.Errorf("sameersbn cannot send a Redis password, yet redis has cmd %q env %v", cmd, redis.Spec.Env)
		}
		if strings.Contains(strings.Join(redis.Spec.Health.Test, " "), pw) {
			t.Errorf("%s: the password is in the healthcheck's argv", flavour)
		}
	}
}

func TestPostgresLoginsOnlyFromTheInternalSubnet(t *testing.T) {
	d := desiredForTest(t)
	pg, _ := d.Component("postgres")
	if len(pg.Files) != 1 || !slices.Contains(pg.Spec.Cmd, "hba_file="+PostgresConfMount+"/pg_hba.conf") {
		t.Fatalf("postgres files %v cmd %v", pg.Files, pg.Spec.Cmd)
	}
	var hosts []string
	for _, l := range strings.Split(string(pg.Files[0].Content), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "host" {
			hosts = append(hosts, f[3]+" "+f[4])
		}
	}
	want := []string{"127.0.0.1/32 scram-sha-256", "::1/128 scram-sha-256", testEnv.Subnet + " scram-sha-256"}
	if !slices.Equal(hosts, want) {
		t.Errorf("pg_hba host lines %v, want %v", hosts, want)
	}
	other := testEnv
	other.Subnet = "10.9.0.0/24"
	d2, _ := Build(testConfig(), fixedSecrets{}, "test", other)
	pg2, _ := d2.Component("postgres")
	if pg2.Spec.Labels[engine.LabelSpecHash] == pg.Spec.Labels[engine.LabelSpecHash] {
		t.Error("another internal subnet does not change PostgreSQL's spec: its pg_hba.conf would go stale")
	}
}
