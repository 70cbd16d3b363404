package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/testenv"
)

func testManifest(name string) Manifest {
	return Manifest{Format: FormatVersion, Name: name, Kind: KindManual, Stack: "fb", CreatedAt: time.Date(2026, 8, 29, 3, 30, 0, 0, time.UTC),
		GitLab: GitLabInfo{Version: "18.5.7", Flavour: "sameersbn", BackupID: "1_2026_08_29_18.5.7"}}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestArchiveRoundTrip(t *testing.T) {
	dir := t.TempDir()
	gl := filepath.Join(t.TempDir(), "1_2026_08_29_18.5.7_gitlab_backup.tar")
	os.WriteFile(gl, randomBytes(200<<10), 0o600)
	fsrc, err := fileSource(gitlabTarPrefix+filepath.Base(gl), "GitLab's backup", gl)
	if err != nil {
		t.Fatal(err)
	}
	members := []source{memSource(MemberConfig, "config", 0o644, []byte("version = 1\n")), memSource(MemberSecrets, "secrets", 0o600, []byte(`{"a":"b"}`)), fsrc}
	file, size, err := writeArchive(dir, "fb-one", testManifest("fb-one"), members)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != size {
		t.Fatalf("archive %s: %v, mode %v, size %d/%d", file, err, fi.Mode(), fi.Size(), size)
	}
	if got := entries(t, dir); len(got) != 1 || got[0] != "fb-one.tar.gz" {
		t.Errorf("backup dir holds %v, want only the archive", got)
	}
	m, err := Verify(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Members) != 3 || m.Size != int64(len(`{"a":"b"}`))+12+200<<10 || m.GitLab.Version != "18.5.7" {
		t.Errorf("manifest %+v", m)
	}
	// The manifest comes first, so listing reads only it.
	if m2, err := ReadManifest(file); err != nil || m2.Name != "fb-one" {
		t.Errorf("ReadManifest: %+v, %v", m2, err)
	}
	// The system tar reads it too: a user can unpack a backup by hand.
	if out, err := exec.Command("tar", "-tzf", file).CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "manifest.json\n") {
		t.Errorf("tar -tzf: %v\n%s", err, out)
	}
	// Never replaces an existing backup.
	if _, _, err := writeArchive(dir, "fb-one", testManifest("fb-one"), members); err == nil {
		t.Error("a second archive of the same name replaced the first")
	}
	if uniqueName(dir, "fb-one") != "fb-one-2" {
		t.Errorf("uniqueName: %s", uniqueName(dir, "fb-one"))
	}
	list, err := List(dir)
	if err != nil || len(list) != 1 || list[0].Manifest == nil || list[0].Name != "fb-one" {
		t.Errorf("List: %+v, %v", list, err)
	}
}

// A file that changes between hashing and writing fails the backup instead of storing a copy
// that does not match its checksum.
func TestArchiveRefusesAFileThatChanged(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(t.TempDir(), "x.tar")
	os.WriteFile(f, []byte("one"), 0o600)
	src, _ := fileSource(gitlabTarPrefix+"x.tar", "x", f)
	os.WriteFile(f, []byte("two"), 0o600)
	if _, _, err := writeArchive(dir, "fb-x", testManifest("fb-x"), []source{src}); err == nil || !strings.Contains(err.Error(), "changed") {
		t.Fatalf("err = %v", err)
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Errorf("left behind: %v", got)
	}
}

// Damaged archives are refused with what is wrong: a flipped byte in a member, a missing
// member, a member the manifest does not list.
func TestVerifyFindsDamage(t *testing.T) {
	dir := t.TempDir()
	file, _, err := writeArchive(dir, "fb-v", testManifest("fb-v"), []source{
		memSource(MemberConfig, "c", 0o644, []byte("version = 1\n")), memSource(MemberSecrets, "s", 0o600, []byte(`{}`))})
	if err != nil {
		t.Fatal(err)
	}
	rewrite := func(name string, edit func(h *tar.Header, body []byte) (*tar.Header, []byte)) string {
		in, _ := os.Open(file)
		defer in.Close()
		gz, _ := gzip.NewReader(in)
		tr := tar.NewReader(gz)
		var buf bytes.Buffer
		gw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(gw)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			body, _ := io.ReadAll(tr)
			h2, b2 := edit(h, body)
			if h2 == nil {
				continue
			}
			h2.Size = int64(len(b2))
			tw.WriteHeader(h2)
			tw.Write(b2)
		}
		tw.Close()
		gw.Close()
		out := filepath.Join(dir, name+".tar.gz")
		os.WriteFile(out, buf.Bytes(), 0o600)
		return out
	}
	cases := map[string]func(h *tar.Header, b []byte) (*tar.Header, []byte){
		"flipped": func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if h.Name == MemberSecrets {
				b = []byte(`{"x":1}`)
			}
			return h, b
		},
		"missing": func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if h.Name == MemberSecrets {
				return nil, nil
			}
			return h, b
		},
	}
	for name, edit := range cases {
		var ce *CorruptError
		if _, err := Verify(rewrite(name, edit)); !errors.As(err, &ce) {
			t.Errorf("%s: %v", name, err)
		}
	}
	os.WriteFile(filepath.Join(dir, "junk.tar.gz"), []byte("not a backup"), 0o600)
	if _, err := ReadManifest(filepath.Join(dir, "junk.tar.gz")); err == nil {
		t.Error("junk accepted")
	}
	list, _ := List(dir)
	var problems int
	for _, e := range list {
		if e.Problem != "" {
			problems++
		}
	}
	if problems != 1 {
		t.Errorf("List marks %d unreadable archives, want 1 (junk)", problems)
	}
}

