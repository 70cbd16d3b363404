package dsm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/forgebox/forgebox/service/internal/config"
)

// Answers are the install wizard's answers (spk/wizard/install_uifile). DSM hands each field's
// key to preinst and postinst as an environment variable: the text for text fields, "true" or
// "false" for radio buttons and check boxes.
type Answers struct {
	Host        string // empty: this NAS's host name
	HTTPPort    string
	SSHPort     string
	Flavour     string // sameersbn or omnibus
	Memory      string // small or standard
	AdminEmail  string
	LowMemoryOK bool
	Mirrors     []string // nil: keep the config's
	PullVia     string   // auto, forgebox or engine; empty: keep the config's
}

// The wizard's keys.
const (
	KeyHost             = "wizard_gitlab_host"
	KeyHTTPPort         = "wizard_http_port"
	KeySSHPort          = "wizard_ssh_port"
	KeyFlavourSameersbn = "wizard_flavour_sameersbn"
	KeyFlavourOmnibus   = "wizard_flavour_omnibus"
	KeyMemorySmall      = "wizard_memory_small"
	KeyMemoryStandard   = "wizard_memory_standard"
	KeyAdminEmail       = "wizard_admin_email"
	KeyLowMemoryOK      = "wizard_low_memory_ok"
	KeyMirrors          = "wizard_registry_mirrors"
	KeyPullViaAuto      = "wizard_pull_via_auto"
	KeyPullViaForgebox  = "wizard_pull_via_forgebox"
	KeyPullViaEngine    = "wizard_pull_via_engine"
	KeyKeepData         = "wizard_keep_data"
	KeyDeleteData       = "wizard_delete_data"
	KeyRemoveImages     = "wizard_remove_images"
)

