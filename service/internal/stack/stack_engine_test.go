package stack_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/stack"
	"github.com/forgebox/forgebox/service/internal/testenv"
)

// recorder keeps every event a stack emits.
type recorder struct {
	mu  sync.Mutex
	evs []events.Event
}

func (r *recorder) Emit(e events.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, e)
}

type fixture struct {
	t       *testing.T
	eng     *engine.Client
	cfg     config.Config
	secrets *config.Secrets
	rec     *recorder
}

func newFixture(t *testing.T) *fixture {
	eng := testenv.Engine(t)
	im := testenv.TestImages(t)
	cfg := testenv.Config(t, eng, im)
	return &fixture{t: t, eng: eng, cfg: cfg, secrets: openSecrets(t, cfg), rec: &recorder{}}
}

func openSecrets(t *testing.T, cfg config.Config) *config.Secrets {
	s, err := config.OpenSecrets(cfg.Stack.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) stack() *stack.Stack {
	return stack.New(f.cfg, f.eng, f.secrets, stack.Options{Events: f.rec, Version: "test"})
}

func (f *fixture) up(ctx context.Context) stack.Plan {
	f.t.Helper()
	plan, err := f.stack().Up(ctx)
	if err != nil {
		f.t.Fatalf("up: %v", err)
	}
	return plan
}

func (f *fixture) status(ctx context.Context) map[string]stack.ComponentStatus {
	f.t.Helper()
	rows, err := f.stack().Status(ctx)
	if err != nil {
		f.t.Fatalf("status: %v", err)
	}
	out := map[string]stack.ComponentStatus{}
	for _, r := range rows {
		out[r.Component] = r
	}
	return out
}

// ip is a container's address on the stack network, where the host reaches it.
func (f *fixture) ip(ctx context.Context, component string) string {
	f.t.Helper()
	id := f.status(ctx)[component].ID
	det, err := f.eng.Inspect(ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return det.IPs[f.cfg.NetworkName()]
}

// gitlabConn logs in the way GitLab will: as role gitlab, to gitlabhq_production.
func (f *fixture) gitlabConn(ctx context.Context) *pgx.Conn {
	f.t.Helper()
	pw, ok := f.secrets.Get(config.SecretPostgresGitLab)
	if !ok {
		f.t.Fatal("no gitlab password in the secret store")
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword("gitlab", pw), Host: net.JoinHostPort(f.ip(ctx, "postgres"), "5432"),
		Path: "/gitlabhq_production", RawQuery: "sslmode=disable"}
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		f.t.Fatalf("connect as gitlab: %v", err)
	}
	f.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestUpFromEmptyProvisionsPostgresAndRedis(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	plan := f.up(ctx)
	if plan.Empty() {
		t.Fatal("first up planned nothing")
	}

	st := f.status(ctx)
	for _, c := range []string{"postgres", "redis"} {
		if st[c].State != "running" || st[c].Health != "healthy" {
			t.Errorf("%s: state %q health %q, want running/healthy", c, st[c].State, st[c].Health)
		}
		if !st[c].UpToDate {
			t.Errorf("%s: not up to date right after up", c)
		}
	}

	conn := f.gitlabConn(ctx)
	var super bool
	if err := conn.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
		t.Fatal(err)
	}
	if super {
		t.Error("role gitlab is a superuser")
	}
	rows, _ := conn.Query(ctx, `SELECT extname FROM pg_extension`)
	exts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pg_trgm", "btree_gist", "amcheck"} {
		if !slices.Contains(exts, want) {
			t.Errorf("extension %s missing in gitlabhq_production (have %v)", want, exts)
		}
	}
	var owner string
	conn.QueryRow(ctx, `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()`).Scan(&owner)
	if owner != "gitlab" {
		t.Errorf("gitlabhq_production owned by %q, want gitlab", owner)
	}

	// Redis answers on the stack network, and is published nowhere.
	if got := redisPing(t, f.ip(ctx, "redis")); got != "+PONG" {
		t.Errorf("redis PING answered %q", got)
	}
	for _, c := range []string{"postgres", "redis"} {
		out, err := exec.Command("docker", "port", f.status(ctx)[c].ID).CombinedOutput()
		if err != nil {
			t.Fatalf("docker port %s: %v: %s", c, err, out)
		}
		if len(out) > 0 {
			t.Errorf("%s publishes ports on the host: %s", c, out)
		}
	}

	// The plan was shown before it was applied, each step with a reason.
	var planned int
	for _, e := range f.rec.evs {
		if e.Kind == events.KindPlan {
			planned++
		}
	}
	if planned != len(plan.Actions) {
		t.Errorf("%d plan events for %d actions", planned, len(plan.Actions))
	}
}

