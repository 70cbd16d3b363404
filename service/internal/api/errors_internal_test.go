package api

import (
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/advice/advicetest"
)

// TestInternalErrorAdviceOnce: each cause of the advice table, wrapped through the layers,
// reaches the API's error response with its advice said once, as a code too; the layers below
// add none, and a cause forgebox knows nothing about gets none.
func TestInternalErrorAdviceOnce(t *testing.T) {
	for _, tc := range advicetest.Cases() {
		e := classify(tc.Err)
		if tc.Code == "" {
			if e.detail.Advice.Code != "" || strings.Contains(strings.TrimPrefix(e.detail.Message, "internal error: "+tc.Err.Error()), "(") {
				t.Errorf("%s: advice for a cause forgebox knows nothing about: %+v", tc.Name, e.detail)
			}
			continue
		}
		if strings.Contains(tc.Err.Error(), tc.Words) {
			t.Fatalf("%s: the middle layers already give advice: %q", tc.Name, tc.Err)
		}
		if n := strings.Count(e.detail.Message, tc.Words); n != 1 {
			t.Errorf("%s: the response says the advice %d times: %q", tc.Name, n, e.detail.Message)
		}
		if e.detail.Advice.Code != tc.Code {
			t.Errorf("%s: advice code %q, want %s", tc.Name, e.detail.Advice.Code, tc.Code)
		}
	}
}
