package testenv

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/forgebox/forgebox/service/internal/config"
)

// SecretLeaves reads the secret store as it is on disk and returns each secret leaf value:
// plain values, and the token inside each runner record (kept as JSON, so the record as a whole
// never shows up in output and searching for it would find nothing). The admin token's expiry
// date, kept beside it, is not a secret. The leak tests search every output for these; they read
// the file themselves rather than ask the redact package, which is what they check.
func SecretLeaves(t testing.TB, dataDir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, config.SecretsFile))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var out []string
	for name, v := range m {
		switch {
		case strings.HasSuffix(name, "_expires"):
		case strings.HasPrefix(name, "runner/"):
			var rec struct{ Token string }
			if err := json.Unmarshal([]byte(v), &rec); err != nil || !strings.HasPrefix(rec.Token, "glrt-") {
				t.Fatalf("runner record %s: token %q, %v", name, rec.Token, err)
			}
			out = append(out, rec.Token)
		default:
			out = append(out, v)
		}
	}
	return out
}
