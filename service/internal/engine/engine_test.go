package engine_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api"
	"github.com/docker/docker/api/types/versions"

	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/testenv"
)

// ---------------------------------------------------------------------------
// Helpers shared by the tests of this package.

func randHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// newStack names a throw-away stack of the test's own.
func newStack(t testing.TB) string { return "fbt-eng-" + randHex(t, 4) }

// setEngineEnv points the Docker client at host and clears whatever else of the environment
// would change how it connects.
func setEngineEnv(t *testing.T, host string) {
	t.Setenv("DOCKER_HOST", host)
	t.Setenv("DOCKER_API_VERSION", "")
	t.Setenv("DOCKER_TLS_VERIFY", "")
	t.Setenv("DOCKER_CERT_PATH", "")
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// createContainer creates a container from spec (labelled with stack), and stops and removes it
// when the test ends.
func createContainer(t testing.TB, eng *engine.Client, stack string, spec engine.ContainerSpec) string {
	t.Helper()
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	spec.Labels[engine.LabelStack] = stack
	if spec.Name == "" {
		spec.Name = stack + "-" + randHex(t, 3)
	}
	id, err := eng.Create(ctxFor(t, time.Minute), spec)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := eng.Stop(ctx, id, 0); err != nil {
			t.Logf("cleanup: %v", err)
		}
		if err := eng.Remove(ctx, id); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	return id
}

func startContainer(t testing.TB, eng *engine.Client, stack string, spec engine.ContainerSpec) string {
	t.Helper()
	id := createContainer(t, eng, stack, spec)
	if err := eng.Start(ctxFor(t, time.Minute), id); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return id
}

// docker runs the docker CLI against the local engine.
func docker(t testing.TB, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func mustDocker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := docker(t, args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func wantContains(t testing.TB, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s %q does not contain %q", what, s, sub)
		}
	}
}

// ---------------------------------------------------------------------------
// Connect: API floor and dead engines, against fake engines on loopback.

// fakeEngine answers the ping (HEAD and GET, versioned or not) with apiVersion in API-Version,
// or with no such header when apiVersion is empty.
func fakeEngine(t *testing.T, apiVersion string) (host string, pings *atomic.Int64) {
	t.Helper()
	pings = new(atomic.Int64)
	pingPath := regexp.MustCompile(`^(/v[0-9.]+)?/_ping$`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !pingPath.MatchString(r.URL.Path) || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			t.Errorf("fake engine: unexpected %s %s", r.Method, r.URL.Path)
			http.NotFound(w, r)
			return
		}
		pings.Add(1)
		if apiVersion != "" {
			w.Header().Set("API-Version", apiVersion)
		}
		w.Header().Set("OSType", "linux")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write([]byte("OK"))
		}
	}))
	t.Cleanup(srv.Close)
	return "tcp://" + srv.Listener.Addr().String(), pings
}

func TestConnectRefusesAPIBelowFloor(t *testing.T) {
	host, pings := fakeEngine(t, "1.40")
	setEngineEnv(t, host)
	c, err := engine.Connect(ctxFor(t, 10*time.Second))
	if err == nil {
		c.Close()
		t.Fatalf("Connect to an engine with API 1.40 succeeded (negotiated %s)", c.APIVersion())
	}
	if pings.Load() == 0 {
		t.Fatalf("the fake engine was never pinged; error: %v", err)
	}
	wantContains(t, "error", err.Error(), "1.40", "1.41", engine.MinAPIVersion, "update Docker", strings.TrimPrefix(host, "tcp://"))
}

func TestConnectNegotiatesVersion(t *testing.T) {
	for _, tc := range []struct{ server, want string }{
		{"1.41", "1.41"},
		{"1.43", "1.43"},
		{"1.99", api.DefaultVersion}, // newer than the client: the client's newest
	} {
		t.Run(tc.server, func(t *testing.T) {
			host, _ := fakeEngine(t, tc.server)
			setEngineEnv(t, host)
			c, err := engine.Connect(ctxFor(t, 10*time.Second))
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			defer c.Close()
			if got := c.APIVersion(); got != tc.want {
				t.Errorf("APIVersion() = %q, want %q", got, tc.want)
			}
			if v := c.APIVersion(); !versions.LessThanOrEqualTo(v, api.DefaultVersion) || versions.LessThan(v, engine.MinAPIVersion) {
				t.Errorf("APIVersion() = %q, outside [%s, %s]", v, engine.MinAPIVersion, api.DefaultVersion)
			}
		})
	}
}

// A server that answers the ping without an API version is no engine forgebox can use (the
// client would fall back to API 1.24, far below the floor).
func TestConnectRefusesPingWithoutVersion(t *testing.T) {
	host, _ := fakeEngine(t, "")
	setEngineEnv(t, host)
	c, err := engine.Connect(ctxFor(t, 10*time.Second))
	if err == nil {
		c.Close()
		t.Fatalf("Connect to a server without API-Version succeeded (negotiated %s)", c.APIVersion())
	}
	wantContains(t, "error", err.Error(), "API version", engine.MinAPIVersion)
}

