package engine_test

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/testenv"
)

// testRegistry is an in-memory registry on 127.0.0.1 (which the engine treats as insecure by
// default, so it pulls over plain HTTP) that can refuse the first manifest requests.
type testRegistry struct {
	host string // 127.0.0.1:PORT

	mu            sync.Mutex
	failManifests int  // how many more manifest GETs fail
	drop          bool // fail them by closing the connection instead of a 500
	manifestGets  int
	failed        int
	blobGets      int
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	r := &testRegistry{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		switch {
		case req.Method != http.MethodGet:
			// The engine asks for a manifest with HEAD first, and falls back to a GET when
			// that fails: only a failed GET fails its pull.
		case strings.Contains(req.URL.Path, "/manifests/"):
			r.manifestGets++
			if r.failManifests > 0 {
				r.failManifests--
				r.failed++
				drop := r.drop
				r.mu.Unlock()
				if drop {
					conn, _, err := http.NewResponseController(w).Hijack()
					if err != nil {
						t.Errorf("hijack: %v", err)
						return
					}
					conn.Close()
					return
				}
				http.Error(w, `{"errors":[{"code":"UNKNOWN","message":"injected failure"}]}`, http.StatusInternalServerError)
				return
			}
		case strings.Contains(req.URL.Path, "/blobs/"):
			r.blobGets++
		}
		r.mu.Unlock()
		reg.ServeHTTP(w, req)
	}))
	// The engine tries HTTPS first; keep the handshake noise out of the test log.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	r.host = srv.Listener.Addr().String()
	if !strings.HasPrefix(r.host, "127.0.0.1:") {
		t.Fatalf("registry listens on %s, not on loopback", r.host)
	}
	return r
}

func (r *testRegistry) counts() (manifests, failed, blobs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.manifestGets, r.failed, r.blobGets
}

// push puts a fresh random image of layers layers of size bytes each into the registry and
// returns its reference and the image. The pulled image is removed from the engine when the
// test ends.
func (r *testRegistry) push(t *testing.T, layers int64, size int64) (string, v1.Image) {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref := r.host + "/fbtest/img-" + randHex(t, 4) + ":1"
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, remote.WithContext(ctxFor(t, time.Minute))); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	r.mu.Lock() // count the engine's requests only
	r.manifestGets, r.failed, r.blobGets = 0, 0, 0
	r.mu.Unlock()
	t.Cleanup(func() {
		// Only the image this test pulled.
		if out, err := docker(t, "image", "rm", ref); err != nil && !strings.Contains(out, "No such image") {
			t.Logf("cleanup: docker image rm %s: %v: %s", ref, err, out)
		}
	})
	return ref, img
}

type progressLog struct {
	mu     sync.Mutex
	events []engine.PullProgress
}

func (p *progressLog) add(e engine.PullProgress) {
	p.mu.Lock()
	p.events = append(p.events, e)
	p.mu.Unlock()
}

func (p *progressLog) all() []engine.PullProgress {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]engine.PullProgress(nil), p.events...)
}

func (p *progressLog) maxAttempt() int {
	n := 0
	for _, e := range p.all() {
		n = max(n, e.Attempt)
	}
	return n
}

func (p *progressLog) retries() []engine.PullProgress {
	var out []engine.PullProgress
	for _, e := range p.all() {
		if strings.Contains(e.Status, "trying again") {
			out = append(out, e)
		}
	}
	return out
}

func layerIDs(t *testing.T, img v1.Image) []string {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.Hex[:12]) // the engine reports layers by their short digest
	}
	return ids
}

func wantPulled(t *testing.T, eng *engine.Client, ref string, img v1.Image) {
	t.Helper()
	want, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	id, err := eng.ImageID(ctxFor(t, 30*time.Second), ref)
	if err != nil {
		t.Fatal(err)
	}
	if id != want.String() {
		t.Errorf("ImageID(%s) = %q, want the pushed config %s", ref, id, want)
	}
}

func TestPull(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	reg := newTestRegistry(t)
	ref, img := reg.push(t, 3, 256<<10)

	if id, err := eng.ImageID(ctxFor(t, 30*time.Second), ref); err != nil || id != "" {
		t.Fatalf("ImageID before the pull = %q, %v", id, err)
	}
	var p progressLog
	if err := eng.Pull(ctxFor(t, 2*time.Minute), ref, engine.PullRetry{Attempts: 1}, p.add); err != nil {
		t.Fatalf("Pull: %v", err)
	}
	wantPulled(t, eng, ref, img)

	events := p.all()
	type layerSeen struct{ downloading, complete bool }
	seen := map[string]*layerSeen{}
	for _, e := range events {
		if e.Image != ref || e.Attempt != 1 {
			t.Errorf("event %+v: want image %s, attempt 1", e, ref)
		}
		if e.Layer == "" {
			continue
		}
		s := seen[e.Layer]
		if s == nil {
			s = &layerSeen{}
			seen[e.Layer] = s
		}
		// Byte counts come with Downloading and Extracting. Docker 26 rate-limits its progress
		// lines, and a small layer on loopback can finish its download between two of them, so
		// a layer's bar may only move while it is extracted (seen on the newer-engine suite).
		if e.Status == "Downloading" || e.Status == "Extracting" {
			if e.Total <= 0 || e.Current <= 0 || e.Current > e.Total {
				t.Errorf("%s progress %+v: want 0 < current <= total", e.Status, e)
			}
			s.downloading = true
		}
		if e.Status == "Pull complete" {
			s.complete = true
		}
	}
	for _, l := range layerIDs(t, img) {
		s := seen[l]
		switch {
		case s == nil:
			t.Errorf("no progress for layer %s", l)
		case !s.downloading:
			t.Errorf("layer %s: no Downloading or Extracting progress with a total", l)
		case !s.complete:
			t.Errorf("layer %s: no Pull complete", l)
		}
	}
	if len(p.retries()) != 0 {
		t.Errorf("retries reported for a pull that worked: %+v", p.retries())
	}
	if t.Failed() {
		for _, e := range events {
			t.Logf("progress: %+v", e)
		}
	}

	// Pulling what is there already still works, and downloads nothing.
	var again progressLog
	if err := eng.Pull(ctxFor(t, time.Minute), ref, engine.PullRetry{Attempts: 1}, again.add); err != nil {
		t.Fatalf("second Pull: %v", err)
	}
	for _, e := range again.all() {
		if e.Status == "Downloading" {
			t.Errorf("second pull downloaded: %+v", e)
		}
	}
}