// mountTmpfs gives a directory on a small file system of its own, so a full disk is real.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.Cannot(t, fmt.Sprintf("cannot mount a tmpfs here (%v: %s); the full-disk test needs root", err, out))
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

// A backup that does not fit says the disk is full, before writing when it can tell, and
// otherwise when the write fails; either way no partial archive stays behind.
func TestFullDiskLeavesNothingAndSaysSo(t *testing.T) {
	dir := mountTmpfs(t, "512k")
	big := filepath.Join(t.TempDir(), "1_2026_08_29_18.5.7_gitlab_backup.tar")
	if err := os.WriteFile(big, randomBytes(2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := fileSource(gitlabTarPrefix+filepath.Base(big), "GitLab's backup", big)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = writeArchive(dir, "fb-full", testManifest("fb-full"), []source{src})
	var full *DiskFullError
	if !errors.As(err, &full) || full.Need == 0 || !strings.Contains(err.Error(), "is full") {
		t.Fatalf("before writing: %v", err)
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Errorf("left behind: %v", got)
	}

	// Fits by the estimate, not once written (tar headers, gzip of random data): ENOSPC.
	defer func(m int64) { spaceMargin = m }(spaceMargin)
	spaceMargin = 0
	free, err := freeBytes(dir)
	if err != nil {
		t.Fatal(err)
	}
	if free < 64<<10 {
		t.Fatalf("the fresh 512k tmpfs has only %d bytes free", free)
	}
	almost := filepath.Join(t.TempDir(), "2_2026_08_29_18.5.7_gitlab_backup.tar")
	if err := os.WriteFile(almost, randomBytes(int(free)-2048), 0o600); err != nil {
		t.Fatal(err)
	}
	if src, err = fileSource(gitlabTarPrefix+filepath.Base(almost), "GitLab's backup", almost); err != nil {
		t.Fatal(err)
	}
	_, _, err = writeArchive(dir, "fb-full", testManifest("fb-full"), []source{src})
	if !errors.As(err, &full) || full.Err == nil || !strings.Contains(err.Error(), "filled up") {
		t.Fatalf("while writing: %v", err)
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Errorf("left behind: %v", got)
	}
}

func TestPruneKeepsOnlyScheduledBeyondKeep(t *testing.T) {
	dir := t.TempDir()
	write := func(name, kind, stackName string, at time.Time) {
		m := testManifest(name)
		m.Kind, m.Stack, m.CreatedAt = kind, stackName, at
		if _, _, err := writeArchive(dir, name, m, []source{memSource(MemberConfig, "c", 0o644, []byte("x"))}); err != nil {
			t.Fatal(err)
		}
	}
	base := time.Date(2026, 8, 1, 3, 30, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		write("fb-s"+string(rune('a'+i)), KindScheduled, "fb", base.AddDate(0, 0, i))
	}
	write("fb-manual", KindManual, "fb", base.AddDate(0, 0, -10))
	write("fb-pre", KindPreUpgrade, "fb", base.AddDate(0, 0, -9))
	write("other-s", KindScheduled, "other", base.AddDate(0, 0, -8))
	removed, err := Prune(dir, "fb", 2)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(removed, ",") != "fb-sc,fb-sb,fb-sa" {
		t.Errorf("removed %v, want the three oldest scheduled backups of stack fb", removed)
	}
	left := strings.Join(entries(t, dir), ",")
	for _, want := range []string{"fb-sd", "fb-se", "fb-manual", "fb-pre", "other-s"} {
		if !strings.Contains(left, want) {
			t.Errorf("%s was deleted (left: %s)", want, left)
		}
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "fb-a.tar.gz"), nil, 0o600)
	for _, in := range []string{"fb-a", "fb-a.tar.gz", filepath.Join(dir, "fb-a.tar.gz")} {
		if got, err := Resolve(dir, in); err != nil || got != filepath.Join(dir, "fb-a.tar.gz") {
			t.Errorf("Resolve(%q) = %q, %v", in, got, err)
		}
	}
	var nf *NotFoundError
	if _, err := Resolve(dir, "fb-b"); !errors.As(err, &nf) {
		t.Errorf("missing: %v", err)
	}
	for _, bad := range []string{"", "..", ".hidden"} {
		if _, err := Resolve(dir, bad); err == nil {
			t.Errorf("Resolve(%q) accepted", bad)
		}
	}
}

func TestGitLabCommands(t *testing.T) {
	for _, c := range []struct {
		flavour, action string
		withDB          bool
		user, cmd       string
	}{
		{"sameersbn", "create", false, "git", "bundle exec rake gitlab:backup:create SKIP=db RAILS_ENV=production"},
		{"sameersbn", "restore", false, "git", "bundle exec rake gitlab:backup:restore BACKUP=1_2026_08_29_18.5.7 force=yes GITLAB_ASSUME_YES=1 SKIP=db RAILS_ENV=production"},
		{"sameersbn", "restore", true, "git", "bundle exec rake gitlab:backup:restore BACKUP=1_2026_08_29_18.5.7 force=yes GITLAB_ASSUME_YES=1 RAILS_ENV=production"},
		{"omnibus", "create", false, "root", "gitlab-backup create SKIP=db"},
		{"omnibus", "restore", false, "root", "gitlab-backup restore BACKUP=1_2026_08_29_18.5.7 force=yes GITLAB_ASSUME_YES=1 SKIP=db"},
		{"omnibus", "restore", true, "root", "gitlab-backup restore BACKUP=1_2026_08_29_18.5.7 force=yes GITLAB_ASSUME_YES=1"},
	} {
		id := ""
		if c.action == "restore" {
			id = "1_2026_08_29_18.5.7"
		}
		user, cmd := gitlabCommand(c.flavour, c.action, id, c.withDB)
		if user != c.user || strings.Join(cmd, " ") != c.cmd {
			t.Errorf("%s %s (database %v): %s %v", c.flavour, c.action, c.withDB, user, cmd)
		}
	}
	if m := backupDoneLine.FindStringSubmatch("2026-08-29 03:30:00 UTC -- Backup 1788000000_2026_08_29_18.5.7 is done.\n"); m == nil || m[1] != "1788000000_2026_08_29_18.5.7" {
		t.Errorf("done line: %v", m)
	}
}

// Written as root (the controller on DSM), a backup is owned like its directory, so the share's
// owner can copy it off the box; it stays 0600.
func TestArchiveOwnedLikeItsDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Cannot(t, "needs root to give files away")
	}
	share := t.TempDir()
	if err := os.Chown(share, 1026, 100); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(share, "backups")
	if err := mkdirLikeParent(dir); err != nil {
		t.Fatal(err)
	}
	file, _, err := writeArchive(dir, "fb-own", testManifest("fb-own"), []source{memSource(MemberConfig, "c", 0o644, []byte("x"))})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, file} {
		fi, _ := os.Stat(p)
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 1026 || st.Gid != 100 {
			t.Errorf("%s owned by %d:%d, want 1026:100", p, st.Uid, st.Gid)
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("backup dir mode %v", fi.Mode())
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("archive mode %v", fi.Mode())
	}
}

