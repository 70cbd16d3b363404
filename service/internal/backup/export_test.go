package backup

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// WriteFormat1ForTest rewrites a forgebox archive the way forgebox wrote it before format 2:
// GitLab's backup (gitlabTar, which holds the database) in place of the archive's own, no
// database member, format 1. The result is written next to file as <name>-<suffix>.
func WriteFormat1ForTest(file, gitlabTar, suffix string) (string, error) {
	m, err := Verify(file)
	if err != nil {
		return "", err
	}
	var members []source
	tmp, err := os.MkdirTemp("", "format1-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	_, err = walkArchive(file, func(mem Member, r io.Reader) error {
		switch {
		case mem.Path == MemberDatabase:
			return nil
		case strings.HasPrefix(mem.Path, gitlabTarPrefix):
			s, err := fileSource(gitlabTarPrefix+filepath.Base(gitlabTar), mem.What, gitlabTar)
			members = append(members, s)
			return err
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		members = append(members, memSource(mem.Path, mem.What, os.FileMode(mem.Mode), b))
		return nil
	})
	if err != nil {
		return "", err
	}
	m.Format = 1
	m.Name += "-" + suffix
	m.Postgres.DumpClient = ""
	m.GitLab.BackupID = strings.TrimSuffix(filepath.Base(gitlabTar), "_gitlab_backup.tar")
	path, _, err := writeArchive(filepath.Dir(file), m.Name, m, members)
	return path, err
}

// WithSecretForTest rewrites a forgebox archive with one secret of its secret store set to
// value (checksums recomputed, as a backup taken with that secret would have them), written
// next to file as <name>-<suffix>.
func WithSecretForTest(file, secret, value, suffix string) (string, error) {
	m, err := Verify(file)
	if err != nil {
		return "", err
	}
	var members []source
	_, err = walkArchive(file, func(mem Member, r io.Reader) error {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if mem.Path == MemberSecrets {
			s, err := readSecrets(b)
			if err != nil {
				return err
			}
			s[secret] = value
			if b, err = json.Marshal(s); err != nil {
				return err
			}
		}
		members = append(members, memSource(mem.Path, mem.What, os.FileMode(mem.Mode), b))
		return nil
	})
	if err != nil {
		return "", err
	}
	m.Name += "-" + suffix
	path, _, err := writeArchive(filepath.Dir(file), m.Name, m, members)
	return path, err
}
