// Package download fetches container images from registries (and their mirrors) into a
// content-addressed cache under forgebox's data dir, and loads them into the Docker Engine.
//
// It exists for the NAS owner's worst link: the engine's own pull starts a broken layer over once
// its few in-pull retries are spent, and forgets everything when the package is stopped or the NAS
// reboots. Here every blob resumes with an HTTP Range request from its last byte on disk, across
// cut connections, stalls, a killed forgebox or a reboot; every blob is checked against its
// digest before it enters the cache; mirrors are asked in order, then the origin; proxies come
// from the environment. Offline bundles (bundle.go) are the same cache written to one file.
package download

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/docker/go-units"
	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// DockerHub is the registry a mirror serves when its entry names none.
const DockerHub = config.DockerHub

// Mirror is one registry mirror: Registry is the registry it stands for (index.docker.io,
// registry.gitlab.com, ...), URL where it answers.
type Mirror struct {
	Registry string
	URL      *url.URL
}

func (m Mirror) String() string {
	if m.Registry == DockerHub {
		return m.URL.String()
	}
	return m.Registry + "=" + m.URL.String()
}

// ParseMirror reads a stack.registry_mirrors entry (config.ParseMirror has the syntax).
func ParseMirror(s string) (Mirror, error) {
	reg, u, err := config.ParseMirror(s)
	if err != nil {
		return Mirror{}, err
	}
	return Mirror{Registry: reg, URL: u}, nil
}

// Retry bounds how long a blob is tried: Attempts failures in a row without a new byte end it
// (any progress starts the count again); the pause doubles from Backoff up to MaxBackoff.
type Retry struct {
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
}

// DefaultRetry suits a home link that drops: eight tries without progress, up to 30 s apart.
var DefaultRetry = Retry{Attempts: 8, Backoff: time.Second, MaxBackoff: 30 * time.Second}

// Progress is one report of a download: the blob that moved and the image as a whole.
type Progress struct {
	Image   string
	Source  string // the mirror or registry in use
	Blob    string // digest, when the report is about one blob
	Status  string
	Current int64 // bytes of the image on disk (cached or downloaded)
	Total   int64 // bytes of the image
	Rate    float64
	Left    time.Duration // estimate; 0 when unknown
}

// Fetcher downloads images into a Cache.
type Fetcher struct {
	Cache    *Cache
	Mirrors  []Mirror
	Platform v1.Platform
	Retry    Retry
	// Transport is the HTTP transport under the registry auth (proxy and TLS settings live
	// there); nil means NewTransport(nil).
	Transport http.RoundTripper
	Keychain  authn.Keychain // nil means the Docker config's credentials, else anonymous
	Stall     time.Duration  // a connection with no byte for this long is dropped and resumed
	Progress  func(Progress)
	sleep     func(context.Context, time.Duration) error // tests
}

func (f *Fetcher) stallTimeout() time.Duration {
	if f.Stall > 0 {
		return f.Stall
	}
	return 30 * time.Second
}

func (f *Fetcher) transport() http.RoundTripper {
	if f.Transport != nil {
		return f.Transport
	}
	return NewTransport(nil)
}

func (f *Fetcher) keychain() authn.Keychain {
	if f.Keychain != nil {
		return f.Keychain
	}
	return authn.DefaultKeychain
}

// source is one place an image can come from: a mirror or the origin registry.
type source struct {
	label string
	repo  name.Repository
	rt    http.RoundTripper // authenticated for repo
}

func (s source) blobURL(h v1.Hash) string {
	return fmt.Sprintf("%s://%s/v2/%s/blobs/%s", s.repo.Registry.Scheme(), s.repo.RegistryStr(), s.repo.RepositoryStr(), h)
}

