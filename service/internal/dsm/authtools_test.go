package dsm

import (
	"bufio"
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

// TestReleaseBuildIgnoresAuthToolOverrides builds forgebox twice, as released and as the tests
// build it, and runs each as index.cgi with FORGEBOX_DSM_AUTHENTICATE_CGI, _LOGIN_CGI and _ID
// naming stand-ins that let an administrator in. The test build uses them and reaches the
// controller; the release build never runs them and lets nobody through.
func TestReleaseBuildIgnoresAuthToolOverrides(t *testing.T) {
	root := spktest.RepoRoot(t)
	dir := t.TempDir()
	build := func(name string, tags ...string) string {
		bin := filepath.Join(dir, name)
		args := []string{"build", "-o", bin}
		if len(tags) > 0 {
			args = append(args, "-tags", strings.Join(tags, ","))
		}
		cmd := exec.Command("go", append(args, "./service/cmd/forgebox")...)
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
		{"release build", build("forgebox-release"), false},
		{"test build", build("forgebox-test", testHooksTag), true},
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
