package download

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/net/http/httpproxy"
)

// NewTransport is the HTTP transport forgebox fetches images with: the proxy settings of the
// environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY, in either case, as the engine reads them) or,
// when neither is set, DSM's own proxy setting (CurrentProxy), read when it is made rather than
// once per process, and the given TLS settings (nil: the system's roots).
func NewTransport(tlsConfig *tls.Config) *http.Transport {
	return newTransport(CurrentProxy().Config, tlsConfig)
}

func newTransport(proxy *httpproxy.Config, tlsConfig *tls.Config) *http.Transport {
	pf := proxy.ProxyFunc()
	return &http.Transport{
		Proxy:                 func(r *http.Request) (*url.URL, error) { return pf(r.URL) },
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		MaxIdleConnsPerHost:   4,
		ForceAttemptHTTP2:     true,
	}
}

// ProxyFor says which proxy, if any, a request to registry (a host[:port]) goes through
// (CurrentProxy): "" for a direct connection; from says where that proxy is set.
func ProxyFor(registry string) (proxy, from string, err error) {
	src := CurrentProxy()
	p, err := proxyFor(src.Config, registry)
	return p, src.From, err
}

func proxyFor(cfg *httpproxy.Config, registry string) (string, error) {
	u, err := cfg.ProxyFunc()(&url.URL{Scheme: "https", Host: registry})
	if err != nil || u == nil {
		return "", err
	}
	// Never show credentials in a proxy URL.
	if u.User != nil {
		u.User = url.User("***")
	}
	return u.String(), nil
}
