package dsm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/forgebox/forgebox/service/internal/buildinfo"
	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/dsm/front"
)

// The diagnostics report: one file with every DSM fact this package relies on and that no
// public source settles (spk/README.md, "Unverified"; shared research audit-spk.md, "What
// cannot be known without a real DSM"). `forgebox dsm report` writes it, and the app window's
// "Download diagnostics" gets it from index.cgi (GET index.cgi/_dsm/report), which adds the
// facts of its own request. It never holds a secret: no cookie, token, password or secret
// file's content, and of the CGI environment only the variable names and three path values.

// Files the scripts and index.cgi leave in the var dir for the report, and index.cgi's route.
const (
	FactsFileName = "dsm-facts.json" // what the scripts saw (postinst, preinst)
	CGIRecordName = front.CGIRecordName
	ReportPath    = front.ReportPath
)

// CGIFacts is what DSM's web server gave index.cgi.
type CGIFacts = front.CGIFacts

// Report is the diagnostics file.
type Report struct {
	GeneratedAt      string            `json:"generated_at"`
	ForgeboxVersion  string            `json:"forgebox_version"`
	Source           string            `json:"source"` // "forgebox dsm report" or "index.cgi"
	Process          CGIFacts          `json:"process"`
	CGI              *CGIFacts         `json:"cgi,omitempty"`          // this request (index.cgi)
	CGIRecorded      *CGIFacts         `json:"cgi_recorded,omitempty"` // the last shape index.cgi recorded
	DSMVersion       map[string]string `json:"dsm_version,omitempty"`
	ContainerManager string            `json:"container_manager_version,omitempty"`
	Docker           json.RawMessage   `json:"docker,omitempty"` // the controller's view of the engine
	Controller       string            `json:"controller"`       // "answering" or why not
	Share            ShareFacts        `json:"share"`
	PortConfig       map[string]string `json:"port_config"`
	Facts            map[string]string `json:"script_facts"`   // postinst, preinst: tool exit codes, controller at postinst
	DSMProxyKeys     []string          `json:"dsm_proxy_keys"` // names (never values) of synoinfo.conf's proxy-looking keys
	StartedMarker    bool              `json:"started_marker"`
	RecentStatus     []string          `json:"recent_status"`
	Problems         []string          `json:"problems,omitempty"` // what could not be read, and why
}

// ShareFacts is where the data share leads.
type ShareFacts struct {
	Path        string       `json:"path"`
	IsSymlink   bool         `json:"is_symlink"`
	Resolved    string       `json:"resolved,omitempty"`
	UnderVolume bool         `json:"under_volume"`
	Record      *ShareRecord `json:"record,omitempty"` // what start found
}

// recordFact adds facts to the var dir's facts file. Best effort: preinst may run before the
// var dir exists, and a fact must never fail a script.
func recordFact(env Env, kv ...string) {
	if _, err := os.Stat(env.VarDir); err != nil {
		return
	}
	path := filepath.Join(env.VarDir, FactsFileName)
	facts := map[string]string{}
	if b, err := os.ReadFile(path); err == nil {
		json.Unmarshal(b, &facts)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		facts[kv[i]] = kv[i+1]
	}
	b, _ := json.MarshalIndent(facts, "", "  ")
	config.WriteFileAtomic(path, append(b, '\n'), 0o644)
}

