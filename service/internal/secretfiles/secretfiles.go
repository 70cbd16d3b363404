// Package secretfiles names the data dir's files that hold secrets and says which values in
// them are secret. It is a leaf: config (which writes the files), redact (which masks their
// values) and the DSM app window's front (which reads front.secret on every request, and must
// start fast: service/internal/dsm/front) share it without linking the config parser.
package secretfiles

import (
	"encoding/json"
	"strings"
)

// StoreFile is the secret store's file name inside the data dir.
const StoreFile = "secrets.json"

// Files beside the secret store that other processes read, so they are not in the store.
const (
	// FrontSecret holds the shared secret that the DSM CGI front adds to every request it
	// passes to the controller.
	FrontSecret = "front.secret"
	// AdminToken holds the controller's local admin token, for the CLI and scripts.
	AdminToken = "admin.token"
)

// MetadataSuffix ends the names of stored values that describe a secret rather than being one.
const MetadataSuffix = "_expires"

// StoreValues returns every secret value of the store's contents (name to value), for callers
// that must mask them in output: each plain value, and each string field of a JSON record that
// holds a credential (a runner record's "token"). A record as a whole is never a value to look
// for: a runner token shows up in a log on its own, not inside its record. Metadata kept beside
// a secret (a name ending in MetadataSuffix, such as a token's expiry date) is not secret and
// would mask ordinary text.
func StoreValues(vals map[string]string) []string {
	out := make([]string, 0, len(vals))
	for name, v := range vals {
		if strings.HasSuffix(name, MetadataSuffix) {
			continue
		}
		var record any
		if strings.HasPrefix(strings.TrimSpace(v), "{") && json.Unmarshal([]byte(v), &record) == nil {
			out = credentialLeaves(record, false, out)
			continue
		}
		out = append(out, v)
	}
	return out
}

// credentialLeaves appends the string leaves of a decoded JSON value that sit under a key
// naming a credential.
func credentialLeaves(v any, secret bool, out []string) []string {
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			out = credentialLeaves(child, secret || credentialKey(k), out)
		}
	case []any:
		for _, child := range x {
			out = credentialLeaves(child, secret, out)
		}
	case string:
		if secret && x != "" {
			out = append(out, x)
		}
	}
	return out
}

func credentialKey(k string) bool {
	k = strings.ToLower(k)
	for _, word := range []string{"token", "password", "secret", "key"} {
		if strings.Contains(k, word) {
			return true
		}
	}
	return false
}
