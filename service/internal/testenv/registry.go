package testenv

import (
	"os"
	"testing"
)

// RegistryBinary is the distribution registry built by testimages/registry.sh (named in
// FORGEBOX_TEST_REGISTRY_BIN by the test command), or a skip (a failure under
// FORGEBOX_REQUIRE_ENGINE=1).
func RegistryBinary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("FORGEBOX_TEST_REGISTRY_BIN")
	if bin == "" {
		missing(t, "FORGEBOX_TEST_REGISTRY_BIN is not set (testimages/registry.sh builds the registry)")
	}
	if _, err := os.Stat(bin); err != nil {
		missing(t, "the test registry is missing: "+err.Error())
	}
	return bin
}