func redisPing(t *testing.T, ip string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "6379"), 5*time.Second)
	if err != nil {
		t.Fatalf("dial redis: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "PING\r\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	return string(line[:max(0, len(line)-2)])
}

func TestSecondUpChangesNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.up(ctx)
	before := f.status(ctx)

	plan := f.up(ctx)
	if !plan.Empty() {
		t.Fatalf("second up planned:\n%s", plan)
	}
	after := f.status(ctx)
	for _, c := range []string{"postgres", "redis"} {
		if before[c].ID != after[c].ID {
			t.Errorf("%s container changed: %s -> %s", c, before[c].ID, after[c].ID)
		}
		if !before[c].StartedAt.Equal(after[c].StartedAt) {
			t.Errorf("%s was restarted", c)
		}
	}
}

func TestDownThenUpKeepsData(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.up(ctx)
	conn := f.gitlabConn(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	superBefore, _ := f.secrets.Get(config.SecretPostgresSuperuser)

	if err := f.stack().Down(ctx); err != nil {
		t.Fatalf("down: %v", err)
	}
	list, err := f.eng.ListContainers(ctx, f.cfg.Stack.Name)
	if err != nil {
		t.Fatal(err)
	}
	// Job containers (no component label) are the runner's to end; down leaves them by design.
	list = slices.DeleteFunc(list, func(c engine.Container) bool { return c.Component == "" })
	if len(list) != 0 {
		t.Fatalf("down left %d containers: %+v", len(list), list)
	}
	if _, ok, _ := f.eng.FindNetwork(ctx, f.cfg.Stack.Name, f.cfg.NetworkName()); ok {
		t.Error("down left the network")
	}

	// A fresh secret store read from disk, as a new process would.
	f.secrets = openSecrets(t, f.cfg)
	if got, _ := f.secrets.Get(config.SecretPostgresSuperuser); got != superBefore {
		t.Fatal("the superuser password changed across down")
	}
	f.up(ctx)
	var v string
	if err := f.gitlabConn(ctx).QueryRow(ctx, `SELECT v FROM kept`).Scan(&v); err != nil || v != "still here" {
		t.Fatalf("row after down/up: %q, %v", v, err)
	}
}

func TestChangedImageRecreatesOnlyThatComponent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.up(ctx)
	before := f.status(ctx)

	// Another name for the same Redis image: the spec changes, the data does not.
	retag := "forgebox-test/redis:retag-" + f.cfg.Stack.Name
	if out, err := exec.Command("docker", "tag", f.cfg.Redis.Image, retag).CombinedOutput(); err != nil {
		t.Fatalf("docker tag: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", retag).Run() })
	f.cfg.Redis.Image = retag

	plan := f.up(ctx)
	var kinds []string
	for _, a := range plan.Actions {
		kinds = append(kinds, string(a.Kind)+" "+a.Component)
	}
	if !slices.Equal(kinds, []string{"recreate redis", "wait redis"}) {
		t.Fatalf("plan after changing redis.image:\n%s", plan)
	}
	after := f.status(ctx)
	if after["postgres"].ID != before["postgres"].ID {
		t.Error("postgres was recreated though only redis changed")
	}
	if after["redis"].ID == before["redis"].ID || after["redis"].Health != "healthy" {
		t.Errorf("redis: id %s (before %s), health %s", after["redis"].ID, before["redis"].ID, after["redis"].Health)
	}
}

