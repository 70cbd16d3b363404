package download

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/net/http/httpproxy"
)

// SynoInfoPath is where DSM keeps its system settings, among them the proxy set under Control
// Panel > Network > General > Proxy. A variable so tests read a fixture.
//
// The key names are those of DSM's own WebAPI for that page (SYNO.Core.Network.Proxy "get":
// enable, http_host, http_port, https_host, https_port, enable_different_host, enable_bypass,
// enable_auth, username; seen in public DSM API clients, e.g. N4S4/synology-api
// synology_api/core_sys_info.py proxy_info and a Go DSM client's decoder of that answer) as DSM
// writes them into /etc/synoinfo.conf: proxy_enabled, http_host, http_port, https_host,
// https_port, adv_enabled (a different host for HTTPS), proxy_bypass_local. That file's key names
// are UNVERIFIED on a real DSM (no public source prints them): `forgebox dsm report` lists the
// proxy keys it finds there, and doctor says where the proxy it uses came from.
var SynoInfoPath = "/etc/synoinfo.conf"

// ProxySource is the proxy forgebox's downloads use and where it comes from.
type ProxySource struct {
	Config *httpproxy.Config
	From   string // "environment", SynoInfoPath, or "" when no proxy is set anywhere
}

// proxyEnvNames are the variables the engine and Go read, in both cases.
var proxyEnvNames = []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"}

// CurrentProxy is the environment's proxy when HTTP(S)_PROXY is set (what the engine reads),
// otherwise DSM's own proxy setting when DSM has one switched on, otherwise none. NO_PROXY
// from the environment applies either way.
func CurrentProxy() ProxySource {
	env := httpproxy.FromEnvironment()
	for _, n := range proxyEnvNames {
		if os.Getenv(n) != "" {
			return ProxySource{Config: env, From: "environment"}
		}
	}
	cfg, ok, err := readSynoProxy(SynoInfoPath)
	if err != nil || !ok {
		return ProxySource{Config: env}
	}
	if env.NoProxy != "" {
		cfg.NoProxy = env.NoProxy + "," + cfg.NoProxy
	}
	return ProxySource{Config: cfg, From: SynoInfoPath}
}

// readSynoProxy reads DSM's proxy from a synoinfo.conf (key="value" lines). ok is false when the
// file is absent or the proxy is off.
func readSynoProxy(path string) (*httpproxy.Config, bool, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read DSM's proxy setting: %w", err)
	}
	defer f.Close()
	kv := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		kv[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
	}
	if err := sc.Err(); err != nil {
		return nil, false, fmt.Errorf("read DSM's proxy setting from %s: %w", path, err)
	}
	if !isYes(kv["proxy_enabled"]) || kv["http_host"] == "" {
		return nil, false, nil
	}
	httpProxy := proxyURL(kv["http_host"], kv["http_port"])
	cfg := &httpproxy.Config{HTTPProxy: httpProxy, HTTPSProxy: httpProxy}
	if isYes(kv["adv_enabled"]) && kv["https_host"] != "" {
		cfg.HTTPSProxy = proxyURL(kv["https_host"], kv["https_port"])
	}
	// The engine and forgebox's own control traffic never go through it.
	cfg.NoProxy = "localhost,127.0.0.1,::1"
	if isYes(kv["proxy_bypass_local"]) {
		cfg.NoProxy += ",10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,169.254.0.0/16,.local"
	}
	return cfg, true, nil
}

func proxyURL(host, port string) string {
	if strings.Contains(host, "://") {
		return host
	}
	if port == "" {
		port = "80"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func isYes(v string) bool {
	switch strings.ToLower(v) {
	case "yes", "true", "1", "on":
		return true
	}
	return false
}