// GitLab's restore prints the psql errors it did not ignore between two marker lines
// (gitlabhq lib/backup/targets/database.rb); the restore reports them.
func TestGitLabErrorsBlock(t *testing.T) {
	out := `2026-12-03 08:00:00 UTC -- Restoring database ...
psql:/dev/stdin:12: ERROR:  relation "x" already exists
2026-12-03 08:00:01 UTC -- ------ BEGIN ERRORS -----
psql:/dev/stdin:12: ERROR:  relation "x" already exists

psql:/dev/stdin:40: ERROR:  new row violates check constraint "c"
2026-12-03 08:00:01 UTC -- ------ END ERRORS -------
2026-12-03 08:00:01 UTC -- Restoring database ... done
`
	want := `psql:/dev/stdin:12: ERROR:  relation "x" already exists | psql:/dev/stdin:40: ERROR:  new row violates check constraint "c"`
	if got := gitlabErrors(out); got != want {
		t.Errorf("errors block:\n got %q\nwant %q", got, want)
	}
	if got := gitlabErrors("Restoring database ... done\nRestore task is done.\n"); got != "" {
		t.Errorf("no block: %q", got)
	}
}

// A member whose compressed bytes are damaged is reported as unreadable, not as a checksum
// mismatch.
func TestVerifyReportsUnreadableMember(t *testing.T) {
	dir := t.TempDir()
	body := make([]byte, 1<<20)
	for i := range body {
		body[i] = byte(i * 7 % 251)
	}
	file, _, err := writeArchive(dir, "fb-trunc", testManifest("fb-trunc"), []source{memSource(MemberConfig, "c", 0o644, body)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b[:len(b)*2/3], 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Verify(file)
	var ce *CorruptError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "cannot be read") {
		t.Errorf("truncated archive: %v", err)
	}
}