func TestUpIsRefusedWhileAnotherOperationHoldsTheLock(t *testing.T) {
	f := newFixture(t)
	lock, err := stack.TryLock(f.cfg.Stack.DataDir, "backup")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.stack().Up(context.Background())
	var busy *stack.BusyError
	if !errors.As(err, &busy) {
		t.Fatalf("up under a held lock: %v, want BusyError", err)
	}
	if busy.Holder.Op != "backup" || busy.Holder.PID != os.Getpid() {
		t.Errorf("holder %+v", busy.Holder)
	}
	list, _ := f.eng.ListContainers(context.Background(), f.cfg.Stack.Name)
	if len(list) != 0 {
		t.Errorf("a refused up created %d containers", len(list))
	}
	lock.Unlock()
	if _, err := stack.TryLock(f.cfg.Stack.DataDir, "up"); err != nil {
		t.Errorf("lock not released: %v", err)
	}
}

func TestProvisioningRepairsAfterPostgresRestart(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.up(ctx)

	// Break what provisioning owns, as a hand edit or a half-finished earlier run would.
	super, _ := f.secrets.Get(config.SecretPostgresSuperuser)
	ip := f.ip(ctx, "postgres")
	u := url.URL{Scheme: "postgres", User: url.UserPassword("postgres", super), Host: net.JoinHostPort(ip, "5432"), Path: "/gitlabhq_production", RawQuery: "sslmode=disable"}
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `DROP EXTENSION amcheck; ALTER ROLE gitlab SUPERUSER PASSWORD 'wrong'`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	// Restart PostgreSQL under forgebox: the plan sees the damage once it is back.
	id := f.status(ctx)["postgres"].ID
	if out, err := exec.Command("docker", "restart", id).CombinedOutput(); err != nil {
		t.Fatalf("docker restart: %v %s", err, out)
	}
	plan := f.up(ctx)
	found := false
	for _, a := range plan.Actions {
		if a.Kind == stack.ActProvision {
			found = true
		}
	}
	if !found {
		t.Fatalf("plan after breaking provisioning has no provision step:\n%s", plan)
	}
	c := f.gitlabConn(ctx)
	var super2 bool
	c.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = 'gitlab'`).Scan(&super2)
	var n int
	c.QueryRow(ctx, `SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'`).Scan(&n)
	if super2 || n != 1 {
		t.Errorf("after repair: superuser=%v amcheck=%d", super2, n)
	}
	if plan := f.up(ctx); !plan.Empty() {
		t.Errorf("up after repair planned:\n%s", plan)
	}
}

func TestUpNeverTouchesAForeignContainerWithItsName(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	name := f.cfg.Stack.Name + "-redis"
	out, err := exec.Command("docker", "run", "-d", "--name", name, "--entrypoint", "sleep", f.cfg.Redis.Image, "600").CombinedOutput()
	if err != nil {
		t.Fatalf("docker run: %v %s", err, out)
	}
	foreignID := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", foreignID).Run() })

	_, err = f.stack().Up(ctx)
	if err == nil || !strings.Contains(err.Error(), "not this stack's") || !strings.Contains(err.Error(), "no "+engine.LabelStack+" label") || !strings.Contains(err.Error(), name) {
		t.Fatalf("up with a foreign container named %s: %v", name, err)
	}
	state, err := exec.Command("docker", "inspect", "-f", "{{.Id}} {{.State.Running}}", name).Output()
	if err != nil {
		t.Fatalf("docker inspect: %v", err)
	}
	if strings.TrimSpace(string(state)) != foreignID+" true" {
		t.Errorf("the foreign container was touched: %s", state)
	}
}
