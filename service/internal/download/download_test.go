package download

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/testenv"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/net/http/httpproxy"
)

var amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}

// fastRetry keeps the tests quick: the pauses between tries are what a real link gets in seconds.
var fastRetry = Retry{Attempts: 8, Backoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}

// testImage pushes a two-layer image built on the Redis test image (real content, a few tens of
// MiB) to reg and returns it with its reference there.
func testImage(t testing.TB, addr, repo string) (v1.Image, string) {
	t.Helper()
	im := testenv.TestImages(t)
	base := engineImage(t, im.Redis)
	extra, err := random.Layer(3<<20, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(base, extra)
	if err != nil {
		t.Fatal(err)
	}
	ref := addr + "/" + repo + ":test"
	push(t, img, ref)
	return img, ref
}

func newFetcher(t testing.TB, cacheDir string) *Fetcher {
	t.Helper()
	c, err := OpenCache(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	return &Fetcher{Cache: c, Platform: amd64, Retry: fastRetry, Stall: 2 * time.Second}
}

func smallestLayer(t testing.TB, img v1.Image) int64 {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	min := int64(-1)
	for _, l := range m.Layers {
		if min < 0 || l.Size < min {
			min = l.Size
		}
	}
	return min
}

// A link that drops every connection after a sixth of the smallest layer cuts each layer at least
// five times; the download still completes, and resuming means the bytes sent stay within 1.1x
// of the image.
func TestPullCutFiveTimesPerLayerResumes(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	proxy := startCutProxy(t, reg.Addr)
	img, _ := testImage(t, reg.Addr, "forgebox/cut")
	size := imageBytes(t, img)
	proxy.cutAfter.Store(smallestLayer(t, img) / 6)

	f := newFetcher(t, t.TempDir())
	res, err := f.Fetch(testContext(t), proxy.Addr+"/forgebox/cut:test")
	if err != nil {
		t.Fatalf("fetch through a link cut every %d bytes: %v", proxy.cutAfter.Load(), err)
	}
	m, _ := img.Manifest()
	if cuts := proxy.cuts.Load(); cuts < int64(5*len(m.Layers)) {
		t.Fatalf("the link was cut %d times; the test wants at least 5 per layer (%d layers)", cuts, len(m.Layers))
	}
	ratio := float64(proxy.sent.Load()) / float64(size)
	t.Logf("image %d bytes, %d layers; %d cuts; sent %d bytes (%.3fx)", size, len(m.Layers), proxy.cuts.Load(), proxy.sent.Load(), ratio)
	if ratio > 1.1 {
		t.Fatalf("sent %.3fx the image's bytes; resuming must keep it within 1.1x", ratio)
	}
	want, _ := img.Digest()
	if res.Manifest != want {
		t.Fatalf("fetched manifest %s, pushed %s", res.Manifest, want)
	}
	blobs, _ := imageBlobs(img)
	for _, b := range blobs {
		if !f.Cache.Has(b.Digest) {
			t.Fatalf("blob %s is not in the cache after the fetch", b.Digest)
		}
	}
}

// A link that stops sending without closing is dropped after the stall timeout and resumed.
func TestStalledConnectionIsResumed(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	proxy := startCutProxy(t, reg.Addr)
	img, _ := testImage(t, reg.Addr, "forgebox/stall")
	proxy.cutAfter.Store(smallestLayer(t, img) / 3)
	proxy.stall.Store(true)
	f := newFetcher(t, t.TempDir())
	f.Stall = 300 * time.Millisecond
	if _, err := f.Fetch(testContext(t), proxy.Addr+"/forgebox/stall:test"); err != nil {
		t.Fatalf("fetch through a stalling link: %v", err)
	}
	if proxy.cuts.Load() == 0 {
		t.Fatal("the link never stalled: the test proves nothing")
	}
}

// TestKilledFetchChild is the process the kill test runs and kills: a plain fetch.
func TestKilledFetchChild(t *testing.T) {
	if os.Getenv("FORGEBOX_DOWNLOAD_CHILD") != "1" {
		return // only as the child of TestKilledMidDownloadResumes
	}
	f := newFetcher(t, os.Getenv("FORGEBOX_DOWNLOAD_CACHE"))
	f.Fetch(context.Background(), os.Getenv("FORGEBOX_DOWNLOAD_REF"))
}

// forgebox killed (SIGKILL) part way through a download, then run again: the second run resumes
// from what the first left on disk, and the two together move at most 1.1x the image.
func TestKilledMidDownloadResumes(t *testing.T) {
	seed := seedFromEnv(t)
	rng := mrand.New(mrand.NewPCG(seed, seed))
	reg := startRegistry(t, registryOpts{})
	proxy := startCutProxy(t, reg.Addr)
	// A steady 40 MB/s link, so the child reads what it is sent and the kill lands mid-layer.
	proxy.rate.Store(40 << 20)
	img, _ := testImage(t, reg.Addr, "forgebox/kill")
	size := imageBytes(t, img)
	cache := t.TempDir()
	ref := proxy.Addr + "/forgebox/kill:test"
	killAt := size/5 + rng.Int64N(size*3/5)
	t.Logf("seed %d (FORGEBOX_DOWNLOAD_SEED replays it): kill after %d of %d bytes", seed, killAt, size)

	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledFetchChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FORGEBOX_DOWNLOAD_CHILD=1", "FORGEBOX_DOWNLOAD_CACHE="+cache, "FORGEBOX_DOWNLOAD_REF="+ref)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(2 * time.Minute)
wait:
	for proxy.sent.Load() < killAt {
		select {
		case err := <-done:
			t.Fatalf("the child ended before it could be killed (%v); sent %d bytes", err, proxy.sent.Load())
		case <-deadline:
			t.Fatal("the child did not get far enough in 2 minutes")
		case <-time.After(5 * time.Millisecond):
			continue wait
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
	first := proxy.sent.Load()

	f := newFetcher(t, cache)
	if _, err := f.Fetch(testContext(t), ref); err != nil {
		t.Fatalf("the run after the kill: %v", err)
	}
	ratio := float64(proxy.sent.Load()) / float64(size)
	t.Logf("killed after %d bytes; both runs sent %d bytes for a %d-byte image (%.3fx)", first, proxy.sent.Load(), size, ratio)
	if ratio > 1.1 {
		t.Fatalf("the runs sent %.3fx the image; the second must resume, not start over", ratio)
	}
}

func seedFromEnv(t testing.TB) uint64 {
	if s := os.Getenv("FORGEBOX_DOWNLOAD_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FORGEBOX_DOWNLOAD_SEED=%q: %v", s, err)
		}
		return n
	}
	return mrand.Uint64()
}

// Mirrors are asked in the configured order; one that is down and one that lacks the image are
// passed over, and the origin is never asked while a mirror serves.
func TestMirrorOrderAndFallThrough(t *testing.T) {
	origin := startRegistry(t, registryOpts{})
	originProxy := startCutProxy(t, origin.Addr)
	empty := startRegistry(t, registryOpts{})
	emptyProxy := startCutProxy(t, empty.Addr)
	good := startRegistry(t, registryOpts{})
	goodProxy := startCutProxy(t, good.Addr)
	second := startRegistry(t, registryOpts{})
	secondProxy := startCutProxy(t, second.Addr)

	img, _ := testImage(t, origin.Addr, "forgebox/mirror")
	push(t, img, good.Addr+"/forgebox/mirror:test")
	push(t, img, second.Addr+"/forgebox/mirror:test")
	down := freeAddr(t) // nothing listens there

	ref := originProxy.Addr + "/forgebox/mirror:test"
	mirrors := []string{"http://" + down, "http://" + emptyProxy.Addr, "http://" + goodProxy.Addr, "http://" + secondProxy.Addr}
	f := newFetcher(t, t.TempDir())
	for _, m := range mirrors {
		mm, err := ParseMirror(originProxy.Addr + "=" + m)
		if err != nil {
			t.Fatal(err)
		}
		f.Mirrors = append(f.Mirrors, mm)
	}
	res, err := f.Fetch(testContext(t), ref)
	if err != nil {
		t.Fatal(err)
	}
	if want := "mirror http://" + goodProxy.Addr; res.Source != want {
		t.Fatalf("served by %q, want the first mirror that has the image (%q)", res.Source, want)
	}
	if emptyProxy.conns.Load() == 0 {
		t.Fatal("the mirror that lacks the image was never asked: the order was not honoured")
	}
	if n := secondProxy.sent.Load(); n != 0 {
		t.Fatalf("the mirror after the serving one sent %d bytes", n)
	}
	if n := originProxy.sent.Load(); n != 0 {
		t.Fatalf("the origin sent %d bytes while a mirror served", n)
	}
	size := imageBytes(t, img)
	if got := goodProxy.sent.Load(); got < size {
		t.Fatalf("the serving mirror sent %d bytes, less than the image's %d", got, size)
	}
}

// Through an HTTPS proxy (CONNECT) to a registry whose name only the proxy can resolve: the
// download works, it went through the proxy, and ProxyFor names the proxy for that registry.
func TestPullThroughConnectProxy(t *testing.T) {
	const host = "registry.forgebox.test"
	cert, key, pool := selfSigned(t, host)
	reg := startRegistry(t, registryOpts{certFile: cert, keyFile: key})
	plain := startRegistry(t, registryOpts{})
	img, _ := testImage(t, plain.Addr, "forgebox/proxied")
	// Push over TLS through a direct route: the test's own client trusts the certificate.
	pushTLS(t, img, reg.Addr, pool, host+"/forgebox/proxied:test")

	proxy := startConnectProxy(t, map[string]string{host + ":443": reg.Addr})
	cfg := &httpproxy.Config{HTTPSProxy: "http://" + proxy.Addr, NoProxy: "127.0.0.1"}
	f := newFetcher(t, t.TempDir())
	f.Transport = newTransport(cfg, tlsTo(pool))
	if _, err := f.Fetch(testContext(t), host+"/forgebox/proxied:test"); err != nil {
		t.Fatalf("fetch through the CONNECT proxy: %v", err)
	}
	if proxy.tunnels.Load() == 0 {
		t.Fatal("no tunnel went through the proxy")
	}
	got, err := proxyFor(cfg, host)
	if err != nil || got != "http://"+proxy.Addr {
		t.Fatalf("proxyFor(%s) = %q, %v; want the proxy", host, got, err)
	}
	if got, _ := proxyFor(cfg, "127.0.0.1:5000"); got != "" {
		t.Fatalf("NO_PROXY host goes through %q, want direct", got)
	}
}

// A bundle saved from the registry loads into the engine under the image's name; a bundle for
// the other architecture carries that architecture's image; a damaged bundle loads nothing.
func TestBundleSaveLoadAndRefuseDamage(t *testing.T) {
	eng := testenv.Engine(t)
	reg := startRegistry(t, registryOpts{})
	amdImg, _ := testImage(t, reg.Addr, "forgebox/bundle-amd64-only")
	armImg := withArch(t, amdImg, "arm64")
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amdImg, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: armImg, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	tagSuffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	ref := reg.Addr + "/forgebox/bundle:" + tagSuffix
	pushIndex(t, idx, ref)
	t.Cleanup(func() { exec.Command("docker", "rmi", ref).Run() })

	dir := t.TempDir()
	// Saved on "another machine": its own cache.
	saver := newFetcher(t, filepath.Join(dir, "saver"))
	file := filepath.Join(dir, "stack-amd64.bundle")
	bm, err := saver.SaveBundle(testContext(t), []string{ref}, file)
	if err != nil {
		t.Fatal(err)
	}
	if len(bm.Images) != 1 || bm.Platform != "linux/amd64" {
		t.Fatalf("bundle manifest %+v", bm)
	}

	armSaver := newFetcher(t, filepath.Join(dir, "saver"))
	armSaver.Platform = v1.Platform{OS: "linux", Architecture: "arm64"}
	armFile := filepath.Join(dir, "stack-arm64.bundle")
	if _, err := armSaver.SaveBundle(testContext(t), []string{ref}, armFile); err != nil {
		t.Fatal(err)
	}
	armCache, _ := OpenCache(filepath.Join(dir, "arm-check"))
	abm, err := verifyBundle(armCache, armFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	armDigest, _ := armImg.Digest()
	if abm.Platform != "linux/arm64" || abm.Images[0].Manifest != armDigest.String() {
		t.Fatalf("arm64 bundle holds %s for %s, want the arm64 image %s", abm.Images[0].Manifest, abm.Platform, armDigest)
	}

	// Damage one byte of the largest blob: refused, and nothing reaches the engine.
	damaged := filepath.Join(dir, "damaged.bundle")
	flipByteInLargestMember(t, file, damaged)
	loadCache, _ := OpenCache(filepath.Join(dir, "nas"))
	if _, err := LoadBundle(testContext(t), loadCache, eng, damaged, nil); err == nil || !strings.Contains(err.Error(), "nothing was loaded") {
		t.Fatalf("a damaged bundle: err = %v, want a refusal saying nothing was loaded", err)
	}
	if id, err := eng.ImageID(testContext(t), ref); err != nil || id != "" {
		t.Fatalf("after the refused load the engine has %s (%v); want nothing", id, err)
	}
	// A cut-short bundle too.
	short := filepath.Join(dir, "short.bundle")
	b, _ := os.ReadFile(file)
	os.WriteFile(short, b[:len(b)/2], 0o644)
	if _, err := LoadBundle(testContext(t), loadCache, eng, short, nil); err == nil {
		t.Fatal("a bundle cut in half loaded")
	}

	if _, err := LoadBundle(testContext(t), loadCache, eng, file, nil); err != nil {
		t.Fatal(err)
	}
	id, err := eng.ImageID(testContext(t), ref)
	if err != nil || id == "" {
		t.Fatalf("after the load the engine lacks %s (%v)", ref, err)
	}
	cfgDigest, _ := amdImg.ConfigName()
	if id != cfgDigest.String() {
		t.Fatalf("the engine's image %s is not the bundle's (config %s)", id, cfgDigest)
	}
}

func withArch(t testing.TB, img v1.Image, arch string) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Architecture = arch
	out, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// flipByteInLargestMember copies a bundle, changing one byte in the middle of its largest blob.
func flipByteInLargestMember(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	tr := tar.NewReader(in)
	var largest string
	var size int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Size > size {
			largest, size = h.Name, h.Size
		}
	}
	in.Seek(0, io.SeekStart)
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tr, tw := tar.NewReader(in), tar.NewWriter(out)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		b, _ := io.ReadAll(tr)
		if h.Name == largest {
			b[len(b)/2] ^= 0xff
		}
		tw.WriteHeader(h)
		tw.Write(b)
	}
	tw.Close()
}

// A cache entry is only ever a verified blob: a registry that sends wrong bytes gets no blob in.
func TestCorruptBlobFromRegistryNeverEntersTheCache(t *testing.T) {
	c, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1<<20)
	rand.Read(data)
	h, _, _ := v1.SHA256(strings.NewReader("something else"))
	p := c.partial(v1.Descriptor{Digest: h, Size: int64(len(data))})
	f, hs, off, err := p.resume()
	if err != nil || off != 0 {
		t.Fatal(err, off)
	}
	f.Write(data)
	hs.Write(data)
	if err := p.finish(f, hs, int64(len(data))); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("finish of wrong bytes: %v", err)
	}
	if c.Has(h) {
		t.Fatal("a blob whose digest does not match entered the cache")
	}
}

