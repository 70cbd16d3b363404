package spkbuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"
)

// entry is one file, directory or hard link of a tar archive being assembled.
type entry struct {
	name     string // slash-separated, relative, no trailing slash
	mode     int64
	data     []byte
	dir      bool
	linkTo   string // hard link target (an earlier entry's name)
	fromPath string // or: read the content from this file when writing
	size     int64  // of fromPath
}

// tree collects entries, adds the parent directories, and writes them sorted so that the same
// input gives the same bytes.
type tree struct {
	entries map[string]entry
}

func newTree() *tree { return &tree{entries: map[string]entry{}} }

func (t *tree) file(name string, mode int64, data []byte) {
	t.parents(name)
	t.entries[name] = entry{name: name, mode: mode, data: data}
}

func (t *tree) fileFrom(name string, mode int64, src string, size int64) {
	t.parents(name)
	t.entries[name] = entry{name: name, mode: mode, fromPath: src, size: size}
}

func (t *tree) hardlink(name, target string) {
	t.parents(name)
	t.entries[name] = entry{name: name, mode: 0o755, linkTo: target}
}

func (t *tree) parents(name string) {
	for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
		if _, ok := t.entries[d]; !ok {
			t.entries[d] = entry{name: d, mode: 0o755, dir: true}
		}
	}
}

// payloadSize is the bytes of file content, for INFO's extractsize.
func (t *tree) payloadSize() int64 {
	var n int64
	for _, e := range t.entries {
		n += int64(len(e.data)) + e.size
	}
	return n
}

// sorted returns the entries in name order, except that a hard link always follows its target.
func (t *tree) sorted(first ...string) []entry {
	names := make([]string, 0, len(t.entries))
	for n := range t.entries {
		names = append(names, n)
	}
	rank := func(n string) int {
		top := strings.SplitN(n, "/", 2)[0]
		if i := slices.Index(first, top); i >= 0 {
			return i
		}
		return len(first)
	}
	slices.SortFunc(names, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	out := make([]entry, 0, len(names))
	for _, n := range names {
		e := t.entries[n]
		if e.linkTo != "" && strings.Compare(e.linkTo, n) > 0 {
			return nil // cannot happen with the layouts built here; write refuses it
		}
		out = append(out, e)
	}
	return out
}

// write writes the tree as a POSIX tar: entries owned by root, one modification time. Entries
// whose top-level name is in first come first, in that order (INFO before package.tgz, as
// Synology's own tools write SPKs); the rest sort by name.
func (t *tree) write(w io.Writer, mtime time.Time, open func(string) (io.ReadCloser, error), first ...string) error {
	entries := t.sorted(first...)
	if entries == nil && len(t.entries) > 0 {
		return fmt.Errorf("a hard link comes before its target")
	}
	tw := tar.NewWriter(w)
	for _, e := range entries {
		h := &tar.Header{
			Name: e.name, Mode: e.mode, ModTime: mtime, Uid: 0, Gid: 0, Uname: "root", Gname: "root",
			Format: tar.FormatPAX,
		}
		switch {
		case e.dir:
			h.Typeflag, h.Name = tar.TypeDir, e.name+"/"
		case e.linkTo != "":
			h.Typeflag, h.Linkname = tar.TypeLink, e.linkTo
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))+e.size
		}
		// PAX only when needed (long names); plain ustar otherwise, which every tar reads.
		if len(h.Name) <= 100 {
			h.Format = tar.FormatUSTAR
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("tar %s: %w", e.name, err)
		}
		switch {
		case e.fromPath != "":
			f, err := open(e.fromPath)
			if err != nil {
				return err
			}
			n, err := io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("tar %s: %w", e.name, err)
			}
			if n != e.size {
				return fmt.Errorf("tar %s: %s changed size while being packed", e.name, e.fromPath)
			}
		case len(e.data) > 0:
			if _, err := tw.Write(e.data); err != nil {
				return fmt.Errorf("tar %s: %w", e.name, err)
			}
		}
	}
	return tw.Close()
}

// gzipBytes compresses with a zero header time and no name, so the output depends only on
// the input.
func gzipTo(w io.Writer, write func(io.Writer) error) error {
	zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	if err := write(zw); err != nil {
		return err
	}
	return zw.Close()
}

func gzipBytes(data []byte) ([]byte, error) {
	var b bytes.Buffer
	err := gzipTo(&b, func(w io.Writer) error { _, err := w.Write(data); return err })
	return b.Bytes(), err
}
