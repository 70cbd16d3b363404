package spkbuild

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"

	"github.com/BurntSushi/toml"

	"github.com/forgebox/forgebox/service/internal/config"
)

// Paths inside target (package.tgz) that the templates and DSM refer to.
const (
	ImageFile  = "controller-image.tar.gz" // conf/resource docker-project preload-image
	ComposeDir = "compose"                 // conf/resource docker-project projects[].path
	BinaryPath = "bin/forgebox"
	CGIPath    = "index.cgi" // under the UI dir: the small front binary (forgebox-cgi)
)

// Values fill the templates in conf/, spk/compose/ and spk/wizard/. The [[ ]] delimiters keep
// clear of the {{ }} that DSM's workers read as wizard placeholders, and of JSON and JavaScript.
type Values struct {
	Spec
	PackageVersion      string
	Arch                string
	ImageFile           string
	ComposeDir          string
	ControllerImage     string // name:tag, the tag being the package version
	ControllerContainer string
	ControllerPort      int
	PkgRoot             string // /var/packages/<package>
	VarDir              string // its var: config, secrets, PostgreSQL and Redis data
	ShareDir            string // the data share, through the symlink DSM makes since 7.0-41201
	HTTPPort, SSHPort   int
	// The install wizard's flavour choice, from the config package's table of default images for
	// the package's arch: armv8 starts on omnibus and offers no sameersbn (built for amd64 only).
	DefaultFlavour string
	SameersbnRuns  bool
}

// NewValues derives the template values for one package version and arch.
func NewValues(s Spec, version string, arch Arch) Values {
	root := "/var/packages/" + s.Package
	return Values{
		Spec:                s,
		PackageVersion:      version,
		Arch:                arch.DSM,
		ImageFile:           ImageFile,
		ComposeDir:          ComposeDir,
		ControllerImage:     s.Controller.Image + ":" + version,
		ControllerContainer: s.Controller.Container,
		ControllerPort:      s.Controller.Port,
		PkgRoot:             root,
		VarDir:              root + "/var",
		ShareDir:            root + "/shares/" + s.Share,
		HTTPPort:            s.GitLab.HTTPPort,
		SSHPort:             s.GitLab.SSHPort,
		DefaultFlavour:      config.DefaultFlavour(arch.OCI),
		SameersbnRuns:       config.FlavourRunsOn("sameersbn", arch.OCI),
	}
}

// renderFile renders one template file of the repository.
func renderFile(root, rel string, v Values, funcs template.FuncMap) ([]byte, error) {
	src, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	t, err := template.New(rel).Delims("[[", "]]").Option("missingkey=error").Funcs(funcs).Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", rel, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return nil, fmt.Errorf("template %s: %w", rel, err)
	}
	return b.Bytes(), nil
}

