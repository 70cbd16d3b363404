package download

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/forgebox/forgebox/service/internal/msg"
)

// BundleFormat is the version of the bundle layout; a bundle of a newer format is refused.
const BundleFormat = 1

const bundleManifestName = "forgebox-bundle.json"

// BundleManifest is the first member of a bundle: what it holds, so a load can check every
// blob against its digest before anything reaches the engine.
type BundleManifest struct {
	Format   int           `json:"format"`
	Created  time.Time     `json:"created"`
	Platform string        `json:"platform"` // os/arch[/variant]
	Images   []BundleImage `json:"images"`
	Blobs    []BundleBlob  `json:"blobs"`
}

// BundleImage is one image of a bundle, by the reference it is loaded under.
type BundleImage struct {
	Ref      string `json:"ref"`
	Manifest string `json:"manifest"` // sha256:...
	Size     int64  `json:"size"`
}

// BundleBlob is one blob of a bundle (manifests, configs and layers alike).
type BundleBlob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// SaveBundle fetches refs for f.Platform (resuming, through the mirrors, into the cache) and
// writes them to file as one archive: the bundle manifest, then an OCI image layout. The file
// appears only when it is complete.
func (f *Fetcher) SaveBundle(ctx context.Context, refs []string, file string) (BundleManifest, error) {
	bm := BundleManifest{Format: BundleFormat, Created: time.Now().UTC(), Platform: platformString(f.Platform)}
	type entry struct {
		desc v1.Descriptor
		ref  string
	}
	var entries []entry
	seen := map[v1.Hash]int64{}
	saved := map[string]bool{}
	for _, ref := range refs {
		if ref == "" || saved[ref] {
			continue
		}
		saved[ref] = true
		res, err := f.Fetch(ctx, ref)
		if err != nil {
			return bm, err
		}
		img, err := f.Cache.Image(res.Manifest)
		if err != nil {
			return bm, fmt.Errorf("image %s: %w", ref, err)
		}
		raw, err := img.RawManifest()
		if err != nil {
			return bm, err
		}
		mt, _ := img.MediaType()
		pf := f.Platform
		entries = append(entries, entry{ref: ref, desc: v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: res.Manifest, Platform: &pf,
			Annotations: map[string]string{annotationRef: canonical(res.Ref)}}})
		bm.Images = append(bm.Images, BundleImage{Ref: ref, Manifest: res.Manifest.String(), Size: res.Size})
		seen[res.Manifest] = int64(len(raw))
		blobs, err := imageBlobs(img)
		if err != nil {
			return bm, err
		}
		for _, b := range blobs {
			seen[b.Digest] = b.Size
		}
	}
	for h, n := range seen {
		bm.Blobs = append(bm.Blobs, BundleBlob{Digest: h.String(), Size: n})
	}
	sort.Slice(bm.Blobs, func(i, j int) bool { return bm.Blobs[i].Digest < bm.Blobs[j].Digest })

	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return bm, err
	}
	tmp := file + ".partial"
	out, err := os.Create(tmp)
	if err != nil {
		return bm, fmt.Errorf("create %s: %w", tmp, err)
	}
	defer os.Remove(tmp)
	defer out.Close()
	tw := tar.NewWriter(out)
	put := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: bm.Created}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	mb, _ := json.MarshalIndent(bm, "", "  ")
	if err := put(bundleManifestName, mb); err != nil {
		return bm, err
	}
	if err := put("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return bm, err
	}
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json"}
	for _, e := range entries {
		idx.Manifests = append(idx.Manifests, e.desc)
	}
	ib, _ := json.Marshal(idx)
	if err := put("index.json", ib); err != nil {
		return bm, err
	}
	for _, b := range bm.Blobs {
		h, _ := v1.NewHash(b.Digest)
		if err := copyBlobInto(tw, f.Cache.blobPath(h), "blobs/sha256/"+h.Hex, bm.Created); err != nil {
			return bm, fmt.Errorf("write blob %s: %w", b.Digest, err)
		}
	}
	if err := tw.Close(); err != nil {
		return bm, err
	}
	if err := out.Sync(); err != nil {
		return bm, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := out.Close(); err != nil {
		return bm, err
	}
	return bm, os.Rename(tmp, file)
}