func TestPullRetriesTransientFailure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		drop bool
		says string // in the retry message
	}{
		{"http-500", false, "500"},
		{"dropped-connection", true, "EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			eng := testenv.Engine(t)
			reg := newTestRegistry(t)
			ref, img := reg.push(t, 2, 128<<10)

			// The first two manifest GETs fail: each fails a whole pull (the engine does not
			// retry manifests itself), so only Pull's own retries get the image.
			reg.mu.Lock()
			reg.failManifests, reg.drop = 2, tc.drop
			reg.mu.Unlock()

			var p progressLog
			start := time.Now()
			err := eng.Pull(ctxFor(t, 2*time.Minute), ref, engine.PullRetry{Attempts: 4, Backoff: 200 * time.Millisecond}, p.add)
			took := time.Since(start)
			manifests, failed, _ := reg.counts()
			if err != nil {
				t.Fatalf("Pull: %v (manifest GETs %d, failed %d)", err, manifests, failed)
			}
			if failed != 2 || manifests != 3 {
				t.Errorf("%d manifest GETs, %d failed; want 3 and 2", manifests, failed)
			}
			wantPulled(t, eng, ref, img)

			retries := p.retries()
			if len(retries) != 2 || p.maxAttempt() != 3 {
				for _, e := range p.all() {
					t.Logf("progress: %+v", e)
				}
				t.Fatalf("%d retry messages and %d attempts, want 2 retries and 3 attempts", len(retries), p.maxAttempt())
			}
			for i, r := range retries {
				if r.Attempt != i+1 || r.Image != ref {
					t.Errorf("retry %d: %+v", i, r)
				}
			}
			wantContains(t, "retry message", retries[0].Status, tc.says, "in 200ms")
			wantContains(t, "retry message", retries[1].Status, "in 400ms")
			// Backoff 200ms then 400ms.
			if took < 600*time.Millisecond {
				t.Errorf("Pull with two retries took only %s, less than the backoff", took)
			}
		})
	}
}

func TestPullRetriesGiveUp(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	reg := newTestRegistry(t)
	ref, _ := reg.push(t, 1, 1024)

	reg.mu.Lock()
	reg.failManifests = 100
	reg.mu.Unlock()

	var p progressLog
	err := eng.Pull(ctxFor(t, 2*time.Minute), ref, engine.PullRetry{Attempts: 3, Backoff: 100 * time.Millisecond}, p.add)
	if err == nil {
		t.Fatal("Pull against a registry that always fails succeeded")
	}
	if manifests, failed, _ := reg.counts(); failed != 3 || manifests != 3 {
		t.Errorf("%d manifest GETs, %d failed; want one per attempt (3)", manifests, failed)
	}
	// Attempts 1 and 2 announce a retry; the last one fails before any progress.
	if rs := p.retries(); len(rs) != 2 || rs[0].Attempt != 1 || rs[1].Attempt != 2 || p.maxAttempt() != 2 {
		t.Errorf("retries %+v, max attempt %d; want retries after attempts 1 and 2", rs, p.maxAttempt())
	}
	wantContains(t, "error", err.Error(), ref, "could not reach the registry")
	if id, err := eng.ImageID(ctxFor(t, 30*time.Second), ref); err != nil || id != "" {
		t.Errorf("ImageID after a failed pull = %q, %v", id, err)
	}
}

func TestPullMissingTagIsNotRetried(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	reg := newTestRegistry(t)
	ref, _ := reg.push(t, 1, 1024)
	missing := strings.TrimSuffix(ref, ":1") + ":nope"

	var p progressLog
	start := time.Now()
	// A retry would wait 5s first.
	err := eng.Pull(ctxFor(t, 2*time.Minute), missing, engine.PullRetry{Attempts: 4, Backoff: 5 * time.Second}, p.add)
	took := time.Since(start)
	if err == nil {
		t.Fatalf("Pull of a missing tag succeeded")
	}
	wantContains(t, "error", err.Error(), missing, "check the image name and tag")
	if len(p.retries()) != 0 || p.maxAttempt() > 1 {
		t.Errorf("a missing tag was retried: %+v", p.all())
	}
	if manifests, _, _ := reg.counts(); manifests != 1 {
		t.Errorf("%d manifest GETs for a missing tag, want 1 (one pull)", manifests)
	}
	if took > 4*time.Second {
		t.Errorf("Pull of a missing tag took %s", took)
	}
}