func TestParseMirror(t *testing.T) {
	for _, tc := range []struct {
		in, reg, url, err string
	}{
		{in: "https://mirror.example", reg: DockerHub, url: "https://mirror.example"},
		{in: "docker.io=https://m.example", reg: DockerHub, url: "https://m.example"},
		{in: "registry.gitlab.com=http://10.0.0.5:5000", reg: "registry.gitlab.com", url: "http://10.0.0.5:5000"},
		{in: "mirror.example", err: "not an http"},
		{in: "ftp://mirror.example", err: "not an http"},
		{in: "https://mirror.example/v2/library", err: "has a path"},
		{in: "=https://m.example", err: "not a registry host"},
	} {
		m, err := ParseMirror(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseMirror(%q) = %v, want error with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || m.Registry != tc.reg || m.URL.String() != tc.url {
			t.Errorf("ParseMirror(%q) = %+v, %v", tc.in, m, err)
		}
	}
}

// Docker Hub mirrors apply to Docker Hub images only, in order, before the origin.
func TestSourcesOrder(t *testing.T) {
	f := &Fetcher{}
	for _, s := range []string{"https://a.example", "registry.gitlab.com=https://g.example", "https://b.example"} {
		m, err := ParseMirror(s)
		if err != nil {
			t.Fatal(err)
		}
		f.Mirrors = append(f.Mirrors, m)
	}
	for _, tc := range []struct{ ref, want string }{
		{"postgres:17-alpine", "a.example/library/postgres b.example/library/postgres index.docker.io/library/postgres"},
		{"registry.gitlab.com/gitlab-org/gitlab-runner/gitlab-runner-helper:x86_64-v18.5.0",
			"g.example/gitlab-org/gitlab-runner/gitlab-runner-helper registry.gitlab.com/gitlab-org/gitlab-runner/gitlab-runner-helper"},
	} {
		r, err := nameParse(tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		repos, _, err := f.sources(r)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range repos {
			got = append(got, r.Name())
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%s: sources %v, want %s", tc.ref, got, tc.want)
		}
	}
}

// The space check refuses a download that cannot fit, naming the numbers and what to do.
func TestSpaceCheck(t *testing.T) {
	f := newFetcher(t, t.TempDir())
	free, err := freeBytes(f.Cache.Dir())
	if err != nil {
		t.Fatal(err)
	}
	err = f.checkSpace(free + 1<<30)
	if err == nil || !strings.Contains(err.Error(), "free space there") {
		t.Fatalf("a download bigger than the disk: %v", err)
	}
	if err := f.checkSpace(1); err != nil {
		t.Fatalf("a tiny download: %v", err)
	}
}

var _ Loader = (*engine.Client)(nil)

// pushTLS pushes img as ref (whose host is a name only the test knows) to the TLS registry at
// addr, dialling it directly.
func pushTLS(t testing.TB, img v1.Image, addr string, pool *x509.CertPool, ref string) {
	t.Helper()
	tr := &http.Transport{
		TLSClientConfig: tlsTo(pool),
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithTransport(tr)); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

func nameParse(ref string) (name.Reference, error) { return name.ParseReference(ref) }
