package doctor

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/download"
)

// doctor names the proxy each registry is reached through and where it is set: DSM's proxy
// setting (a fixture of /etc/synoinfo.conf) when HTTP(S)_PROXY is not set, the environment when
// it is.
func TestRegistryChecksNameTheProxyAndItsSource(t *testing.T) {
	for _, n := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"} {
		t.Setenv(n, "")
	}
	old := download.SynoInfoPath
	t.Cleanup(func() { download.SynoInfoPath = old })
	download.SynoInfoPath = filepath.Join("..", "download", "testdata", "synoinfo-proxy.conf")

	detail := func() string {
		checks := registryChecks(context.Background(), config.Default(), []string{"gitlab/gitlab-ce:18.5.0-ce.0"})
		if len(checks) != 1 || checks[0].Name != "registry index.docker.io" {
			t.Fatalf("checks = %+v; want one for Docker Hub", checks)
		}
		return checks[0].Detail
	}
	if d := detail(); !strings.Contains(d, "http://proxy-tls.lan:8443") || !strings.Contains(d, "DSM's proxy setting") || !strings.Contains(d, download.SynoInfoPath) {
		t.Fatalf("detail %q does not name DSM's proxy and where it is set", d)
	}
	t.Setenv("HTTPS_PROXY", "http://env-proxy.lan:8080")
	if d := detail(); !strings.Contains(d, "http://env-proxy.lan:8080") || !strings.Contains(d, "HTTPS_PROXY") {
		t.Fatalf("detail %q does not name the environment's proxy", d)
	}
}
