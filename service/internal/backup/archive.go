package backup

import (
	"github.com/forgebox/forgebox/service/internal/config"

	"github.com/docker/go-units"

	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// FormatVersion is the archive layout this build writes; it reads this and every older one.
// Format 2 holds GitLab's database as its own member (MemberDatabase), dumped by PostgreSQL's
// own pg_dump, and GitLab's backup without it (SKIP=db); format 1 has the database inside
// GitLab's backup. A forgebox that reads only format 1 must refuse format 2: it would restore
// GitLab's backup without the database.
const FormatVersion = 2

// ManifestName is the archive's first member.
const ManifestName = "manifest.json"

// Extension ends every backup file's name.
const Extension = ".tar.gz"

// Kinds of backup. Only scheduled ones are ever deleted by forgebox (backup.keep).
const (
	KindManual     = "manual"
	KindScheduled  = "scheduled"
	KindPreUpgrade = "pre-upgrade"
	KindPreRestore = "pre-restore"
)

// Manifest describes one backup: what made it and every member with its checksum.
type Manifest struct {
	Format    int          `json:"format"`
	Name      string       `json:"name"`
	Kind      string       `json:"kind"`
	Stack     string       `json:"stack"`
	CreatedAt time.Time    `json:"created_at"`
	Forgebox  string       `json:"forgebox_version"`
	GitLab    GitLabInfo   `json:"gitlab"`
	Runner    RunnerInfo   `json:"runner"`
	Postgres  PostgresInfo `json:"postgres"`
	Members   []Member     `json:"members"`
	Size      int64        `json:"size"` // of all members, uncompressed
	Note      string       `json:"note,omitempty"`
}

// GitLabInfo is the GitLab that made the backup; a restore needs the same version.
type GitLabInfo struct {
	Version  string `json:"version"`
	Flavour  string `json:"flavour"`
	Image    string `json:"image"`
	BackupID string `json:"backup_id"` // GitLab's own: <epoch>_<date>_<version>
}

// RunnerInfo is the runner image at backup time.
type RunnerInfo struct {
	Image   string `json:"image"`
	Runners int    `json:"runners"` // runner records in the secret store
}

// PostgresInfo is the PostgreSQL server at backup time.
type PostgresInfo struct {
	Version    string `json:"version"`
	Major      int    `json:"major"`
	Image      string `json:"image"`
	DumpClient string `json:"dump_client,omitempty"` // the pg_dump that dumped the database (format 2)
}

// Member is one file in the archive.
type Member struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Mode   uint32 `json:"mode"`
	What   string `json:"what"`
}

// Member paths.
const (
	MemberConfig       = "forgebox/config.toml"
	MemberSecrets      = "forgebox/secrets.json"
	MemberRunnerConfig = "forgebox/runner-config.toml"
	gitlabTarPrefix    = "gitlab/backup/"
	sshPrefix          = "gitlab/ssh/"
	MemberOmnibusJSON  = "gitlab/etc/gitlab-secrets.json"
	MemberOmnibusRB    = "gitlab/etc/gitlab.rb"
)

// source is a member to write: from memory (body) or from a file on disk.
type source struct {
	Member
	body []byte
	file string
}

func memSource(p, what string, mode os.FileMode, body []byte) source {
	sum := sha256.Sum256(body)
	return source{Member: Member{Path: p, Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:]), Mode: uint32(mode.Perm()), What: what}, body: body}
}

