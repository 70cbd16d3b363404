package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/msg"
)

// ConfigPage is GET and PUT api/v1/config. The config holds no secrets (they live in the
// secret store), so it is returned whole.
type ConfigPage struct {
	Config   config.Config `json:"config"`
	Path     string        `json:"path"`
	Exists   bool          `json:"exists"`   // false: running on the embedded defaults
	Revision string        `json:"revision"` // send back as If-Match to refuse overwriting a newer file
	// Warnings are valid but dangerous settings (a privileged runner profile), with their keys.
	Warnings []config.FieldError `json:"warnings"`
}

func fileRevision(path string) (string, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "default", false
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8]), true
}

func (s *Server) configPage() ConfigPage {
	path := s.configPath()
	rev, exists := fileRevision(path)
	cfg := s.config()
	return ConfigPage{Config: cfg, Path: path, Exists: exists, Revision: rev, Warnings: cfg.Warnings(nil)}
}

func (s *Server) getConfig(c *gin.Context) {
	page := s.configPage()
	c.Header("ETag", `"`+page.Revision+`"`)
	if c.Query("format") == "toml" {
		b, err := config.Encode(page.Config)
		if err != nil {
			fail(c, err)
			return
		}
		c.Data(http.StatusOK, "application/toml; charset=utf-8", b)
		return
	}
	c.JSON(http.StatusOK, page)
}

// putConfig replaces the config: a JSON object (keys as in GET; keys left out keep their value)
// or, with Content-Type application/toml, a whole config file. It is validated as a file would
// be; when invalid, nothing is written and every problem comes back with its key.
func (s *Server) putConfig(c *gin.Context) {
	body, err := readBody(c)
	if err != nil {
		fail(c, err)
		return
	}
	ctype, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	err = s.updateConfig(c, true, func(cur config.Config) (config.Config, error) {
		if ctype == "application/toml" || ctype == "text/plain" {
			return config.Parse(body) // errors keep their line numbers: they are the caller's lines
		}
		return mergeJSON(cur, body)
	})
	if err != nil {
		fail(c, err)
		return
	}
	page := s.configPage()
	c.Header("ETag", `"`+page.Revision+`"`)
	c.JSON(http.StatusOK, page)
}

// updateConfig applies change to the current config under the write lock, validates the
// result, refuses changes the controller cannot carry out while it runs, and saves it
// atomically. Nothing is written unless every check passes.
func (s *Server) updateConfig(c *gin.Context, requireIfMatch bool, change func(config.Config) (config.Config, error)) error {
	s.cfgWrite.Lock()
	defer s.cfgWrite.Unlock()
	path := s.configPath()
	if path == "" {
		return codedError(http.StatusConflict, CodeConflict, msg.New("api.noConfigPath"))
	}
	// A whole-config save must say which revision it read (If-Match): one sent without could
	// put back settings a save from another tab or script changed in between.
	m := c.GetHeader("If-Match")
	if m == "" && requireIfMatch {
		return codedError(http.StatusPreconditionRequired, CodePreconditionRequired, msg.New("api.ifMatchRequired"))
	}
	if err := s.checkFileUnchanged(path); err != nil {
		return err
	}
	if m != "" && m != "*" {
		if rev, _ := fileRevision(path); strings.Trim(m, `"`) != rev {
			return codedError(http.StatusPreconditionFailed, CodeConflict, msg.New("api.staleRevision"))
		}
	}
	cur := s.config()
	next, err := change(cur)
	if err != nil {
		return err
	}
	// Validate the config as it will be written: what Save stores is what the next start loads.
	src, err := config.Encode(next)
	if err != nil {
		return err
	}
	parsed, err := config.Parse(src)
	if err != nil {
		var list *config.Errors
		if errors.As(err, &list) {
			for i := range list.List {
				list.List[i].Line = 0 // lines of our own encoding, not the caller's
			}
		}
		return err
	}
	// Run with the config as the file will load it, defaults filled in (a profile sent without
	// concurrency gets 1), not with the request's rougher copy.
	next = parsed
	if errs := s.guardChanges(c, cur, next); len(errs) > 0 {
		return &config.Errors{List: errs}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create the config file's directory: %w", err)
	}
	if err := config.Save(path, next); err != nil {
		return err
	}
	s.setConfig(next, path)
	s.log.Info("config saved", "path", path, "user", c.GetString(ctxUser))
	return nil
}

// checkFileUnchanged refuses to save over a config file edited outside forgebox since the
// controller loaded it: the save starts from the controller's copy and rewrites the whole file,
// so it would silently undo that edit and drop its comments. A client's If-Match cannot catch
// this (the controller never read the edit), so the file itself is compared, with or without one.
func (s *Server) checkFileUnchanged(path string) error {
	rev, _ := fileRevision(path)
	s.cfgMu.RLock()
	loaded := s.cfgRev
	s.cfgMu.RUnlock()
	if rev == loaded {
		return nil
	}
	return codedError(http.StatusPreconditionFailed, CodeConfigChangedOnDisk, msg.New("api.changedOnDisk", "path", path))
}

