package download

import (
	"github.com/forgebox/forgebox/service/internal/config"

	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// checkpointEvery is how many bytes may arrive between two checkpoints of a partial blob. A
// checkpoint (data synced, then the hash state written) lets a later run resume without hashing
// the partial file again, and bounds what a power cut can tear.
const checkpointEvery = 8 << 20

// checkpoint is the state saved beside a partial blob: how many bytes of it are on disk for
// sure, and the SHA-256 state after them.
type checkpoint struct {
	Offset int64  `json:"offset"`
	SHA256 []byte `json:"sha256_state"`
}

// errRangeIgnored says the server sent the whole blob where a range was asked for; the partial
// file was reset and the next try starts from zero.
var errRangeIgnored = errors.New("the server ignored the byte range and sent the whole blob")

// errPermanent marks a failure that trying the same source again cannot fix.
type errPermanent struct{ err error }

func (e errPermanent) Error() string { return e.err.Error() }
func (e errPermanent) Unwrap() error { return e.err }

// partialBlob is a blob being downloaded into the cache: <cache>/partial/<hex> and its
// checkpoint <hex>.json. Once the digest matches it moves to blobs/sha256/<hex>.
type partialBlob struct {
	desc  v1.Descriptor
	path  string
	state string
	final string
}

func (c *Cache) partial(desc v1.Descriptor) partialBlob {
	return partialBlob{
		desc:  desc,
		path:  filepath.Join(c.dir, "partial", desc.Digest.Hex),
		state: filepath.Join(c.dir, "partial", desc.Digest.Hex+".json"),
		final: c.blobPath(desc.Digest),
	}
}

// resume opens the partial file where a previous run left it: it restores the hash state from
// the checkpoint and hashes whatever was written after it (bytes a killed run wrote but never
// checkpointed). It returns the file positioned at its end, the hash so far and the offset.
func (p partialBlob) resume() (*os.File, hash.Hash, int64, error) {
	if err := os.MkdirAll(filepath.Dir(p.path), 0o755); err != nil {
		return nil, nil, 0, err
	}
	f, err := os.OpenFile(p.path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, 0, err
	}
	h := sha256.New()
	var cp checkpoint
	if b, err := os.ReadFile(p.state); err == nil && json.Unmarshal(b, &cp) == nil && cp.Offset > 0 {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(cp.SHA256); err != nil {
			cp = checkpoint{}
			h.Reset()
		}
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, 0, err
	}
	if fi.Size() < cp.Offset { // the checkpoint is newer than the data: trust neither
		cp = checkpoint{}
		h.Reset()
	}
	if _, err := f.Seek(cp.Offset, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, 0, err
	}
	// Bytes after the checkpoint: written by a run that was killed before its next checkpoint.
	// Kept and hashed; a torn tail after a power cut shows up as a digest mismatch at the end.
	tail := fi.Size() - cp.Offset
	if p.desc.Size > 0 && fi.Size() > p.desc.Size {
		tail = p.desc.Size - cp.Offset
		if err := f.Truncate(p.desc.Size); err != nil {
			f.Close()
			return nil, nil, 0, err
		}
	}
	n, err := io.CopyN(h, f, tail)
	if err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, nil, 0, err
	}
	return f, h, cp.Offset + n, nil
}

func (p partialBlob) saveCheckpoint(f *os.File, h hash.Hash, off int64) error {
	if err := f.Sync(); err != nil {
		return err
	}
	st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	b, _ := json.Marshal(checkpoint{Offset: off, SHA256: st})
	tmp := p.state + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p.state)
}

func (p partialBlob) reset(f *os.File) error {
	os.Remove(p.state)
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.Seek(0, io.SeekStart)
	return err
}

// finish checks the digest and moves the blob into the cache.
func (p partialBlob) finish(f *os.File, h hash.Hash, size int64) error {
	got := hex.EncodeToString(h.Sum(nil))
	if got != p.desc.Digest.Hex || (p.desc.Size > 0 && size != p.desc.Size) {
		// Start that blob over: whatever is on disk is not the blob.
		p.reset(f)
		return fmt.Errorf("blob %s arrived corrupt (sha256 %s, %d bytes; want %d bytes): downloaded again on the next try", p.desc.Digest, short(got), size, p.desc.Size)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p.final), 0o755); err != nil {
		return err
	}
	if err := os.Rename(p.path, p.final); err != nil {
		return err
	}
	os.Remove(p.state)
	return config.SyncDir(filepath.Dir(p.final))
}

// fetchBlobOnce makes one request for the rest of a blob and appends what arrives. It returns
// nil when the blob is complete and verified, or the error that stopped it; the partial file
// keeps every byte that arrived, so the next call resumes after them.
func (f *Fetcher) fetchBlobOnce(ctx context.Context, src source, p partialBlob, track *tracker) error {
	file, h, off, err := p.resume()
	if err != nil {
		return errPermanent{fmt.Errorf("open the partial download: %w", err)}
	}
	defer file.Close()
	if p.desc.Size > 0 && off == p.desc.Size {
		track.add(p.desc.Digest, 0, off)
		return p.finish(file, h, off)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.blobURL(p.desc.Digest), nil)
	if err != nil {
		return errPermanent{err}
	}
	if off > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-")
	}
	resp, err := (&http.Client{Transport: src.rt}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && off > 0:
	case resp.StatusCode == http.StatusOK:
		if off > 0 {
			if err := p.reset(file); err != nil {
				return errPermanent{err}
			}
			h.Reset()
			off = 0
			track.add(p.desc.Digest, 0, 0)
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		p.reset(file)
		return errRangeIgnored
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return errPermanent{fmt.Errorf("%s answered %s for blob %s", src.label, resp.Status, p.desc.Digest)}
	default:
		return fmt.Errorf("%s answered %s for blob %s", src.label, resp.Status, p.desc.Digest)
	}

	// A stalled connection is as good as a cut one: give up on it after StallTimeout without a
	// byte, and resume on a new one.
	stall := time.AfterFunc(f.stallTimeout(), cancel)
	defer stall.Stop()
	buf := make([]byte, 256<<10)
	sinceCheckpoint := int64(0)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			stall.Reset(f.stallTimeout())
			if _, err := file.Write(buf[:n]); err != nil {
				return errPermanent{fmt.Errorf("write %s: %w", p.path, err)}
			}
			h.Write(buf[:n])
			off += int64(n)
			sinceCheckpoint += int64(n)
			track.add(p.desc.Digest, int64(n), off)
			if sinceCheckpoint >= checkpointEvery {
				if err := p.saveCheckpoint(file, h, off); err != nil {
					return errPermanent{fmt.Errorf("checkpoint %s: %w", p.path, err)}
				}
				sinceCheckpoint = 0
			}
			if p.desc.Size > 0 && off > p.desc.Size {
				p.reset(file)
				return fmt.Errorf("%s sent more than the %d bytes of blob %s", src.label, p.desc.Size, p.desc.Digest)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if sinceCheckpoint > 0 {
				p.saveCheckpoint(file, h, off)
			}
			if ctx.Err() != nil && errors.Is(rerr, context.Canceled) {
				return fmt.Errorf("no data for %s: connection stalled", f.stallTimeout())
			}
			return rerr
		}
	}
	if p.desc.Size > 0 && off < p.desc.Size {
		p.saveCheckpoint(file, h, off)
		return fmt.Errorf("connection closed after %d of %d bytes", off, p.desc.Size)
	}
	return p.finish(file, h, off)
}

func short(hexDigest string) string {
	if len(hexDigest) > 12 {
		return hexDigest[:12]
	}
	return hexDigest
}