// InstallAnswers reads the install wizard's answers from the environment. Radio groups come as
// one "true" among their keys; none (an old wizard, a silent install) leaves the field empty,
// and the config keeps what it has.
func InstallAnswers(getenv func(string) string) Answers {
	a := Answers{
		Host:        strings.TrimSpace(getenv(KeyHost)),
		HTTPPort:    strings.TrimSpace(getenv(KeyHTTPPort)),
		SSHPort:     strings.TrimSpace(getenv(KeySSHPort)),
		AdminEmail:  strings.TrimSpace(getenv(KeyAdminEmail)),
		LowMemoryOK: getenv(KeyLowMemoryOK) == "true",
	}
	switch {
	case getenv(KeyFlavourOmnibus) == "true":
		a.Flavour = "omnibus"
	case getenv(KeyFlavourSameersbn) == "true":
		a.Flavour = "sameersbn"
	}
	if m := strings.TrimSpace(getenv(KeyMirrors)); m != "" {
		a.Mirrors = strings.FieldsFunc(m, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
	}
	switch {
	case getenv(KeyPullViaForgebox) == "true":
		a.PullVia = "forgebox"
	case getenv(KeyPullViaEngine) == "true":
		a.PullVia = "engine"
	case getenv(KeyPullViaAuto) == "true":
		a.PullVia = "auto"
	}
	switch {
	case getenv(KeyMemoryStandard) == "true":
		a.Memory = "standard"
	case getenv(KeyMemorySmall) == "true":
		a.Memory = "small"
	}
	return a
}

// fieldOfKey names the wizard field behind a config key, for messages the user reads after the
// wizard has closed.
var fieldOfKey = map[string]string{
	"gitlab.host":            "field.host",
	"gitlab.http_port":       "field.http_port",
	"gitlab.ssh_port":        "field.ssh_port",
	"gitlab.flavour":         "field.flavour",
	"gitlab.memory":          "field.memory",
	"gitlab.admin_email":     "field.admin_email",
	"stack.registry_mirrors": "field.mirrors",
	"stack.pull_via":         "field.pull_via",
}

// Problem is one thing wrong with the answers, said in the wizard's words.
type Problem struct {
	Field string // message key of the wizard field, or "" for the config as a whole
	Key   string // the config key
	Msg   string
	Hint  string
}

// ProblemsError lists what is wrong with the answers or the config they make.
type ProblemsError struct{ List []Problem }

func (e *ProblemsError) Error() string {
	parts := make([]string, len(e.List))
	for i, p := range e.List {
		parts[i] = p.Key + ": " + p.Msg
	}
	return strings.Join(parts, "; ")
}

// BuildConfig makes the config an install writes: the existing one when the var dir kept one
// from an earlier installation (so its secrets, data and hand edits carry over), else the
// defaults, with DSM's paths and the wizard's answers on top. host is what an empty host answer
// becomes. The result is checked by the config package's own validation; a problem comes back
// as a *ProblemsError naming the wizard field.
func BuildConfig(env Env, a Answers, host string) (config.Config, bool, error) {
	c, existed, err := LoadOrDefault(env)
	if err != nil {
		return config.Config{}, existed, err
	}
	var probs []Problem
	port := func(key, field, v string, dst *int) {
		if v == "" {
			return
		}
		p, err := strconv.Atoi(v)
		if err != nil {
			probs = append(probs, Problem{Field: field, Key: key, Msg: fmt.Sprintf("%q is not a number", v), Hint: "a port from 1 to 65535"})
			return
		}
		*dst = p
	}
	port("gitlab.http_port", "field.http_port", a.HTTPPort, &c.GitLab.HTTPPort)
	port("gitlab.ssh_port", "field.ssh_port", a.SSHPort, &c.GitLab.SSHPort)
	switch {
	case a.Host != "":
		c.GitLab.Host = a.Host
	case c.GitLab.Host == "":
		// The config's empty host means "this machine's name", which inside the controller's
		// container would be the container's: pin the NAS's own name here.
		c.GitLab.Host = host
	}
	if a.Flavour != "" && a.Flavour != c.GitLab.Flavour {
		c.GitLab.Flavour = a.Flavour
		// Each flavour has its own image; a kept image of the other flavour would not fit.
		c.GitLab.Image = FlavourImage(a.Flavour)
	}
	if a.Memory != "" {
		c.GitLab.Memory = a.Memory
	}
	if a.AdminEmail != "" {
		c.GitLab.AdminEmail = a.AdminEmail
	}
	if a.Mirrors != nil {
		c.Stack.RegistryMirrors = a.Mirrors
	}
	if a.PullVia != "" {
		c.Stack.PullVia = a.PullVia
	}
	adoptGitLabDir(env, &c)
	if len(probs) > 0 {
		return config.Config{}, existed, &ProblemsError{List: probs}
	}
	if err := Check(c); err != nil {
		return config.Config{}, existed, err
	}
	return c, existed, nil
}

// adoptGitLabDir moves a config of an earlier version, whose GitLab data is in the share, to
// the var dir; the controller moves the data itself at the next up (MoveLegacyGitLabData). It
// says whether it changed c.
func adoptGitLabDir(env Env, c *config.Config) bool {
	if c.Stack.GitLabDir != "" || filepath.Clean(c.ShareDir()) != filepath.Clean(env.ShareDir) {
		return false // already moved, or a share of the user's choosing: leave it
	}
	c.Stack.GitLabDir = env.GitLabDir
	return true
}

// FlavourImage is the GitLab image a flavour starts on: the config package's table of default
// images.
func FlavourImage(flavour string) string { return config.FlavourImage(flavour) }

// LoadOrDefault reads the config file of the var dir, or makes the defaults with DSM's paths
// when there is none. A file that exists but does not load is an error: starting over would
// throw away the user's settings.
func LoadOrDefault(env Env) (config.Config, bool, error) {
	c, err := config.Load(env.ConfigFile)
	switch {
	case err == nil:
		return c, true, nil
	case errors.Is(err, fs.ErrNotExist):
		c = config.Default()
		c.Stack.DataDir = env.DataDir
		c.Stack.ShareDir = env.ShareDir
		c.Stack.GitLabDir = env.GitLabDir
		return c, false, nil
	}
	return config.Config{}, true, err
}

// Check validates c as config.Save will, turning the config package's errors into problems.
func Check(c config.Config) error {
	src, err := config.Encode(c)
	if err != nil {
		return err
	}
	if _, err := config.Parse(src); err != nil {
		return asProblems(err)
	}
	return nil
}

func asProblems(err error) error {
	var ce *config.Errors
	if !errors.As(err, &ce) {
		return err
	}
	pe := &ProblemsError{}
	for _, fe := range ce.List {
		pe.List = append(pe.List, Problem{Field: fieldOfKey[fe.Key], Key: fe.Key, Msg: fe.Msg, Hint: fe.Hint})
	}
	return pe
}

// NASHostName is the host name to put in clone URLs when the wizard left it empty: the NAS's
// own name, if it is one other machines could use.
func NASHostName() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	h = strings.TrimSpace(h)
	c := config.Default()
	c.GitLab.Host = h
	if h == "" || Check(c) != nil {
		return ""
	}
	return h
}