// setConfig makes next the controller's config, as just written to path.
func (s *Server) setConfig(next config.Config, path string) {
	rev, _ := fileRevision(path)
	s.cfgMu.Lock()
	s.cfg = next
	s.cfgRev = rev
	s.cfgMu.Unlock()
	s.mon.invalidate()
}

// guardChanges refuses what would cut the controller off from its stack: a new data dir (the
// secret store, the credentials and the data are there) and renaming a stack that has
// containers (they would be orphaned under the old name).
func (s *Server) guardChanges(c *gin.Context, cur, next config.Config) []config.FieldError {
	var errs []config.FieldError
	if filepath.Clean(next.Stack.DataDir) != filepath.Clean(cur.Stack.DataDir) {
		errs = append(errs, config.NewFieldError("stack.data_dir", 0, msg.New("field.dataDirWeb"), msg.New("hint.dataDirWeb")))
	}
	if next.Stack.Name != cur.Stack.Name {
		for _, r := range s.mon.get(c, true).rows {
			if r.ID != "" {
				errs = append(errs, config.NewFieldError("stack.name", 0, msg.New("field.renameWithContainers"), msg.New("hint.renameWithContainers")))
				break
			}
		}
	}
	return errs
}

// mergeJSON lays the JSON object in body over cur: objects merge key by key, anything else
// (numbers, strings, lists such as runner.profiles) replaces. Unknown keys and wrong types are
// reported by key.
func mergeJSON(cur config.Config, body []byte) (config.Config, error) {
	var in map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil || in == nil {
		return config.Config{}, codedError(http.StatusBadRequest, CodeInvalidRequest, msg.New("api.notConfigObject"))
	}
	base, err := toMap(cur)
	if err != nil {
		return config.Config{}, err
	}
	profileKeys, err := toMap(config.Profile{})
	if err != nil {
		return config.Config{}, err
	}
	var errs []config.FieldError
	mergeMaps(base, in, "", profileKeys, &errs)
	if len(errs) > 0 {
		return config.Config{}, &config.Errors{List: errs}
	}
	merged, _ := json.Marshal(base)
	var next config.Config
	strict := json.NewDecoder(bytes.NewReader(merged))
	strict.DisallowUnknownFields()
	if err := strict.Decode(&next); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return config.Config{}, &config.Errors{List: []config.FieldError{wrongType(jsonFieldKey(te.Field), te)}}
		}
		return config.Config{}, codedError(http.StatusBadRequest, CodeInvalidRequest, msg.New("api.configDecode", "error", msg.Raw(err.Error())))
	}
	return next, nil
}

func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return m, dec.Decode(&m)
}

func mergeMaps(dst, src map[string]any, prefix string, profileKeys map[string]any, errs *[]config.FieldError) {
	for k, v := range src {
		key := strings.TrimPrefix(prefix+"."+k, ".")
		dv, known := dst[k]
		if !known {
			*errs = append(*errs, config.NewFieldError(key, 0, msg.New("field.unknownKey"), allowedKeys(prefix, dst)))
			continue
		}
		sub, srcIsMap := v.(map[string]any)
		dsub, dstIsMap := dv.(map[string]any)
		switch {
		case srcIsMap && dstIsMap:
			mergeMaps(dsub, sub, key, profileKeys, errs)
		case key == "runner.profiles":
			if list, ok := v.([]any); ok {
				for i, item := range list {
					if obj, ok := item.(map[string]any); ok {
						for pk := range obj {
							if _, ok := profileKeys[pk]; !ok {
								*errs = append(*errs, config.NewFieldError(fmt.Sprintf("runner.profiles[%d].%s", i, pk), 0, msg.New("field.unknownKey"), allowedKeys("runner.profiles", profileKeys)))
							}
						}
					}
				}
			}
			dst[k] = v
		default:
			dst[k] = v
		}
	}
}

func allowedKeys(table string, m map[string]any) msg.Msg {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	return config.KeysHint(table, names)
}

var jsonIndex = regexp.MustCompile(`\.(\d+)(\.|$)`)

// jsonFieldKey turns encoding/json's field path ("runner.profiles.1.tags") into the config's
// key form ("runner.profiles[1].tags").
func jsonFieldKey(f string) string {
	return jsonIndex.ReplaceAllString(f, "[$1]$2")
}

// wrongType is encoding/json's type mismatch as a field error: what was sent and what the key
// takes, each a word of the reader's language.
func wrongType(key string, te *json.UnmarshalTypeError) config.FieldError {
	return config.NewFieldError(key, 0, msg.New("field.wrongType", "value", typeWord(te.Value), "want", typeWord(te.Type.Kind().String())), msg.Msg{})
}