func TestConnectNoSocket(t *testing.T) {
	setEngineEnv(t, "unix:///nonexistent/docker.sock")
	c, err := engine.Connect(ctxFor(t, 10*time.Second))
	if err == nil {
		c.Close()
		t.Fatal("Connect to a missing socket succeeded")
	}
	wantContains(t, "error", err.Error(), "no Docker Engine socket", "/nonexistent/docker.sock", "start Docker")
}

func TestConnectClosedPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	setEngineEnv(t, "tcp://"+addr)
	start := time.Now()
	c, err := engine.Connect(ctxFor(t, 20*time.Second))
	if err == nil {
		c.Close()
		t.Fatal("Connect to a closed port succeeded")
	}
	wantContains(t, "error", err.Error(), "does not answer", addr, "start it")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Connect to a closed port took %s", d)
	}
}

// ---------------------------------------------------------------------------
// Real engine: labels, networks, ports.

func TestConnectRealEngine(t *testing.T) {
	eng := testenv.Engine(t)
	if v := eng.APIVersion(); versions.LessThan(v, engine.MinAPIVersion) || versions.GreaterThan(v, api.DefaultVersion) {
		t.Errorf("APIVersion() = %q", v)
	}
	info, err := eng.Info(ctxFor(t, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if info.ServerVersion == "" || info.ServerAPI == "" || info.APIVersion != eng.APIVersion() {
		t.Errorf("Info = %+v", info)
	}
	if versions.GreaterThan(eng.APIVersion(), info.ServerAPI) {
		t.Errorf("negotiated %s, newer than the server's %s", eng.APIVersion(), info.ServerAPI)
	}
	if eng.Calls() < 2 {
		t.Errorf("Calls() = %d after ping and version", eng.Calls())
	}
}

func TestListContainersOnlyLabelled(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	im := testenv.TestImages(t)
	stack := newStack(t)
	ctx := ctxFor(t, 2*time.Minute)

	// Not forgebox's: no label at all, running, and one of another stack.
	unlabelled := "fbt-unlabelled-" + randHex(t, 4)
	uid := mustDocker(t, "run", "-d", "--name", unlabelled, "--entrypoint", "sleep", im.Redis, "1000")
	t.Cleanup(func() {
		if out, err := docker(t, "rm", "-f", uid); err != nil {
			t.Logf("cleanup: docker rm -f %s: %v: %s", unlabelled, err, out)
		}
	})
	other := createContainer(t, eng, stack+"-other", engine.ContainerSpec{Image: im.Redis, Cmd: []string{"redis-server"}})

	// Ours: created, never started (ListContainers must list stopped ones too).
	ours := createContainer(t, eng, stack, engine.ContainerSpec{
		Name:   stack + "-redis",
		Image:  im.Redis,
		Cmd:    []string{"redis-server"},
		Labels: map[string]string{engine.LabelComponent: "redis", engine.LabelSpecHash: "abc123"},
	})

	list, err := eng.ListContainers(ctx, stack)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("ListContainers(%s) = %+v, want only %s", stack, list, ours)
	}
	c := list[0]
	if c.ID != ours || c.Name != stack+"-redis" || c.Component != "redis" || c.SpecHash != "abc123" || c.State != "created" || c.Running() || c.Image != im.Redis || c.ImageID == "" {
		t.Errorf("listed %+v", c)
	}
	for _, id := range []string{uid, other} {
		if strings.HasPrefix(id, c.ID) || strings.HasPrefix(c.ID, id) {
			t.Errorf("listed a container that is not the stack's: %s", id)
		}
	}

	d, err := eng.Inspect(ctx, ours)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != ours || d.Name != stack+"-redis" || d.Image != im.Redis || d.Component != "redis" || d.State != "created" || d.Health != "" || d.Labels[engine.LabelStack] != stack {
		t.Errorf("Inspect = %+v", d)
	}

	if _, err := eng.Inspect(ctx, "fbt-no-such-container-"+randHex(t, 4)); !engine.IsNotFound(err) {
		t.Errorf("Inspect of a missing container: %v, want not found", err)
	}
	// Stop and Remove of a missing container are fine.
	if err := eng.Stop(ctx, "fbt-no-such-container", time.Second); err != nil {
		t.Errorf("Stop of a missing container: %v", err)
	}
	if err := eng.Remove(ctx, "fbt-no-such-container"); err != nil {
		t.Errorf("Remove of a missing container: %v", err)
	}

	// Creating under a taken name is a conflict. The engine cannot know whose container holds
	// the name, so its error must not claim either way (the stack looks and says).
	_, err = eng.Create(ctx, engine.ContainerSpec{Name: unlabelled, Image: im.Redis, Labels: map[string]string{engine.LabelStack: stack}})
	if err == nil || !engine.IsConflict(err) {
		t.Fatalf("Create with a taken name: %v, want a conflict", err)
	}
	wantContains(t, "error", err.Error(), unlabelled)
	if strings.Contains(err.Error(), "forgebox's") {
		t.Errorf("Create's conflict error claims an owner it never checked: %v", err)
	}
}

func TestFindNetwork(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	stack := newStack(t)
	ctx := ctxFor(t, 2*time.Minute)

	// Somebody else's network under the stack's network name.
	foreign := stack + "-net"
	mustDocker(t, "network", "create", foreign)
	t.Cleanup(func() {
		if out, err := docker(t, "network", "rm", foreign); err != nil {
			t.Logf("cleanup: docker network rm %s: %v: %s", foreign, err, out)
		}
	})
	_, ok, err := eng.FindNetwork(ctx, stack, foreign)
	if err == nil || ok {
		t.Fatalf("FindNetwork of an unlabelled network: ok=%v err=%v, want an error", ok, err)
	}
	wantContains(t, "error", err.Error(), foreign, "not this stack's", "no "+engine.LabelStack+" label")

	// Another stack's network under this stack's name: named as that stack's.
	other := stack + "-other"
	otherID, err := eng.CreateNetwork(ctx, "fbt-elsewhere", other, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := eng.RemoveNetwork(context.Background(), otherID); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	if _, ok, err := eng.FindNetwork(ctx, stack, other); err == nil || ok {
		t.Fatalf("FindNetwork of another stack's network: ok=%v err=%v, want an error", ok, err)
	} else {
		wantContains(t, "error", err.Error(), other, `belongs to forgebox stack "fbt-elsewhere"`)
	}

	// Ours.
	name := stack + "-own"
	id, err := eng.CreateNetwork(ctx, stack, name, map[string]string{engine.LabelVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := eng.RemoveNetwork(context.Background(), id); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	nw, ok, err := eng.FindNetwork(ctx, stack, name)
	if err != nil || !ok {
		t.Fatalf("FindNetwork(%s) = %v, %v", name, ok, err)
	}
	if nw.ID != id || nw.Name != name || len(nw.Subnets) == 0 {
		t.Fatalf("FindNetwork = %+v, want id %s with a subnet", nw, id)
	}
	for _, s := range nw.Subnets {
		if _, _, err := net.ParseCIDR(s); err != nil {
			t.Errorf("subnet %q: %v", s, err)
		}
	}
	// A labelled network of another stack is not ours either.
	if _, ok, err := eng.FindNetwork(ctx, stack+"x", name); err == nil || ok {
		t.Errorf("FindNetwork for another stack: ok=%v err=%v, want an error", ok, err)
	}
	// The engine's name filter matches substrings: a prefix of the name is no match.
	if nw, ok, err := eng.FindNetwork(ctx, stack, stack+"-ow"); err != nil || ok {
		t.Errorf("FindNetwork of a name prefix = %+v, %v, %v; want not found", nw, ok, err)
	}

	if err := eng.RemoveNetwork(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := eng.FindNetwork(ctx, stack, name); err != nil || ok {
		t.Errorf("FindNetwork after RemoveNetwork: ok=%v err=%v", ok, err)
	}
	if err := eng.RemoveNetwork(ctx, id); err != nil {
		t.Errorf("RemoveNetwork of a removed network: %v", err)
	}
}

func TestStartOnTakenPort(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	im := testenv.TestImages(t)
	stack := newStack(t)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	id := createContainer(t, eng, stack, engine.ContainerSpec{
		Image: im.Redis,
		Cmd:   []string{"redis-server"},
		Ports: []engine.Port{{HostIP: "127.0.0.1", HostPort: port, ContainerPort: 6379}},
	})
	err = eng.Start(ctxFor(t, time.Minute), id)
	if err == nil {
		t.Fatalf("Start published 127.0.0.1:%d, which is taken", port)
	}
	wantContains(t, "error", err.Error(), "port", "taken", "change the port in the config", strconv.Itoa(port))
}

// The client pinned to 1.41 (DOCKER_API_VERSION, as for a DSM box's engine) against a newer
// engine speaks 1.41 on every call. No newer real engine runs here, so a fake one answers.
func TestClientPinnedTo141OnNewerEngine(t *testing.T) {
	var paths []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		w.Header().Set("API-Version", "1.47")
		w.Header().Set("OSType", "linux")
		if strings.HasSuffix(r.URL.Path, "/_ping") {
			w.Write([]byte("OK"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("[]"))
	}))
	t.Cleanup(srv.Close)
	setEngineEnv(t, "tcp://"+srv.Listener.Addr().String())
	t.Setenv("DOCKER_API_VERSION", "1.41")
	c, err := engine.Connect(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.APIVersion() != "1.41" {
		t.Fatalf("pinned client negotiated %s", c.APIVersion())
	}
	if _, err := c.ListContainers(ctxFor(t, 10*time.Second), "fbt-pin"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	last := paths[len(paths)-1]
	if last != "/v1.41/containers/json" {
		t.Errorf("list went to %s, want /v1.41/containers/json (all paths: %v)", last, paths)
	}
}