// sources lists where ref may come from, in the order they are asked: the mirrors of its
// registry as configured, then the registry itself.
func (f *Fetcher) sources(ref name.Reference) ([]name.Repository, []string, error) {
	repo := ref.Context()
	var repos []name.Repository
	var labels []string
	for _, m := range f.Mirrors {
		if m.Registry != repo.RegistryStr() {
			continue
		}
		var opts []name.Option
		if m.URL.Scheme == "http" {
			opts = append(opts, name.Insecure)
		}
		r, err := name.NewRepository(m.URL.Host+"/"+repo.RepositoryStr(), opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("mirror %s: %w", m, err)
		}
		repos = append(repos, r)
		labels = append(labels, "mirror "+m.URL.String())
	}
	repos = append(repos, repo)
	labels = append(labels, "registry "+repo.RegistryStr())
	return repos, labels, nil
}

// Fetched says what a Fetch brought into the cache.
type Fetched struct {
	Ref        string
	Manifest   v1.Hash
	Size       int64 // bytes of the image's blobs
	Downloaded int64 // bytes that came over the network in this call
	Source     string
}

// Fetch brings ref for f.Platform into the cache, resuming what an earlier call left. A mirror
// that fails (down, no such image, a blob it cannot serve) is passed over for the next one and
// finally for the origin registry; the blobs are content-addressed, so they may come from
// different places.
func (f *Fetcher) Fetch(ctx context.Context, ref string) (Fetched, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return Fetched{}, fmt.Errorf("image %q: %w", ref, err)
	}
	repos, labels, err := f.sources(r)
	if err != nil {
		return Fetched{}, err
	}
	// Sources are asked in order and only as far as needed: the first that serves the manifest
	// serves the blobs, and the ones after it are asked only for a blob it cannot serve.
	var (
		img      v1.Image
		manifest []byte
		desc     v1.Descriptor
		tried    []string
		first    = -1
	)
	for i, repo := range repos {
		s, err := f.source(ctx, repo, labels[i])
		if err == nil {
			img, manifest, desc, err = f.resolveRetrying(ctx, s, r)
		}
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", labels[i], err))
			continue
		}
		first = i
		break
	}
	if img == nil {
		return Fetched{}, fmt.Errorf("image %s: no mirror or registry could serve it for %s (%s)", ref, platformString(f.Platform), strings.Join(tried, "; "))
	}
	srcs := &sources{f: f, repos: repos[first:], labels: labels[first:]}
	blobs, err := imageBlobs(img)
	if err != nil {
		return Fetched{}, fmt.Errorf("image %s: %w", ref, err)
	}
	res := Fetched{Ref: ref, Manifest: desc.Digest, Source: labels[first]}
	var missing int64
	for _, b := range blobs {
		res.Size += b.Size
		if !f.Cache.Has(b.Digest) {
			missing += b.Size
		}
	}
	if err := f.checkSpace(missing); err != nil {
		return res, fmt.Errorf("image %s: %w", ref, err)
	}
	track := newTracker(ref, res.Size, f.Progress)
	for _, b := range blobs {
		if f.Cache.Has(b.Digest) {
			track.add(b.Digest, 0, b.Size)
			continue
		}
		n, err := f.fetchBlob(ctx, srcs, b, track)
		res.Downloaded += n
		if err != nil {
			return res, fmt.Errorf("image %s: %w", ref, err)
		}
	}
	if err := f.Cache.putSmall(desc.Digest, manifest); err != nil {
		return res, fmt.Errorf("image %s: store its manifest: %w", ref, err)
	}
	pf := f.Platform
	desc.Platform = &pf
	if err := f.Cache.record(r.Name(), desc); err != nil {
		return res, fmt.Errorf("image %s: record it in the cache: %w", ref, err)
	}
	track.report("done", "")
	return res, nil
}

// source makes the authenticated transport for one source (this asks the registry how it
// authenticates).
func (f *Fetcher) source(ctx context.Context, repo name.Repository, label string) (source, error) {
	rt, err := transport.NewWithContext(ctx, repo.Registry, f.auth(repo), f.transport(), []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return source{}, err
	}
	return source{label: label, repo: repo, rt: rt}, nil
}

// sources hands out the sources of one image in order, connecting to each only when it is
// first needed.
type sources struct {
	f      *Fetcher
	repos  []name.Repository
	labels []string
	made   []source
	errs   []error
}