// typeWord names a JSON value's type (encoding/json's word for what was sent, or the Go kind a
// key takes) as a message.
func typeWord(kind string) msg.Msg {
	switch strings.Fields(kind + " x")[0] { // "number 1.5" is a number
	case "int", "int64", "uint", "float64", "number":
		return msg.New("type.number")
	case "string":
		return msg.New("type.text")
	case "bool":
		return msg.New("type.bool")
	case "slice", "array":
		return msg.New("type.list")
	case "struct", "map", "object":
		return msg.New("type.object")
	}
	return msg.New("type.other", "kind", msg.Raw(kind))
}

// Profiles.

func (s *Server) listProfiles(c *gin.Context) {
	cfg := s.config()
	c.JSON(http.StatusOK, gin.H{"profiles": cfg.Runner.Profiles, "warnings": cfg.Warnings(nil)})
}

// profileWarnings are the config's warnings about the profile at index i.
func profileWarnings(cfg config.Config, i int) []config.FieldError {
	prefix := fmt.Sprintf("runner.profiles[%d].", i)
	out := []config.FieldError{}
	for _, w := range cfg.Warnings(nil) {
		if strings.HasPrefix(w.Key, prefix) {
			out = append(out, w)
		}
	}
	return out
}

func profileIndex(cfg config.Config, name string) int {
	return slices.IndexFunc(cfg.Runner.Profiles, func(p config.Profile) bool { return p.Name == name })
}

func (s *Server) getProfile(c *gin.Context) {
	cfg := s.config()
	i := profileIndex(cfg, c.Param("name"))
	if i < 0 {
		abort(c, errNoProfile(c.Param("name")))
		return
	}
	c.JSON(http.StatusOK, gin.H{"profile": cfg.Runner.Profiles[i], "index": i, "warnings": profileWarnings(cfg, i)})
}

func errNoProfile(name string) *apiError {
	return codedError(http.StatusNotFound, CodeNotFound, msg.New("api.noProfile", "name", msg.Q(name)))
}

// decodeProfile reads one profile; type errors name the key as it will sit in the config.
func decodeProfile(c *gin.Context, index int) (config.Profile, error) {
	body, err := readBody(c)
	if err != nil {
		return config.Profile{}, err
	}
	var p config.Profile
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return p, &config.Errors{List: []config.FieldError{wrongType(fmt.Sprintf("runner.profiles[%d].%s", index, te.Field), te)}}
		}
		return p, codedError(http.StatusBadRequest, CodeInvalidRequest, msg.New("api.notProfile", "error", msg.Raw(err.Error())))
	}
	if p.Concurrency == 0 {
		p.Concurrency = 1
	}
	return p, nil
}

func (s *Server) createProfile(c *gin.Context) {
	var created config.Profile
	err := s.updateConfig(c, false, func(cur config.Config) (config.Config, error) {
		p, err := decodeProfile(c, len(cur.Runner.Profiles))
		if err != nil {
			return cur, err
		}
		cur.Runner.Profiles = append(slices.Clone(cur.Runner.Profiles), p)
		created = p
		return cur, nil
	})
	if err != nil {
		fail(c, err)
		return
	}
	cfg := s.config()
	c.Header("Location", "profiles/"+created.Name)
	c.JSON(http.StatusCreated, gin.H{"profile": created, "warnings": profileWarnings(cfg, profileIndex(cfg, created.Name))})
}

func (s *Server) updateProfile(c *gin.Context) {
	name := c.Param("name")
	var updated config.Profile
	err := s.updateConfig(c, false, func(cur config.Config) (config.Config, error) {
		i := profileIndex(cur, name)
		if i < 0 {
			return cur, errNoProfile(name)
		}
		p, err := decodeProfile(c, i)
		if err != nil {
			return cur, err
		}
		cur.Runner.Profiles = slices.Clone(cur.Runner.Profiles)
		cur.Runner.Profiles[i] = p
		updated = p
		return cur, nil
	})
	if err != nil {
		fail(c, err)
		return
	}
	cfg := s.config()
	c.JSON(http.StatusOK, gin.H{"profile": updated, "warnings": profileWarnings(cfg, profileIndex(cfg, updated.Name))})
}

func (s *Server) deleteProfile(c *gin.Context) {
	name := c.Param("name")
	err := s.updateConfig(c, false, func(cur config.Config) (config.Config, error) {
		i := profileIndex(cur, name)
		if i < 0 {
			return cur, errNoProfile(name)
		}
		cur.Runner.Profiles = slices.Delete(slices.Clone(cur.Runner.Profiles), i, i+1)
		return cur, nil
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
