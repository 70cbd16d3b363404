package advice

import (
	"errors"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/advice/advicetest"
)

// TestAdviceAppearsOnce: a storage cause wrapped by several layers gets its advice exactly
// once at the edge, and an error with no known cause gets none.
func TestAdviceAppearsOnce(t *testing.T) {
	cases := advicetest.Cases()
	top := cases[0].Err
	cases = append(cases,
		advicetest.Case{Name: "nil"},
		advicetest.Case{Name: "already explained", Err: errors.New(Explain(top))}, // a string that says it once is not told again
	)
	for _, tc := range cases {
		got := Explain(tc.Err)
		m, ok := For(tc.Err)
		switch {
		case tc.Code != "" && (!ok || m.Code != tc.Code):
			t.Errorf("%s: advice %q, want %s", tc.Name, m.Code, tc.Code)
		case tc.Code != "" && strings.Count(got, tc.Words) != 1:
			t.Errorf("%s: %q has the advice %d times, want once", tc.Name, got, strings.Count(got, tc.Words))
		case tc.Code == "" && tc.Err != nil && got != tc.Err.Error():
			t.Errorf("%s: %q got advice it should not have", tc.Name, got)
		}
	}
}
