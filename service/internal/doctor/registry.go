package doctor

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/download"
)

// registryChecks say, for every registry the config's images come from and every mirror, which
// proxy forgebox's downloads go through; each mirror is also asked whether it answers as a
// registry. The origin registries themselves are not contacted: on an offline NAS that is
// expected, and a bundle is the way in.
func registryChecks(ctx context.Context, cfg config.Config, images []string) []Check {
	var out []Check
	regs := map[string]bool{}
	for _, ref := range images {
		if r, err := name.ParseReference(ref); err == nil {
			regs[r.Context().RegistryStr()] = true
		}
	}
	var names []string
	for r := range regs {
		names = append(names, r)
	}
	sort.Strings(names)
	for _, r := range names {
		out = append(out, Check{Name: "registry " + r, Status: OK, Detail: route(r) + " (not contacted)"})
	}
	tr := download.NewTransport(nil)
	for _, s := range cfg.Stack.RegistryMirrors {
		m, err := download.ParseMirror(s)
		if err != nil {
			out = append(out, Check{Name: "mirror " + s, Status: Fail, Detail: err.Error(), Fix: "correct stack.registry_mirrors"})
			continue
		}
		c := Check{Name: "mirror " + m.String()}
		status, err := pingRegistry(ctx, tr, m.URL.String())
		switch {
		case err != nil:
			c.Status, c.Detail = Warn, fmt.Sprintf("does not answer (%v); %s", err, route(m.URL.Host))
			c.Fix = "check the address, or remove it: forgebox falls through to the next mirror and then the registry"
		case status != http.StatusOK && status != http.StatusUnauthorized:
			c.Status, c.Detail = Warn, fmt.Sprintf("answered %d to /v2/, which a registry does not; %s", status, route(m.URL.Host))
			c.Fix = "a mirror's URL is its root, e.g. https://mirror.example"
		default:
			c.Status, c.Detail = OK, fmt.Sprintf("answers as a registry; %s", route(m.URL.Host))
		}
		out = append(out, c)
	}
	return out
}

func route(host string) string {
	p, from, err := download.ProxyFor(host)
	switch {
	case err != nil:
		return fmt.Sprintf("the proxy settings do not parse (%v)", err)
	case p == "":
		return "reached directly (no proxy)"
	case from == "environment":
		return "reached through the proxy " + p + " (from HTTPS_PROXY/HTTP_PROXY)"
	}
	return "reached through the proxy " + p + " (DSM's proxy setting, " + from + ")"
}

func pingRegistry(ctx context.Context, tr http.RoundTripper, base string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v2/", nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
