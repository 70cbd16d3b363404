package download

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"golang.org/x/sys/unix"
)

// Annotations on the cache's index.json entries: the reference an image was fetched as (the
// OCI annotation `docker load` and other tools know), and its platform.
const (
	annotationRef = "org.opencontainers.image.ref.name"
)

// Cache is a content-addressed image store on disk: an OCI image layout (blobs/sha256/<hex>,
// index.json) plus partial/ for downloads in progress. Only verified blobs ever enter blobs/.
type Cache struct {
	dir string
	mu  sync.Mutex // index.json
}

// OpenCache opens (creating it when needed) the cache in dir.
func OpenCache(dir string) (*Cache, error) {
	if _, err := os.Stat(filepath.Join(dir, "index.json")); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create the image cache: %w", err)
		}
		if _, err := layout.Write(dir, empty.Index); err != nil {
			return nil, fmt.Errorf("create the image cache: %w", err)
		}
	}
	return &Cache{dir: dir}, nil
}

// Dir is where the cache lives.
func (c *Cache) Dir() string { return c.dir }

func (c *Cache) blobPath(h v1.Hash) string {
	return filepath.Join(c.dir, "blobs", h.Algorithm, h.Hex)
}

// Has reports whether a verified blob is in the cache.
func (c *Cache) Has(h v1.Hash) bool {
	_, err := os.Stat(c.blobPath(h))
	return err == nil
}

// putSmall writes a small blob (a manifest, a config) whose bytes are already in memory and
// verified by the caller.
func (c *Cache) putSmall(h v1.Hash, b []byte) error {
	p := c.blobPath(h)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// record names an image manifest in index.json under ref (one entry per ref and platform; a
// newer fetch of the same ref replaces the older entry).
func (c *Cache) record(ref string, desc v1.Descriptor) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := layout.Path(c.dir)
	if desc.Annotations == nil {
		desc.Annotations = map[string]string{}
	}
	ref = canonical(ref)
	desc.Annotations[annotationRef] = ref
	same := func(d v1.Descriptor) bool {
		return d.Annotations[annotationRef] == ref && samePlatform(d.Platform, desc.Platform)
	}
	if err := p.RemoveDescriptors(match.Matcher(same)); err != nil {
		return err
	}
	return p.AppendDescriptor(desc)
}

// lookup finds the manifest recorded for ref and platform.
func (c *Cache) lookup(ref string, pf v1.Platform) (v1.Descriptor, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	idx, err := layout.Path(c.dir).ImageIndex()
	if err != nil {
		return v1.Descriptor{}, false, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return v1.Descriptor{}, false, err
	}
	ref = canonical(ref)
	for _, d := range m.Manifests {
		if d.Annotations[annotationRef] == ref && samePlatform(d.Platform, &pf) {
			return d, true, nil
		}
	}
	return v1.Descriptor{}, false, nil
}

// manifestBlobs lists the config and layers an image manifest in the cache names, read from the
// manifest blob itself (it need not be in index.json yet).
func (c *Cache) manifestBlobs(h v1.Hash) ([]v1.Descriptor, error) {
	f, err := os.Open(c.blobPath(h))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := v1.ParseManifest(f)
	if err != nil {
		return nil, err
	}
	return append([]v1.Descriptor{m.Config}, m.Layers...), nil
}

// Image opens a cached image by the manifest digest.
func (c *Cache) Image(h v1.Hash) (v1.Image, error) {
	return layout.Path(c.dir).Image(h)
}

// canonical is ref fully qualified (index.docker.io/library/postgres:17), so "postgres:17" and
// "docker.io/library/postgres:17" name one cache entry.
func canonical(ref string) string {
	r, err := name.ParseReference(ref)
	if err != nil {
		return ref
	}
	return r.Name()
}

func samePlatform(a, b *v1.Platform) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.OS == b.OS && a.Architecture == b.Architecture && a.Variant == b.Variant
}

// freeBytes is the space left for an unprivileged writer on the file system holding dir.
func freeBytes(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
