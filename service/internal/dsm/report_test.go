package dsm

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestReportHasTheFactsAndNoSecret: the app window's "Download diagnostics" (index.cgi's own
// route) and `forgebox dsm report` hold the DSM facts the package relies on, and none of the
// secrets planted where they could leak: the front secret, a secret file, DSM's cookie and
// SynoToken (in the query, the header and REQUEST_URI), an Authorization header.
func TestReportHasTheFactsAndNoSecret(t *testing.T) {
	f := newFrontFixture(t)
	os.WriteFile(filepath.Join(f.env.DataDir, "secrets.json"), []byte(`{"gitlab_root_password":"PLANTED-ROOT-PW"}`), 0o600)
	os.WriteFile(f.env.StartedMarker(), []byte("x"), 0o644)
	f.env.recordStatus(StatusRunning, "ok")
	recordFact(f.env, "postinst.synopkghelper_exit", "0", "postinst.controller_answering", "false")
	cmDir := filepath.Join(filepath.Dir(f.env.PkgRoot), "ContainerManager")
	os.MkdirAll(cmDir, 0o755)
	os.WriteFile(filepath.Join(cmDir, "INFO"), []byte("package=\"ContainerManager\"\nversion=\"20.10.23-1437\"\n"), 0o644)
	nasRoot := strings.TrimSuffix(f.env.PkgRoot, "/var/packages/forgebox")
	share := filepath.Join(nasRoot, "volume1", "forgebox")
	os.MkdirAll(share, 0o755)
	os.MkdirAll(filepath.Dir(f.env.ShareDir), 0o755)
	os.Symlink(share, f.env.ShareDir)
	os.MkdirAll(filepath.Join(nasRoot, "etc"), 0o755)
	os.WriteFile(filepath.Join(nasRoot, "etc", "synoinfo.conf"), []byte("proxy_enabled=\"yes\"\nhttp_host=\"PLANTED-PROXY-HOST\"\nproxy_pwd=\"PLANTED-PROXY-PW\"\ncompany_title=\"Synology\"\n"), 0o644)

	const script = "/webman/3rdparty/forgebox/index.cgi"
	uri := script + ReportPath + "?SynoToken=tok-admin&x=PLANTED-QUERY"
	w := f.serveCGIEnv(t, map[string]string{"REQUEST_URI": uri, "QUERY_STRING": "SynoToken=tok-admin&x=PLANTED-QUERY",
		"HTTP_COOKIE": "id=admin-session; smid=PLANTED-COOKIE", "HTTP_X_SYNO_TOKEN": "tok-admin", "HTTP_AUTHORIZATION": "Basic PLANTED-AUTH"})
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Disposition"), "attachment;") {
		t.Fatalf("status %d, %v: %s", w.Code, w.Header(), w.Body)
	}
	if f.ctrl.count() > 2 {
		t.Errorf("the report request was passed to the controller")
	}
	fromWindow := w.Body.Bytes()

	var cli bytes.Buffer
	if err := WriteReport(context.Background(), f.env, &cli); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{"window": fromWindow, "cli": cli.Bytes()} {
		for _, secret := range []string{f.secret, "PLANTED", "tok-admin"} {
			if bytes.Contains(body, []byte(secret)) {
				t.Errorf("the %s report holds %q:\n%s", name, secret, body)
			}
		}
		var r Report
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("%s report: %v", name, err)
		}
		cgi := r.CGI
		if name == "cli" {
			cgi = r.CGIRecorded // what index.cgi left for it
		}
		if cgi == nil || cgi.EffectiveUID != os.Geteuid() || cgi.RequestURI != script+ReportPath || cgi.PathInfo != "" ||
			!slices.Contains(cgi.Variables, "HTTP_COOKIE") || !slices.Contains(cgi.Variables, "REQUEST_URI") {
			t.Errorf("%s report CGI facts %+v", name, cgi)
		}
		if r.ContainerManager != "20.10.23-1437" || r.Controller != "answering" || !r.StartedMarker || len(r.RecentStatus) != 1 ||
			r.Facts["postinst.synopkghelper_exit"] != "0" || r.Facts["postinst.controller_answering"] != "false" ||
			!r.Share.IsSymlink || r.Share.Resolved != share || !r.Share.UnderVolume ||
			!slices.Equal(r.DSMProxyKeys, []string{"http_host", "proxy_enabled", "proxy_pwd"}) {
			t.Errorf("%s report: %+v", name, r)
		}
	}
}