func copyBlobInto(tw *tar.Writer, src, name string, mtime time.Time) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: fi.Size(), ModTime: mtime}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// LoadBundle checks a bundle blob by blob against its manifest, puts the verified blobs into the
// cache, and only when every blob of every image is there and sound loads the images into the
// engine under their references. A damaged bundle loads nothing.
func LoadBundle(ctx context.Context, c *Cache, eng Loader, file string, progress func(msg.Msg)) (BundleManifest, error) {
	if progress == nil {
		progress = func(msg.Msg) {}
	}
	bm, err := verifyBundle(c, file, progress)
	if err != nil {
		return bm, err
	}
	pf, err := parsePlatform(bm.Platform)
	if err != nil {
		return bm, err
	}
	for _, im := range bm.Images {
		progress(msg.New("bundle.loading", "image", im.Ref))
		if err := loadFromCache(ctx, c, eng, im.Ref, pf); err != nil {
			return bm, err
		}
	}
	return bm, nil
}

// verifyBundle reads the whole bundle, verifies each blob and records its images in the cache.
func verifyBundle(c *Cache, file string, progress func(msg.Msg)) (BundleManifest, error) {
	if progress == nil {
		progress = func(msg.Msg) {}
	}
	var bm BundleManifest
	fh, err := os.Open(file)
	if err != nil {
		return bm, fmt.Errorf("open bundle: %w", err)
	}
	defer fh.Close()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("bundle %s is damaged or not a forgebox bundle: %s; nothing was loaded: copy it again (or save a new one)", filepath.Base(file), fmt.Sprintf(format, args...))
	}
	tr := tar.NewReader(fh)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != bundleManifestName {
		return bm, bad("it does not start with %s", bundleManifestName)
	}
	if err := json.NewDecoder(io.LimitReader(tr, 16<<20)).Decode(&bm); err != nil {
		return bm, bad("its manifest does not parse (%v)", err)
	}
	if bm.Format != BundleFormat {
		return bm, fmt.Errorf("bundle %s has format %d; this forgebox reads format %d: use a forgebox of the version that made it", filepath.Base(file), bm.Format, BundleFormat)
	}
	want := map[string]int64{}
	for _, b := range bm.Blobs {
		want[b.Digest] = b.Size
	}
	got := map[string]bool{}
	var index []byte
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return bm, bad("it is cut short (%v)", err)
		}
		clean := path.Clean(hdr.Name)
		switch {
		case clean == "index.json":
			if index, err = io.ReadAll(io.LimitReader(tr, 16<<20)); err != nil {
				return bm, bad("index.json: %v", err)
			}
		case strings.HasPrefix(clean, "blobs/sha256/"):
			digest := "sha256:" + strings.TrimPrefix(clean, "blobs/sha256/")
			size, listed := want[digest]
			if !listed {
				return bm, bad("blob %s is not in its manifest", digest)
			}
			if hdr.Size != size {
				return bm, bad("blob %s is %d bytes, its manifest says %d", digest, hdr.Size, size)
			}
			if err := storeVerified(c, digest, tr); err != nil {
				return bm, bad("%v", err)
			}
			got[digest] = true
			progress(msg.New("bundle.verified", "digest", digest, "size", size))
		}
	}
	for d := range want {
		if !got[d] {
			return bm, bad("blob %s is missing", d)
		}
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(index, &idx); err != nil {
		return bm, bad("index.json does not parse (%v)", err)
	}
	for _, d := range idx.Manifests {
		if !got[d.Digest.String()] {
			return bm, bad("image %s has no manifest blob", d.Annotations[annotationRef])
		}
		blobs, err := c.manifestBlobs(d.Digest)
		if err != nil {
			return bm, bad("image %s: %v", d.Annotations[annotationRef], err)
		}
		for _, b := range blobs {
			if !got[b.Digest.String()] {
				return bm, bad("image %s needs blob %s, which the bundle lacks", d.Annotations[annotationRef], b.Digest)
			}
		}
		if err := c.record(d.Annotations[annotationRef], d); err != nil {
			return bm, err
		}
	}
	return bm, nil
}

// storeVerified copies one blob into the cache through a temporary file, and keeps it only if
// its bytes match the digest.
func storeVerified(c *Cache, digest string, r io.Reader) error {
	h, err := v1.NewHash(digest)
	if err != nil {
		return err
	}
	if c.Has(h) {
		// Already cached and verified when it went in; the bundle's copy must still match.
		sum := sha256.New()
		if _, err := io.Copy(sum, r); err != nil {
			return err
		}
		if hex.EncodeToString(sum.Sum(nil)) != h.Hex {
			return fmt.Errorf("blob %s does not match its digest", digest)
		}
		return nil
	}
	dst := c.blobPath(h)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".load-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	sum := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, sum), r); err != nil {
		return err
	}
	if hex.EncodeToString(sum.Sum(nil)) != h.Hex {
		return fmt.Errorf("blob %s does not match its digest", digest)
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

func parsePlatform(s string) (v1.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return v1.Platform{}, fmt.Errorf("platform %q is not os/arch", s)
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p, nil
}