// BuildReport gathers the report. cgi is this request's facts when index.cgi asks, else nil.
func BuildReport(ctx context.Context, env Env, source string, cgi *CGIFacts) Report {
	r := Report{GeneratedAt: time.Now().UTC().Format(time.RFC3339), ForgeboxVersion: buildinfo.Version, Source: source,
		Process: front.ProcessFacts(), CGI: cgi, Facts: map[string]string{}, PortConfig: map[string]string{}, RecentStatus: []string{}}
	problem := func(what string, err error) { r.Problems = append(r.Problems, fmt.Sprintf("%s: %v", what, err)) }

	if b, err := os.ReadFile(filepath.Join(env.VarDir, CGIRecordName)); err == nil {
		var f CGIFacts
		if json.Unmarshal(b, &f) == nil {
			r.CGIRecorded = &f
		}
	} else {
		problem("index.cgi's record (it writes one on each request it checks with DSM, if it may write the var dir)", err)
	}
	root := hostRoot(env.ShareDir)
	if v, err := keyValues(filepath.Join(root, "/etc.defaults/VERSION")); err == nil {
		r.DSMVersion = map[string]string{}
		for _, k := range []string{"productversion", "majorversion", "minorversion", "buildnumber", "smallfixnumber"} {
			if v[k] != "" {
				r.DSMVersion[k] = v[k]
			}
		}
	} else {
		problem("DSM version", err)
	}
	if v, err := keyValues(filepath.Join(filepath.Dir(env.PkgRoot), "ContainerManager", "INFO")); err == nil {
		r.ContainerManager = v["version"]
	} else {
		problem("Container Manager version", err)
	}

	hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	c := NewController(env, "diagnostics")
	if err := c.Healthy(hctx); err != nil {
		r.Controller = "not answering: " + err.Error()
	} else {
		r.Controller = "answering"
		var st struct {
			Engine json.RawMessage `json:"engine"`
		}
		if err := c.do(hctx, http.MethodGet, "/api/v1/status", &st); err != nil {
			problem("Docker version (the controller's status)", err)
		} else {
			r.Docker = st.Engine
		}
	}
	cancel()

	r.Share.Path = env.ShareDir
	if fi, err := os.Lstat(env.ShareDir); err == nil {
		r.Share.IsSymlink = fi.Mode()&os.ModeSymlink != 0
		if res, err := filepath.EvalSymlinks(env.ShareDir); err == nil {
			r.Share.Resolved = res
			r.Share.UnderVolume = UnderVolume(env.ShareDir, res)
		}
	} else {
		problem("the share", err)
	}
	if b, err := os.ReadFile(filepath.Join(env.VarDir, ShareRecordName)); err == nil {
		var rec ShareRecord
		if json.Unmarshal(b, &rec) == nil {
			r.Share.Record = &rec
		}
	}

	sc := filepath.Join(env.TargetDir(), "port_conf", PackageName+".sc")
	if b, err := os.ReadFile(sc); err == nil {
		r.PortConfig["package_file_ports"] = strings.Join(dstPortsLine.FindAllString(string(b), -1), " ")
	} else {
		problem("the package's port-config file", err)
	}
	dsmCopy := filepath.Join(root, "/usr/local/etc/service.d", PackageName+".sc")
	if b, err := os.ReadFile(dsmCopy); err == nil {
		r.PortConfig["dsm_copy_ports"] = strings.Join(dstPortsLine.FindAllString(string(b), -1), " ")
	} else {
		r.PortConfig["dsm_copy_ports"] = "unreadable: " + err.Error()
	}

	if b, err := os.ReadFile(filepath.Join(env.VarDir, FactsFileName)); err == nil {
		json.Unmarshal(b, &r.Facts)
	} else {
		problem("the scripts' facts", err)
	}
	// Which keys DSM keeps its proxy under is not in any public source (download.SynoInfoPath):
	// the names say it, the values (hosts, a password) stay out.
	r.DSMProxyKeys = []string{}
	if v, err := keyValues(filepath.Join(root, "/etc/synoinfo.conf")); err == nil {
		for k := range v {
			if strings.Contains(k, "proxy") || strings.HasSuffix(k, "_host") || strings.HasSuffix(k, "_port") || strings.HasPrefix(k, "adv_") {
				r.DSMProxyKeys = append(r.DSMProxyKeys, k)
			}
		}
		sort.Strings(r.DSMProxyKeys)
	} else {
		problem("DSM's proxy setting (/etc/synoinfo.conf)", err)
	}
	_, err := os.Stat(env.StartedMarker())
	r.StartedMarker = err == nil
	if b, err := os.ReadFile(env.StatusLog()); err == nil {
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if l != "" {
				r.RecentStatus = append(r.RecentStatus, l)
			}
		}
	}
	return r
}

// Encode writes the report as indented JSON, with any occurrence of the front secret masked:
// a last guard, since nothing above reads a secret.
func (r Report) Encode(w io.Writer, env Env) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if s, err := FrontSecret(env.DataDir); err == nil && len(s) >= 8 {
		b = bytes.ReplaceAll(b, []byte(s), []byte("[masked]"))
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// keyValues reads a file of key="value" lines (DSM's VERSION and INFO).
func keyValues(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok {
			out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return out, sc.Err()
}

// WriteReport is `forgebox dsm report`.
func WriteReport(ctx context.Context, env Env, w io.Writer) error {
	return BuildReport(ctx, env, "forgebox dsm report", nil).Encode(w, env)
}

// report answers index.cgi's "Download diagnostics" (front.Front.Report): served by the front
// itself, so that it works while the controller does not answer, with the facts of this very
// request.
func report(env Env) func(w front.ResponseWriter, r *front.Request, facts CGIFacts) {
	return func(w front.ResponseWriter, r *front.Request, facts CGIFacts) {
		rep := BuildReport(r.Context, env, "index.cgi", &facts)
		var b bytes.Buffer
		if err := rep.Encode(&b, env); err != nil {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusInternalServerError)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "report", "message": "cannot write the diagnostics: " + err.Error()}})
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="forgebox-dsm-report-`+time.Now().UTC().Format("20060102-150405")+`.json"`)
		w.Header().Set("Cache-Control", "no-store")
		w.Write(b.Bytes())
	}
}