// fileSource hashes a file now; writeArchive checks the file did not change since.
func fileSource(p, what, file string) (source, error) {
	f, err := os.Open(file)
	if err != nil {
		return source{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return source{}, err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return source{}, fmt.Errorf("read %s: %w", file, err)
	}
	return source{Member: Member{Path: p, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Mode: uint32(fi.Mode().Perm()), What: what}, file: file}, nil
}

// DiskFullError says the backup did not fit.
type DiskFullError struct {
	Dir        string
	Need, Free int64
	Err        error
}

func (e *DiskFullError) Error() string {
	if e.Need > 0 {
		return fmt.Sprintf("the disk holding %s is full: the backup needs about %s and %s is free; free space there (or set backup.dir to a bigger volume) and back up again; nothing was written",
			e.Dir, units.BytesSize(float64(e.Need)), units.BytesSize(float64(e.Free)))
	}
	return fmt.Sprintf("the disk holding %s filled up while the backup was written (%v): free space there (or set backup.dir to a bigger volume) and back up again; the partial file was removed",
		e.Dir, e.Err)
}

func (e *DiskFullError) Unwrap() error { return e.Err }

// freeBytes is what an unprivileged writer may still put on dir's file system.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

const partialMarker = ".partial-"

// spaceMargin is kept free beyond the backup's estimated size.
var spaceMargin int64 = 1 << 20

// writeArchive writes the archive atomically: a hidden temporary file in dir (mode 0600: it
// holds the secrets), fsynced, then linked to <name>.tar.gz without replacing anything, and the
// directory fsynced. On any failure the temporary file is removed, so no partial archive is
// ever left under a backup's name.
func writeArchive(dir, name string, m Manifest, members []source) (path string, size int64, err error) {
	m.Members = m.Members[:0]
	m.Size = 0
	for _, s := range members {
		m.Members = append(m.Members, s.Member)
		m.Size += s.Size
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", 0, err
	}
	if free, err := freeBytes(dir); err == nil && free < m.Size+int64(len(manifest))+spaceMargin {
		return "", 0, &DiskFullError{Dir: dir, Need: m.Size + int64(len(manifest)) + spaceMargin, Free: free}
	}
	f, err := os.CreateTemp(dir, "."+name+Extension+partialMarker+"*")
	if err != nil {
		return "", 0, diskError(dir, fmt.Errorf("create the backup file: %w", err))
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return "", 0, err
	}
	gz, _ := gzip.NewWriterLevel(f, gzip.BestSpeed) // a NAS CPU is slow; GitLab's own tar is mostly compressed already
	tw := tar.NewWriter(gz)
	now := m.CreatedAt
	if err = writeMember(tw, tar.Header{Name: ManifestName, Mode: 0o600, Size: int64(len(manifest)), ModTime: now}, bytes.NewReader(manifest), "", int64(len(manifest))); err != nil {
		return "", 0, diskError(dir, err)
	}
	for _, s := range members {
		hdr := tar.Header{Name: s.Path, Mode: int64(s.Mode), Size: s.Size, ModTime: now}
		if s.file == "" {
			err = writeMember(tw, hdr, bytes.NewReader(s.body), s.SHA256, s.Size)
		} else {
			var in *os.File
			if in, err = os.Open(s.file); err == nil {
				err = writeMember(tw, hdr, in, s.SHA256, s.Size)
				in.Close()
			}
		}
		if err != nil {
			return "", 0, diskError(dir, fmt.Errorf("%s: %w", s.Path, err))
		}
	}
	if err = tw.Close(); err == nil {
		err = gz.Close()
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		return "", 0, diskError(dir, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return "", 0, fmt.Errorf("stat the backup file: %w", err)
	}
	if err = f.Close(); err != nil {
		return "", 0, diskError(dir, err)
	}
	// Owned like its directory: on a NAS the share's owner can then copy it off the box (as root
	// forgebox would otherwise leave a file only root may read).
	chownLike(tmp, dir)
	path = filepath.Join(dir, name+Extension)
	if err = os.Link(tmp, path); err != nil { // never replaces an existing backup
		return "", 0, fmt.Errorf("name the backup %s: %w", path, err)
	}
	os.Remove(tmp)
	config.SyncDir(dir)
	return path, fi.Size(), nil
}

// writeMember copies one member, checking its size and checksum against what was hashed before
// (a file that changed in between fails the backup rather than storing an unverifiable copy).
func writeMember(tw *tar.Writer, hdr tar.Header, r io.Reader, sum string, size int64) error {
	hdr.Typeflag = tar.TypeReg
	if err := tw.WriteHeader(&hdr); err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tw, h), io.LimitReader(r, size+1))
	if err != nil {
		return err
	}
	if n != size || (sum != "" && hex.EncodeToString(h.Sum(nil)) != sum) {
		return errors.New("the file changed while it was being backed up")
	}
	return nil
}

func diskError(dir string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return &DiskFullError{Dir: dir, Err: err}
	}
	return err
}

// ReadManifest reads only an archive's first member.
func ReadManifest(file string) (Manifest, error) {
	f, err := os.Open(file)
	if err != nil {
		return Manifest{}, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return Manifest{}, fmt.Errorf("%s is not a forgebox backup (not gzip): %w", filepath.Base(file), err)
	}
	tr := tar.NewReader(gz)
	h, err := tr.Next()
	if err != nil {
		return Manifest{}, fmt.Errorf("%s is not a forgebox backup: %w", filepath.Base(file), err)
	}
	if h.Name != ManifestName {
		return Manifest{}, fmt.Errorf("%s is not a forgebox backup: its first member is %s, not %s", filepath.Base(file), h.Name, ManifestName)
	}
	return decodeManifest(tr)
}

func decodeManifest(r io.Reader) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(io.LimitReader(r, 16<<20))
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("the backup's manifest is damaged: %w", err)
	}
	if m.Format < 1 || m.Format > FormatVersion {
		return m, fmt.Errorf("the backup has format %d; this forgebox reads format %d: use the forgebox version that made it (%s) or a newer one", m.Format, FormatVersion, m.Forgebox)
	}
	return m, nil
}

// CorruptError says an archive does not hold what its manifest lists.
type CorruptError struct {
	File   string
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("backup %s is damaged: %s; nothing was changed (use another backup)", filepath.Base(e.File), e.Reason)
}

