package pgprov

import "testing"

func TestQuoteLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"":         "''",
		"secret":   "'secret'",
		"it's":     "'it''s'",
		`a\'; --'`: `'a\''; --'''`,
		"''":       "''''''",
	} {
		if got := QuoteLiteral(in); got != want {
			t.Errorf("QuoteLiteral(%q) = %s, want %s", in, got, want)
		}
	}
}