// at returns the i-th source, or false when there are no more.
func (s *sources) at(ctx context.Context, i int) (source, error, bool) {
	if i >= len(s.repos) {
		return source{}, nil, false
	}
	for len(s.made) <= i {
		src, err := s.f.source(ctx, s.repos[len(s.made)], s.labels[len(s.made)])
		s.made = append(s.made, src)
		s.errs = append(s.errs, err)
	}
	return s.made[i], s.errs[i], true
}

func (f *Fetcher) auth(repo name.Repository) authn.Authenticator {
	a, err := f.keychain().Resolve(repo.Registry)
	if err != nil {
		return authn.Anonymous
	}
	return a
}

// resolveRetrying is resolve, tried again after a transient failure (a cut connection, a 5xx)
// within f.Retry; a registry's "no such image" or "not allowed" ends it at once.
func (f *Fetcher) resolveRetrying(ctx context.Context, s source, ref name.Reference) (v1.Image, []byte, v1.Descriptor, error) {
	retry := f.retry()
	wait := retry.Backoff
	for attempt := 1; ; attempt++ {
		img, raw, desc, err := f.resolve(ctx, s, ref)
		if err == nil || permanentRegistryError(err) || attempt >= retry.Attempts || ctx.Err() != nil {
			return img, raw, desc, err
		}
		if perr := f.pause(ctx, wait); perr != nil {
			return nil, nil, v1.Descriptor{}, err
		}
		if wait *= 2; retry.MaxBackoff > 0 && wait > retry.MaxBackoff {
			wait = retry.MaxBackoff
		}
	}
}

func (f *Fetcher) retry() Retry {
	if f.Retry.Attempts < 1 {
		return DefaultRetry
	}
	return f.Retry
}

// permanentRegistryError is an answer that asking the same registry again will not change.
func permanentRegistryError(err error) bool {
	var perr errPermanent
	if errors.As(err, &perr) {
		return true
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusNotFound, http.StatusUnauthorized, http.StatusForbidden, http.StatusBadRequest:
			return true
		}
	}
	return false
}

