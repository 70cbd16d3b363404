package front

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CGIFacts is what DSM's web server gave index.cgi, for the diagnostics report (package dsm):
// of the CGI environment only the variable names and three path values, never a cookie or token.
type CGIFacts struct {
	EffectiveUID int      `json:"effective_uid"`
	EffectiveGID int      `json:"effective_gid"`
	Groups       []int    `json:"groups"`
	UserName     string   `json:"user_name,omitempty"`
	Variables    []string `json:"variables"` // names only
	PathInfo     string   `json:"path_info"`
	RequestURI   string   `json:"request_uri"` // without its query, which may hold the SynoToken
	ScriptName   string   `json:"script_name"`
	SeenAt       string   `json:"seen_at,omitempty"`
	// Shape fingerprints what recordCGI compares (the uid, the variable names, SCRIPT_NAME,
	// whether PATH_INFO is set), so that a request finds its record current without decoding it.
	Shape string `json:"shape,omitempty"`
}

// cgiFacts is this request's facts, without the user's name (withUserName), which costs a read
// of the user database that a request whose record is unchanged does not need.
func cgiFacts(getenv func(string) string, environ []string) CGIFacts {
	ids := EffectiveIDs()
	f := CGIFacts{EffectiveUID: ids.UID, EffectiveGID: ids.GID, Groups: ids.Groups, Variables: []string{}}
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if k != "" && !slices.Contains(f.Variables, k) {
			f.Variables = append(f.Variables, k)
		}
	}
	slices.Sort(f.Variables)
	f.PathInfo = getenv("PATH_INFO")
	f.RequestURI, _, _ = strings.Cut(getenv("REQUEST_URI"), "?")
	f.ScriptName = getenv("SCRIPT_NAME")
	sum := sha256.Sum256([]byte(fmt.Sprintf("%d\x00%s\x00%s\x00%t", f.EffectiveUID, strings.Join(f.Variables, ","), f.ScriptName, f.PathInfo == "")))
	f.Shape = hex.EncodeToString(sum[:16])
	return f
}

// ProcessFacts is this process's user and groups.
func ProcessFacts() CGIFacts {
	ids := EffectiveIDs()
	return withUserName(CGIFacts{EffectiveUID: ids.UID, EffectiveGID: ids.GID, Groups: ids.Groups, Variables: []string{}})
}

func withUserName(f CGIFacts) CGIFacts {
	if u, err := user.LookupId(strconv.Itoa(f.EffectiveUID)); err == nil {
		f.UserName = u.Username
	}
	return f
}

// recordCGI keeps the shape of the CGI environment in the var dir for `forgebox dsm report`,
// writing only when the shape changed: most requests cost one small read and a search for
// their shape's fingerprint in it. A failure (index.cgi may not be allowed to write there) is
// what the report then shows.
func recordCGI(env Env, f CGIFacts) {
	path := filepath.Join(env.VarDir, CGIRecordName)
	if b, err := readSmall(path); err == nil && bytes.Contains(b, []byte(`"shape": "`+f.Shape+`"`)) {
		return
	}
	f = withUserName(f)
	f.SeenAt = time.Now().UTC().Format(time.RFC3339)
	b, _ := json.MarshalIndent(f, "", "  ")
	os.WriteFile(path, append(b, '\n'), 0o644)
}
