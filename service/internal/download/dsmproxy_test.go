package download

import (
	"testing"
)

func clearProxyEnv(t *testing.T) {
	for _, n := range append(proxyEnvNames, "NO_PROXY", "no_proxy") {
		t.Setenv(n, "")
	}
}

// With no HTTP(S)_PROXY, DSM's proxy setting is used: HTTPS registries through its HTTPS host,
// local addresses direct when DSM bypasses them; the environment, when set, wins.
func TestDSMProxySetting(t *testing.T) {
	clearProxyEnv(t)
	old := SynoInfoPath
	t.Cleanup(func() { SynoInfoPath = old })

	SynoInfoPath = "testdata/synoinfo-proxy.conf"
	p, from, err := ProxyFor("registry-1.docker.io")
	if err != nil || p != "http://proxy-tls.lan:8443" || from != SynoInfoPath {
		t.Fatalf("ProxyFor = %q from %q (%v); want DSM's HTTPS proxy from %s", p, from, err, SynoInfoPath)
	}
	if p, _, _ := ProxyFor("192.168.1.5:5000"); p != "" {
		t.Fatalf("a local mirror goes through %q; DSM bypasses local addresses", p)
	}

	SynoInfoPath = "testdata/synoinfo-proxy-off.conf"
	if p, from, _ := ProxyFor("registry-1.docker.io"); p != "" || from != "" {
		t.Fatalf("DSM's proxy is off, yet ProxyFor = %q from %q", p, from)
	}
	SynoInfoPath = "testdata/no-such-file.conf"
	if p, _, err := ProxyFor("registry-1.docker.io"); p != "" || err != nil {
		t.Fatalf("no synoinfo.conf (not a DSM): ProxyFor = %q, %v; want direct", p, err)
	}

	SynoInfoPath = "testdata/synoinfo-proxy.conf"
	t.Setenv("HTTPS_PROXY", "http://env-proxy.lan:8080")
	if p, from, _ := ProxyFor("registry-1.docker.io"); p != "http://env-proxy.lan:8080" || from != "environment" {
		t.Fatalf("HTTPS_PROXY set: ProxyFor = %q from %q; the environment wins over DSM's setting", p, from)
	}
}