// resolve reads ref's manifest (picking f.Platform from an index) from one source.
func (f *Fetcher) resolve(ctx context.Context, s source, ref name.Reference) (v1.Image, []byte, v1.Descriptor, error) {
	var at name.Reference
	var err error
	switch r := ref.(type) {
	case name.Digest:
		at, err = name.NewDigest(s.repo.Name()+"@"+r.DigestStr(), nameOpts(s.repo)...)
	default:
		at, err = name.NewTag(s.repo.Name()+":"+ref.Identifier(), nameOpts(s.repo)...)
	}
	if err != nil {
		return nil, nil, v1.Descriptor{}, err
	}
	pf := f.Platform
	img, err := remote.Image(at, remote.WithContext(ctx), remote.WithTransport(s.rt), remote.WithPlatform(pf))
	if err != nil {
		return nil, nil, v1.Descriptor{}, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return nil, nil, v1.Descriptor{}, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, nil, v1.Descriptor{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, nil, v1.Descriptor{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, nil, v1.Descriptor{}, err
	}
	if cf.Architecture != "" && cf.Architecture != pf.Architecture {
		return nil, nil, v1.Descriptor{}, errPermanent{fmt.Errorf("it is built for %s/%s only, not %s", cf.OS, cf.Architecture, platformString(pf))}
	}
	return img, raw, v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: d}, nil
}

func nameOpts(repo name.Repository) []name.Option {
	if repo.Registry.Scheme() == "http" {
		return []name.Option{name.Insecure}
	}
	return nil
}

// imageBlobs lists the config and the layers of img as descriptors.
func imageBlobs(img v1.Image) ([]v1.Descriptor, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	out := []v1.Descriptor{m.Config}
	return append(out, m.Layers...), nil
}

// fetchBlob downloads one blob, trying each source in turn; on a source, failures that make no
// progress are counted and bounded, with a growing pause between them.
func (f *Fetcher) fetchBlob(ctx context.Context, srcs *sources, b v1.Descriptor, track *tracker) (int64, error) {
	retry := f.retry()
	p := f.Cache.partial(b)
	start := track.downloaded()
	var errs []string
	for i := 0; ; i++ {
		s, err, ok := srcs.at(ctx, i)
		if !ok {
			break
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", srcs.labels[i], err))
			continue
		}
		track.source = s.label
		failures, wait := 0, retry.Backoff
		for {
			before := track.downloaded()
			err := f.fetchBlobOnce(ctx, s, p, track)
			if err == nil {
				return track.downloaded() - start, nil
			}
			if ctx.Err() != nil {
				return track.downloaded() - start, fmt.Errorf("blob %s: %w (what arrived is kept; run again to resume)", b.Digest, ctx.Err())
			}
			var perm errPermanent
			if errors.As(err, &perm) {
				errs = append(errs, fmt.Sprintf("%s: %v", s.label, err))
				break
			}
			if track.downloaded() > before {
				failures, wait = 0, retry.Backoff // it moved: a cut connection, not a dead source
			}
			failures++
			if failures >= retry.Attempts {
				errs = append(errs, fmt.Sprintf("%s: %v (%d tries without progress)", s.label, err, failures))
				break
			}
			track.report(fmt.Sprintf("connection lost (%v); resuming in %s", err, wait.Round(time.Millisecond)), b.Digest.String())
			if err := f.pause(ctx, wait); err != nil {
				return track.downloaded() - start, fmt.Errorf("blob %s: %w (what arrived is kept; run again to resume)", b.Digest, err)
			}
			if wait *= 2; retry.MaxBackoff > 0 && wait > retry.MaxBackoff {
				wait = retry.MaxBackoff
			}
		}
	}
	return track.downloaded() - start, fmt.Errorf("blob %s could not be downloaded (%s); what arrived is kept, run again to resume", b.Digest, strings.Join(errs, "; "))
}

func (f *Fetcher) pause(ctx context.Context, d time.Duration) error {
	if f.sleep != nil {
		return f.sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkSpace refuses a download that cannot fit: the blobs still missing, plus a margin, must
// fit where the cache is.
func (f *Fetcher) checkSpace(missing int64) error {
	if missing == 0 {
		return nil
	}
	free, err := freeBytes(f.Cache.Dir())
	if err != nil {
		return fmt.Errorf("check free space in %s: %w", f.Cache.Dir(), err)
	}
	const margin = 64 << 20
	if free < missing+margin {
		return fmt.Errorf("%s has %s free and the download needs %s more: free space there (or point stack.data_dir at a bigger volume), then run again",
			f.Cache.Dir(), units.BytesSize(float64(free)), units.BytesSize(float64(missing+margin)))
	}
	return nil
}

// Loader is the part of the Docker Engine a load needs.
type Loader interface {
	LoadImage(ctx context.Context, archive io.Reader) ([]string, error)
}

// Load loads the cached image recorded for ref (for f.Platform) into the engine, tagged under
// ref's own name, so the rest of forgebox finds it as if the engine had pulled it.
func (f *Fetcher) Load(ctx context.Context, eng Loader, ref string) error {
	return loadFromCache(ctx, f.Cache, eng, ref, f.Platform)
}

func loadFromCache(ctx context.Context, c *Cache, eng Loader, ref string, pf v1.Platform) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image %s: only a tagged image can be loaded under its name: %w", ref, err)
	}
	desc, ok, err := c.lookup(tag.Name(), pf)
	if err != nil {
		return fmt.Errorf("image %s: read the cache: %w", ref, err)
	}
	if !ok {
		return fmt.Errorf("image %s for %s is not in the cache", ref, platformString(pf))
	}
	img, err := c.Image(desc.Digest)
	if err != nil {
		return fmt.Errorf("image %s: open it in the cache: %w", ref, err)
	}
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pw.CloseWithError(tarball.Write(tag, img, pw))
	}()
	_, err = eng.LoadImage(ctx, pr)
	pr.CloseWithError(errors.New("load ended"))
	wg.Wait()
	if err != nil {
		return fmt.Errorf("image %s: %w", ref, err)
	}
	return nil
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