// walkArchive reads the archive, checking every member against the manifest (present once,
// the listed size and sha256, nothing else), and hands each member to fn (nil: only check). A
// member fn does not read is still checked.
func walkArchive(file string, fn func(m Member, r io.Reader) error) (Manifest, error) {
	f, err := os.Open(file)
	if err != nil {
		return Manifest{}, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return Manifest{}, &CorruptError{File: file, Reason: err.Error()}
	}
	tr := tar.NewReader(gz)
	h, err := tr.Next()
	if err != nil || h.Name != ManifestName {
		return Manifest{}, &CorruptError{File: file, Reason: "the manifest is missing"}
	}
	m, err := decodeManifest(tr)
	if err != nil {
		return m, err
	}
	want := map[string]Member{}
	for _, mem := range m.Members {
		want[mem.Path] = mem
	}
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return m, &CorruptError{File: file, Reason: err.Error()}
		}
		mem, ok := want[h.Name]
		if !ok || seen[h.Name] {
			return m, &CorruptError{File: file, Reason: fmt.Sprintf("member %s is not in the manifest", h.Name)}
		}
		seen[h.Name] = true
		hasher := sha256.New()
		r := io.TeeReader(io.LimitReader(tr, mem.Size+1), hasher)
		if fn != nil {
			if err := fn(mem, r); err != nil {
				return m, err
			}
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return m, &CorruptError{File: file, Reason: fmt.Sprintf("member %s cannot be read: %v", h.Name, err)}
		}
		if got := hex.EncodeToString(hasher.Sum(nil)); got != mem.SHA256 || h.Size != mem.Size {
			return m, &CorruptError{File: file, Reason: fmt.Sprintf("member %s does not match its checksum", h.Name)}
		}
	}
	var missing []string
	for p := range want {
		if !seen[p] {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return m, &CorruptError{File: file, Reason: "members missing: " + strings.Join(missing, ", ")}
	}
	return m, nil
}

// Verify reads the whole archive and checks every member's checksum.
func Verify(file string) (Manifest, error) { return walkArchive(file, nil) }

// Entry is one backup in the backup directory.
type Entry struct {
	Name     string    `json:"name"`
	File     string    `json:"file"`
	Size     int64     `json:"size"`
	Modified time.Time `json:"modified"`
	Manifest *Manifest `json:"manifest,omitempty"`
	Problem  string    `json:"problem,omitempty"` // why the manifest could not be read
}

// List returns the backups in dir, newest first. A missing dir has none.
func List(dir string) ([]Entry, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return []Entry{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read backup directory: %w", err)
	}
	out := []Entry{}
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, Extension) || strings.HasPrefix(n, ".") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		file := filepath.Join(dir, n)
		ent := Entry{Name: strings.TrimSuffix(n, Extension), File: file, Size: fi.Size(), Modified: fi.ModTime()}
		if m, err := ReadManifest(file); err != nil {
			ent.Problem = err.Error()
		} else {
			ent.Manifest = &m
		}
		out = append(out, ent)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].created().After(out[j].created()) })
	return out, nil
}

func (e Entry) created() time.Time {
	if e.Manifest != nil {
		return e.Manifest.CreatedAt
	}
	return e.Modified
}

// Resolve finds a backup by name (with or without .tar.gz) in dir, or takes a path to a file.
func Resolve(dir, nameOrPath string) (string, error) {
	if strings.ContainsRune(nameOrPath, '/') {
		if _, err := os.Stat(nameOrPath); err != nil {
			return "", fmt.Errorf("backup file %s: %w", nameOrPath, err)
		}
		return nameOrPath, nil
	}
	name := strings.TrimSuffix(nameOrPath, Extension)
	if name == "" || name != path.Base(name) || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("%q is not a backup name", nameOrPath)
	}
	file := filepath.Join(dir, name+Extension)
	if _, err := os.Stat(file); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", &NotFoundError{Name: name, Dir: dir}
		}
		return "", err
	}
	return file, nil
}

// NotFoundError says there is no backup of that name.
type NotFoundError struct{ Name, Dir string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no backup %q in %s (forgebox backup list shows them)", e.Name, e.Dir)
}

// removeStalePartials deletes temporary files a killed backup left in dir (only forgebox's
// own, by their name; the stack lock keeps any other backup from writing now).
func removeStalePartials(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var removed []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") && strings.Contains(e.Name(), Extension+partialMarker) {
			if os.Remove(filepath.Join(dir, e.Name())) == nil {
				removed = append(removed, e.Name())
			}
		}
	}
	return removed
}

// chownLike gives path the owner of ref, when this process may (it runs as root).
func chownLike(path, ref string) {
	if os.Geteuid() != 0 {
		return
	}
	fi, err := os.Stat(ref)
	if err != nil {
		return
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		os.Lchown(path, int(st.Uid), int(st.Gid))
	}
}

// mkdirLikeParent creates dir (mode 0700: backups hold secrets) owned like its parent.
func mkdirLikeParent(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	chownLike(dir, filepath.Dir(dir))
	return nil
}
