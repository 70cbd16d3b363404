package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestCheckUpgrade(t *testing.T) {
	cases := []struct {
		flavour, old, new string
		wantErr, wantWarn string
	}{
		{flavourSameersbn, "", "18.5.7", "", ""},
		{flavourSameersbn, "18.5.7", "18.5.7", "", ""},
		{flavourSameersbn, "18.5.1", "18.8.11", "", ""},
		{flavourOmnibus, "18.11.7", "19.2.0", "", ""},
		{flavourSameersbn, "18.8.11", "18.5.7", "only upgrades are allowed", ""},
		{flavourOmnibus, "18.8.11", "18.5.7", "downgrading from 18.8.11 to 18.5.7", ""},
		{flavourOmnibus, "18.2.8", "18.8.11", "skips the required upgrade stop(s) 18.5", ""},
		{flavourSameersbn, "18.2.8", "19.2.0", "", "skips the required upgrade stop(s) 18.5, 18.8, 18.11"},
	}
	for _, c := range cases {
		warn, err := checkUpgrade(c.flavour, c.old, c.new)
		switch {
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s %s -> %s: error %v, want %q", c.flavour, c.old, c.new, err, c.wantErr)
		case c.wantErr == "" && err != nil:
			t.Errorf("%s %s -> %s: %v", c.flavour, c.old, c.new, err)
		case !strings.Contains(warn, c.wantWarn) || (c.wantWarn == "" && warn != ""):
			t.Errorf("%s %s -> %s: warning %q, want %q", c.flavour, c.old, c.new, warn, c.wantWarn)
		}
	}
}

func TestBackupArchiveRoundTrip(t *testing.T) {
	at := time.Date(2026, 8, 29, 3, 30, 0, 0, time.UTC)
	tables := map[string]json.RawMessage{"standin_users": json.RawMessage(`[{"id":1,"username":"root"}]`), "batched_background_migrations": json.RawMessage(`[]`)}
	var buf bytes.Buffer
	if err := writeBackupArchive(&buf, backupInformation{GitLabVersion: "18.5.7", BackupCreatedAt: at, InstallationType: flavourOmnibus}, tables); err != nil {
		t.Fatal(err)
	}
	info, got, err := readBackupArchive(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if info.GitLabVersion != "18.5.7" || !info.BackupCreatedAt.Equal(at) || info.InstallationType != flavourOmnibus {
		t.Errorf("info %+v", info)
	}
	if len(got) != 2 || string(got["standin_users"]) != `[{"id":1,"username":"root"}]` {
		t.Errorf("tables %v", got)
	}
	if _, _, err := readBackupArchive(strings.NewReader("not a tar")); err == nil {
		t.Error("junk accepted")
	}
	for _, id := range []string{"1788000000_2026_08_29_18.5.7", "1788000000_2026_08_29_18.5.7-ee"} {
		if !backupIDPattern.MatchString(id) {
			t.Errorf("%s refused", id)
		}
	}
	for _, id := range []string{"../x", "1788000000_2026_08_29", "x_gitlab_backup.tar"} {
		if backupIDPattern.MatchString(id) {
			t.Errorf("%s accepted", id)
		}
	}
}

func TestRakeArgs(t *testing.T) {
	tasks, vars := rakeArgs([]string{"gitlab:backup:restore", "BACKUP=1_2026_08_29_18.5.7", "force=yes", "RAILS_ENV=production"})
	if len(tasks) != 1 || tasks[0] != "gitlab:backup:restore" || vars["BACKUP"] != "1_2026_08_29_18.5.7" || vars["force"] != "yes" || vars["RAILS_ENV"] != "production" {
		t.Errorf("%v %v", tasks, vars)
	}
}