// renderJSON renders a JSON template and checks that the result is JSON, reformatted with a
// two-space indent so the file in the package reads well whatever the template's spacing.
func renderJSON(root, rel string, v Values, funcs template.FuncMap) ([]byte, error) {
	out, err := renderFile(root, rel, v, funcs)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := json.Indent(&b, out, "", "  "); err != nil {
		return nil, fmt.Errorf("%s does not render to JSON: %w", rel, err)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// RenderPrivilege renders conf/privilege: run as the package user (mandatory on DSM 7).
func RenderPrivilege(root string, v Values) ([]byte, error) {
	return renderJSON(root, "conf/privilege", v, nil)
}

// RenderResource renders conf/resource: port-config, data-share and docker-project, the last one
// in the syntax of the Synology developer guide, "Resource Acquisition > Docker Project"
// (help.synology.com/developer-guide/resource_acquisition/docker-project.html): "preload-image"
// names the image tarball relative to target, and each project names the directory of its
// compose.yaml, relative to target.
func RenderResource(root string, v Values) ([]byte, error) {
	return renderJSON(root, "conf/resource", v, nil)
}

// RenderPortConfig renders the port-config file with the default GitLab ports; postinst writes
// the wizard's ports into the installed copy.
func RenderPortConfig(root string, v Values) ([]byte, error) {
	return renderFile(root, "conf/"+v.Package+".sc", v, nil)
}

// RenderCompose renders the controller's compose project.
func RenderCompose(root string, v Values) ([]byte, error) {
	return renderFile(root, "spk/compose/compose.yaml", v, nil)
}

// wizardTexts reads spk/wizard/texts.toml: one table of strings per DSM language.
func wizardTexts(root string) (map[string]map[string]string, error) {
	path := filepath.Join(root, "spk/wizard/texts.toml")
	var texts map[string]map[string]string
	if _, err := toml.DecodeFile(path, &texts); err != nil {
		return nil, fmt.Errorf("wizard texts: %w", err)
	}
	enu := texts["enu"]
	if len(enu) == 0 {
		return nil, fmt.Errorf("%s: no [enu] table", path)
	}
	for lang, t := range texts {
		for k := range t {
			if _, ok := enu[k]; !ok {
				return nil, fmt.Errorf("%s: [%s] %q is not in [enu]", path, lang, k)
			}
		}
	}
	return texts, nil
}

// WizardLangs are the languages the wizards come in; "enu" is the default file.
func WizardLangs(root string) ([]string, error) {
	texts, err := wizardTexts(root)
	if err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(texts)), nil
}

// RenderWizard renders WIZARD_UIFILES/<name> (install_uifile or uninstall_uifile) in one
// language. A string missing in that language falls back to English.
func RenderWizard(root, name, lang string, v Values) ([]byte, error) {
	texts, err := wizardTexts(root)
	if err != nil {
		return nil, err
	}
	repl := strings.NewReplacer("{share}", v.Share, "{package}", v.Package)
	funcs := template.FuncMap{
		"t": func(key string) (string, error) {
			s, ok := texts[lang][key]
			if !ok {
				s, ok = texts["enu"][key]
			}
			if !ok {
				return "", fmt.Errorf("no wizard text %q", key)
			}
			return jsonString(repl.Replace(s)), nil
		},
		"portFn":    func() string { return jsonString(portValidatorJS(texts, lang)) },
		"hostFn":    func() string { return jsonString(hostValidatorJS(texts, lang)) },
		"mirrorsFn": func() string { return jsonString(mirrorsValidatorJS(texts, lang)) },
	}
	return renderJSON(root, "spk/wizard/"+name, v, funcs)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// validatorText is a wizard message for a JavaScript validator, in single quotes.
func validatorText(texts map[string]map[string]string, lang, key, fallback string) string {
	s := texts[lang][key]
	if s == "" {
		s = texts["enu"][key]
	}
	if s == "" {
		s = fallback
	}
	return jsString(s)
}

// jsString is a double-quoted JavaScript string literal: JSON's, which JavaScript reads too.
func jsString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// portValidatorJS is the wizard's "fn" validator for a port field: a number from 1 to 65535
// that DSM does not keep for itself (config.DSMReservedPorts, the same list the config check
// uses). DSM calls it with the field's value as arguments[0]; true or a message comes back.
func portValidatorJS(texts map[string]map[string]string, lang string) string {
	ports := slices.Sorted(maps.Keys(config.DSMReservedPorts))
	var reserved []string
	for _, p := range ports {
		reserved = append(reserved, fmt.Sprintf("%d:%s", p, jsString(config.DSMReservedPorts[p])))
	}
	return fmt.Sprintf(`{var v=String(arguments[0]).trim();var r={%s};`+
		`if(!/^[0-9]{1,5}$/.test(v)||+v<1||+v>65535)return %s;`+
		`if(r[+v])return %s+' ('+r[+v]+')';return true;}`,
		strings.Join(reserved, ","),
		validatorText(texts, lang, "validator.port_invalid", "Enter a port from 1 to 65535."),
		validatorText(texts, lang, "validator.port_reserved", "DSM uses this port"))
}

// mirrorsValidatorJS checks the shape of the mirrors answer: http(s) roots, each optionally
// "registry=" first (download.ParseMirror's forms), separated by commas or spaces. The config's own check (download.ParseMirror) runs again in preinst and postinst.
func mirrorsValidatorJS(texts map[string]map[string]string, lang string) string {
	return fmt.Sprintf(`{var v=String(arguments[0]).trim();if(v==='')return true;`+
		`var l=v.split(/[\s,]+/);for(var i=0;i<l.length;i++){if(l[i]!==''&&!/^([A-Za-z0-9.\-]+(:[0-9]+)?=)?https?:\/\/[A-Za-z0-9.\-\[\]:]+\/?$/.test(l[i]))return %s;}`+
		`return true;}`,
		validatorText(texts, lang, "validator.mirror_invalid", "Enter https:// addresses, separated by commas."))
}

// hostValidatorJS mirrors the config's host check: empty (this NAS's name), or a host name or
// IPv4 address that other machines can reach, so never localhost.
func hostValidatorJS(texts map[string]map[string]string, lang string) string {
	return fmt.Sprintf(`{var v=String(arguments[0]).trim();if(v==='')return true;`+
		`if(/^(localhost|127\.|0\.0\.0\.0$|::1$)/i.test(v))return %s;`+
		`if(!/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(v))return %s;`+
		`return true;}`,
		validatorText(texts, lang, "validator.host_local", "This name only works on the NAS itself."),
		validatorText(texts, lang, "validator.host_invalid", "Enter a host name or IPv4 address, without http:// or a port."))
}
