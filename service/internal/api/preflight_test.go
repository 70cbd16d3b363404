package api_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/api"
	"github.com/forgebox/forgebox/service/internal/config"
)

// TestPreflightRefusesUp: the DSM package's check (Options.Preflight) refuses up and restart
// with its message and starts no operation; down is never refused, and nothing is asked when
// no check is set.
func TestPreflightRefusesUp(t *testing.T) {
	asked := 0
	h := newHarness(t, harnessOptions{preflight: func(config.Config) error {
		asked++
		return errors.New("the shared folder leads to /var/packages/x: do this")
	}})
	for _, path := range []string{"/api/v1/up", "/api/v1/restart", "/api/v1/components/gitlab/up"} {
		res, body := h.do(h.bearer("POST", path, nil), nil)
		e := expectError(t, res, body, http.StatusPreconditionFailed, api.CodePrecondition)
		if !strings.Contains(e.Error.Message, "do this") {
			t.Errorf("%s: message %q", path, e.Error.Message)
		}
	}
	if asked != 3 {
		t.Errorf("the check was asked %d times", asked)
	}
	res, body := h.do(h.bearer("POST", "/api/v1/down", nil), nil)
	if res.StatusCode == http.StatusPreconditionFailed {
		t.Errorf("down refused: %s", body)
	}
	if asked != 3 {
		t.Error("down asked the check")
	}
	res, body = h.do(h.bearer("GET", "/api/v1/operations", nil), nil)
	if res.StatusCode != 200 || strings.Contains(string(body), `"op":"up"`) {
		t.Errorf("operations after refusals: %d %s", res.StatusCode, body)
	}
}
