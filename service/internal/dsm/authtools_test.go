package dsm

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/spkbuild/spktest"
)

// testHooksTag builds binaries that read the test-only variables (and the upgrade crash hooks).
const testHooksTag = "forgebox_testhooks"

// TestReleaseBuildIgnoresAuthToolOverrides builds forgebox and the small front the package
// ships as index.cgi (forgebox-cgi) twice each, as released and as the tests build them, and
// runs each as index.cgi with FORGEBOX_DSM_AUTHENTICATE_CGI, _LOGIN_CGI and _ID naming
// stand-ins that let an administrator in. The test builds use them and reach the controller;
// the release builds never run them and let nobody through.
func TestReleaseBuildIgnoresAuthToolOverrides(t *testing.T) {
	root := spktest.RepoRoot(t)
	dir := t.TempDir()
	build := func(name, pkg string, tags ...string) string {
		bin := filepath.Join(dir, name)
		args := []string{"build", "-o", bin}
		if len(tags) > 0 {
			args = append(args, "-tags", strings.Join(tags, ","))
		}
		cmd := exec.Command("go", append(args, pkg)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", tags, err, out)
		}
		return bin
	}
	for _, tc := range []struct {
		name      string
		bin       string
		overrides bool
	}{
		{"release build", build("forgebox-release", "./service/cmd/forgebox"), false},
		{"test build", build("forgebox-test", "./service/cmd/forgebox", testHooksTag), true},
		{"release build of forgebox-cgi", build("forgebox-cgi-release", "./service/cmd/forgebox-cgi"), false},
		{"test build of forgebox-cgi", build("forgebox-cgi-test", "./service/cmd/forgebox-cgi", testHooksTag), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFrontFixture(t)
			cmd := exec.Command(tc.bin)
			cmd.Env = []string{
				"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GATEWAY_INTERFACE=CGI/1.1", "SERVER_PROTOCOL=HTTP/1.1",
				"SERVER_NAME=nas.local", "SERVER_PORT=5001", "HTTP_HOST=nas.local:5001", "REMOTE_ADDR=192.0.2.10",
				"REQUEST_METHOD=GET", "SCRIPT_NAME=/webman/3rdparty/forgebox/index.cgi", "PATH_INFO=/api/v1/status",
				"QUERY_STRING=SynoToken=tok-admin", "HTTP_COOKIE=id=admin-session", "STANDIN_LOG=" + f.log,
				EnvPkgRoot + "=" + f.env.PkgRoot, EnvControllerURL + "=" + f.env.ControllerURL,
				EnvAuthenticateCGI + "=" + f.env.AuthenticateCGI, EnvLoginCGI + "=" + f.env.LoginCGI, EnvIDTool + "=" + f.env.IDTool,
			}
			out, err := cmd.Output()
			if err != nil && tc.overrides {
				t.Fatalf("index.cgi: %v\n%s", err, out)
			}
			status := cgiStatus(t, string(out))
			logged, _ := os.ReadFile(f.log)
			ranStandin := strings.Contains(string(logged), "authenticate.cgi")
			switch {
			case tc.overrides && (!ranStandin || f.ctrl.count() != 1 || status != http.StatusOK):
				t.Errorf("test build: stand-in ran %v, %d requests reached the controller, status %d; want the stand-ins used:\n%s",
					ranStandin, f.ctrl.count(), status, out)
			case !tc.overrides && (ranStandin || f.ctrl.count() != 0 || status == http.StatusOK):
				t.Errorf("release build: stand-in ran %v, %d requests reached the controller, status %d; want DSM's tools only:\n%s",
					ranStandin, f.ctrl.count(), status, out)
			}
		})
	}
}

// TestSmallFrontHandsTheReportToForgebox: "Download diagnostics" through the package's
// index.cgi (forgebox-cgi, which has no report of its own) is answered by target/bin/forgebox
// beside it, with the whole report of this request and no secret in it.
func TestSmallFrontHandsTheReportToForgebox(t *testing.T) {
	root := spktest.RepoRoot(t)
	f := newFrontFixture(t)
	target := filepath.Join(f.env.PkgRoot, "target")
	for bin, pkg := range map[string]string{"ui/index.cgi": "./service/cmd/forgebox-cgi", "bin/forgebox": "./service/cmd/forgebox"} {
		cmd := exec.Command("go", "build", "-tags", testHooksTag, "-o", filepath.Join(target, bin), pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	cmd := exec.Command(filepath.Join(target, "ui/index.cgi"))
	cmd.Env = []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GATEWAY_INTERFACE=CGI/1.1", "SERVER_PROTOCOL=HTTP/1.1",
		"HTTP_HOST=nas.local:5001", "REMOTE_ADDR=192.0.2.10", "REQUEST_METHOD=GET",
		"SCRIPT_NAME=/webman/3rdparty/forgebox/index.cgi", "PATH_INFO=" + ReportPath,
		"QUERY_STRING=SynoToken=tok-admin", "HTTP_COOKIE=id=admin-session", "STANDIN_LOG=" + f.log,
		EnvPkgRoot + "=" + f.env.PkgRoot, EnvControllerURL + "=" + f.env.ControllerURL,
		EnvAuthenticateCGI + "=" + f.env.AuthenticateCGI, EnvLoginCGI + "=" + f.env.LoginCGI, EnvIDTool + "=" + f.env.IDTool,
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("index.cgi: %v\n%s", err, out)
	}
	head, body, _ := strings.Cut(string(out), "\r\n\r\n")
	if status := cgiStatus(t, string(out)); status != http.StatusOK || !strings.Contains(head, "Content-Disposition: attachment;") {
		t.Fatalf("status %d:\n%s", status, out)
	}
	var rep Report
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, body)
	}
	if rep.Source != "index.cgi" || rep.CGI == nil || rep.CGI.PathInfo != ReportPath || rep.Controller != "answering" {
		t.Errorf("source %q, cgi %+v, controller %q", rep.Source, rep.CGI, rep.Controller)
	}
	if strings.Contains(body, f.secret) || strings.Contains(body, "tok-admin") || strings.Contains(body, "admin-session") {
		t.Errorf("the report holds a secret:\n%s", body)
	}
}

// cgiStatus reads the status a CGI printed (a Status header, else 200).
func cgiStatus(t *testing.T, out string) int {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			break
		}
		if v, ok := strings.CutPrefix(line, "Status: "); ok {
			code, _, _ := strings.Cut(v, " ")
			n := 0
			for _, c := range code {
				n = n*10 + int(c-'0')
			}
			return n
		}
	}
	return http.StatusOK
}
