package api_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/forgebox/forgebox/service/internal/api"
)

// publicRoutes are the only routes an anonymous request may use: the health check, the login
// page and the login itself. "/" and "/index.html" answer anonymous visitors with the login page
// and a 401, so they are walked like every other route.
var publicRoutes = map[string]bool{
	"GET /healthz":       true,
	"HEAD /healthz":      true,
	"GET /login":         true,
	"POST /api/v1/login": true,
}

var routeParam = regexp.MustCompile(`[:*][A-Za-z_]+`)

// TestEveryRouteIsGuarded walks gin's route table, so a route added later outside the guarded
// group is caught: each one outside publicRoutes answers 401 to a request with no credentials,
// and each changing one answers 403 to a cross-site request that carries valid credentials.
func TestEveryRouteIsGuarded(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	routes := h.srv.Handler().(*gin.Engine).Routes()
	if len(routes) < 30 {
		t.Fatalf("the route table has %d routes; the walk would prove little", len(routes))
	}
	seen := map[string]bool{}
	for _, rt := range routes {
		key := rt.Method + " " + rt.Path
		seen[key] = true
		path := routeParam.ReplaceAllString(rt.Path, "x")
		changing := rt.Method != http.MethodGet && rt.Method != http.MethodHead && rt.Method != http.MethodOptions
		t.Run(key, func(t *testing.T) {
			if !publicRoutes[key] {
				res, body := h.do(h.req(rt.Method, path, nil), nil)
				if res.StatusCode != http.StatusUnauthorized {
					t.Errorf("no credentials: status %d, want 401; body %.200s", res.StatusCode, body)
				}
				if strings.HasPrefix(rt.Path, "/api/") && res.StatusCode == http.StatusUnauthorized {
					expectError(t, res, body, http.StatusUnauthorized, api.CodeUnauthorized)
				}
			}
			if !changing {
				return
			}
			// Valid credentials a browser would attach (the front's secret, a session cookie)
			// do not make a cross-site change acceptable.
			for name, r := range map[string]*http.Request{
				"Sec-Fetch-Site cross-site": withHeader(h.front(rt.Method, path, nil), "Sec-Fetch-Site", "cross-site"),
				"foreign Origin":            withHeader(h.front(rt.Method, path, nil), "Origin", "https://evil.example"),
				"no CSRF header":            withoutHeader(h.front(rt.Method, path, nil), api.HeaderCSRF),
			} {
				res, body := h.do(r, nil)
				if res.StatusCode != http.StatusForbidden {
					t.Errorf("%s: status %d, want 403; body %.200s", name, res.StatusCode, body)
				}
			}
		})
	}
	for key := range publicRoutes {
		if !seen[key] {
			t.Errorf("public route %s is not in the route table: keep the list current", key)
		}
	}
}
