package doctor

import (
	"context"
	"github.com/forgebox/forgebox/service/internal/msg"
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
		out = append(out, newCheck(msg.New("doctor.label.registry", "name", r), OK, msg.New("doctor.registry.notContacted", "route", route(r)), msg.Msg{}))
	}
	tr := download.NewTransport(nil)
	for _, s := range cfg.Stack.RegistryMirrors {
		m, err := download.ParseMirror(s)
		if err != nil {
			out = append(out, newCheck(msg.New("doctor.label.mirror", "name", s), Fail, raw(err.Error()), msg.New("doctor.mirror.correct")))
			continue
		}
		label := msg.New("doctor.label.mirror", "name", m.String())
		status, err := pingRegistry(ctx, tr, m.URL.String())
		switch {
		case err != nil:
			out = append(out, newCheck(label, Warn, msg.New("doctor.mirror.silent", "error", err.Error(), "route", route(m.URL.Host)), msg.New("doctor.mirror.silentFix")))
		case status != http.StatusOK && status != http.StatusUnauthorized:
			out = append(out, newCheck(label, Warn, msg.New("doctor.mirror.notRegistry", "status", status, "route", route(m.URL.Host)), msg.New("doctor.mirror.root")))
		default:
			out = append(out, newCheck(label, OK, msg.New("doctor.mirror.ok", "route", route(m.URL.Host)), msg.Msg{}))
		}
	}
	return out
}

func route(host string) msg.Msg {
	p, from, err := download.ProxyFor(host)
	switch {
	case err != nil:
		return msg.New("doctor.route.badProxy", "error", err.Error())
	case p == "":
		return msg.New("doctor.route.direct")
	case from == "environment":
		return msg.New("doctor.route.proxyEnv", "proxy", p)
	}
	return msg.New("doctor.route.proxyDSM", "proxy", p, "from", from)
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
