package spkbuild

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// repoRoot is the repository, three levels up from this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, SpecFile)); err != nil {
		t.Fatalf("no %s under %s: %v", SpecFile, root, err)
	}
	return root
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (run go test -update after checking the change):\n%s", name, path, lineDiff(string(want), string(got)))
	}
}

// lineDiff shows the first lines that differ, enough to see what changed.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 12; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want %q\n  got  %q\n", i+1, wl, gl)
			shown++
		}
	}
	return b.String()
}

const goldenVersion = "0.1.0-0042"

// TestGoldenFiles pins every generated DSM file: INFO for both arches, conf/privilege,
// conf/resource, the port-config file, the compose project and the wizards.
func TestGoldenFiles(t *testing.T) {
	root := repoRoot(t)
	spec, err := LoadSpec(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range Arches {
		info, err := RenderINFO(spec, goldenVersion, arch, "0123456789abcdef0123456789abcdef", 29641)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "INFO-"+arch.DSM, info)
	}
	v := NewValues(spec, goldenVersion, Arches[0])
	for name, render := range map[string]func(string, Values) ([]byte, error){
		"privilege":    RenderPrivilege,
		"resource":     RenderResource,
		"forgebox.sc":  RenderPortConfig,
		"compose.yaml": RenderCompose,
	} {
		b, err := render(root, v)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, name, b)
	}
	langs, err := WizardLangs(root)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(langs, []string{"chs", "enu"}) {
		t.Errorf("wizard languages = %v, want chs and enu", langs)
	}
	for _, wiz := range []string{"install_uifile", "uninstall_uifile"} {
		for _, lang := range langs {
			b, err := RenderWizard(root, wiz, lang, v)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, wiz+"_"+lang, b)
		}
	}
	// The armv8 install wizard offers omnibus only, chosen: sameersbn/gitlab has no arm64 image.
	arm, err := ArchByDSM("armv8")
	if err != nil {
		t.Fatal(err)
	}
	b, err := RenderWizard(root, "install_uifile", "enu", NewValues(spec, goldenVersion, arm))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "install_uifile_enu-armv8", b)
}

// TestWizardFlavourDefaults reads the rendered install wizards as DSM would: x86_64 preselects
// sameersbn and offers omnibus; armv8 preselects omnibus and offers nothing else.
func TestWizardFlavourDefaults(t *testing.T) {
	root := repoRoot(t)
	spec, err := LoadSpec(root)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]bool{
		"x86_64": {"wizard_flavour_sameersbn": true, "wizard_flavour_omnibus": false},
		"armv8":  {"wizard_flavour_omnibus": true},
	}
	for _, arch := range Arches {
		b, err := RenderWizard(root, "install_uifile", "enu", NewValues(spec, goldenVersion, arch))
		if err != nil {
			t.Fatal(err)
		}
		var steps []struct {
			Items []struct {
				Subitems []struct {
					Key          string `json:"key"`
					DefaultValue any    `json:"defaultValue"`
				} `json:"subitems"`
			} `json:"items"`
		}
		if err := json.Unmarshal(b, &steps); err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, st := range steps {
			for _, it := range st.Items {
				for _, si := range it.Subitems {
					if strings.HasPrefix(si.Key, "wizard_flavour_") {
						got[si.Key] = si.DefaultValue == true
					}
				}
			}
		}
		if !reflect.DeepEqual(got, want[arch.DSM]) {
			t.Errorf("%s wizard flavours = %v, want %v", arch.DSM, got, want[arch.DSM])
		}
	}
}

// TestResourceMatchesPayload checks that conf/resource names files that the payload has, and
// that the compose project publishes the controller on loopback only.
func TestResourceMatchesPayload(t *testing.T) {
	root := repoRoot(t)
	spec, err := LoadSpec(root)
	if err != nil {
		t.Fatal(err)
	}
	v := NewValues(spec, goldenVersion, Arches[0])
	b, err := RenderResource(root, v)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		PortConfig struct {
			ProtocolFile string `json:"protocol-file"`
		} `json:"port-config"`
		DataShare struct {
			Shares []struct {
				Name       string              `json:"name"`
				Permission map[string][]string `json:"permission"`
			} `json:"shares"`
		} `json:"data-share"`
		DockerProject struct {
			PreloadImage string `json:"preload-image"`
			Projects     []struct {
				Name string `json:"name"`
				Path string `json:"path"`
			} `json:"projects"`
		} `json:"docker-project"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.PortConfig.ProtocolFile != "port_conf/forgebox.sc" {
		t.Errorf("port-config protocol-file = %q", res.PortConfig.ProtocolFile)
	}
	if res.DockerProject.PreloadImage != ImageFile || len(res.DockerProject.Projects) != 1 || res.DockerProject.Projects[0].Path != ComposeDir {
		t.Errorf("docker-project = %+v", res.DockerProject)
	}
	if len(res.DataShare.Shares) != 1 || res.DataShare.Shares[0].Name != spec.Share ||
		!slices.Equal(res.DataShare.Shares[0].Permission["rw"], []string{spec.UserName}) {
		t.Errorf("data-share = %+v", res.DataShare)
	}
	compose, err := RenderCompose(root, v)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"127.0.0.1:8470:8470"`, "restart: unless-stopped", `FORGEBOX_PLATFORM: "dsm"`,
		`image: "forgebox/controller:` + goldenVersion + `"`, `FORGEBOX_CONTROLLER_CONTAINER: "forgebox-controller"`,
	} {
		if !strings.Contains(string(compose), want) {
			t.Errorf("compose.yaml lacks %s", want)
		}
	}
	// Every volume is a long-syntax bind at the same path inside; Docker may make only the
	// share's missing host path (see service/internal/dsm/share.go for why that one).
	var cf struct {
		Services map[string]struct {
			Volumes []struct {
				Type, Source, Target string
				Bind                 struct {
					CreateHostPath *bool `yaml:"create_host_path"`
				}
			}
		}
	}
	if err := yaml.Unmarshal(compose, &cf); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"/var/run/docker.sock": false, "/var/packages/forgebox/var": false,
		"/var/packages/forgebox/shares/forgebox": true, "/etc/localtime": false}
	vols := cf.Services["controller"].Volumes
	if len(vols) != len(want) {
		t.Errorf("controller volumes: %+v", vols)
	}
	for _, v := range vols {
		create, ok := want[v.Source]
		if !ok || v.Type != "bind" || v.Target != v.Source || v.Bind.CreateHostPath == nil || *v.Bind.CreateHostPath != create {
			t.Errorf("volume %+v: want a bind at the same path with create_host_path %v", v, create)
		}
	}
	if strings.Contains(string(compose), "logging:") {
		t.Error("compose.yaml sets a log driver; Container Manager's own must stay")
	}
}

func TestSpecRules(t *testing.T) {
	root := repoRoot(t)
	spec, err := LoadSpec(root)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := spec.PackageVersion(42); err != nil || v != spec.Version+"-0042" {
		t.Errorf("PackageVersion(42) = %q, %v", v, err)
	}
	if v, err := spec.PackageVersion(123456); err != nil || v != spec.Version+"-123456" {
		t.Errorf("PackageVersion(123456) = %q, %v", v, err)
	}
	for _, bad := range []int{0, -1, 1 << 31} {
		if _, err := spec.PackageVersion(bad); err == nil {
			t.Errorf("PackageVersion(%d) accepted", bad)
		}
	}
	broken := spec
	broken.Version = "1.0.0-rc1"
	broken.OSMinVer = "7.2.1"
	broken.UserName = "Forge Box"
	if err := broken.validate(); err == nil {
		t.Error("a spec with a lettered version, a bad os_min_ver and a bad user name passed")
	} else {
		for _, want := range []string{"version", "os_min_ver", "username"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
		}
	}
	if _, err := RenderINFO(Spec{Package: "x", Description: map[string]string{"enu": `say "hi"`}}, "1-1", Arches[0], "", 1); err == nil {
		t.Error("INFO took a double quote in a value")
	}
	// Unknown keys are errors.
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "spk"), 0o755)
	src, _ := os.ReadFile(filepath.Join(root, SpecFile))
	os.WriteFile(filepath.Join(dir, SpecFile), append(src, []byte("\n[extra]\nsurprise = 1\n")...), 0o644)
	if _, err := LoadSpec(dir); err == nil || !strings.Contains(err.Error(), "surprise") {
		t.Errorf("an unknown key was not refused: %v", err)
	}
}

// TestIcons looks at the drawing: every size is square and of the right size, transparent in
// the corners (the rounded tile), opaque in the middle, with white (the anvil) and orange (the
// spark) in it.
func TestIcons(t *testing.T) {
	for _, size := range append([]int{256, 64}, IconSizes...) {
		b, err := IconPNG(size)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if r := img.Bounds(); r.Dx() != size || r.Dy() != size {
			t.Errorf("icon %d is %dx%d", size, r.Dx(), r.Dy())
		}
		if _, _, _, a := img.At(0, 0).RGBA(); a != 0 {
			t.Errorf("icon %d: corner not transparent", size)
		}
		if _, _, _, a := img.At(size/2, size/2).RGBA(); a != 0xffff {
			t.Errorf("icon %d: centre not opaque", size)
		}
		var white, orange bool
		for y := range size {
			for x := range size {
				r, g, b, a := img.At(x, y).RGBA()
				if a < 0xf000 {
					continue
				}
				white = white || (r > 0xe000 && g > 0xe000 && b > 0xe000)
				orange = orange || (r > 0xd000 && g < 0x9000 && b < 0x6000)
			}
		}
		if !white || (!orange && size >= 24) {
			t.Errorf("icon %d: anvil seen %v, spark seen %v", size, white, orange)
		}
	}
}

// TestWizardValidators runs the wizard's JavaScript port and host validators in node, as the
// DSM wizard would run them, against the config's own rules.
func TestWizardValidators(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Cannot(t, "node is not installed; the validators are JavaScript (preinst checks the same rules in Go)")
	}
	root := repoRoot(t)
	spec, err := LoadSpec(root)
	if err != nil {
		t.Fatal(err)
	}
	b, err := RenderWizard(root, "install_uifile", "enu", NewValues(spec, goldenVersion, Arches[0]))
	if err != nil {
		t.Fatal(err)
	}
	var steps []struct {
		Title  string `json:"step_title"`
		NextV1 *bool  `json:"invalid_next_disabled"`
		NextV2 *bool  `json:"invalid_next_disabled_v2"`
		Items  []struct {
			Subitems []struct {
				Key       string `json:"key"`
				Validator struct {
					Fn string `json:"fn"`
				} `json:"validator"`
			} `json:"subitems"`
		} `json:"items"`
	}
	if err := json.Unmarshal(b, &steps); err != nil {
		t.Fatal(err)
	}
	fns := map[string]string{}
	for _, s := range steps {
		// The documented key, and the one DSM 7's wizards use (spksrc's recent wizards): Next
		// stays disabled while a field is invalid whichever DSM reads.
		if s.NextV1 == nil || !*s.NextV1 || s.NextV2 == nil || !*s.NextV2 {
			t.Errorf("step %q lacks invalid_next_disabled and invalid_next_disabled_v2", s.Title)
		}
		for _, it := range s.Items {
			for _, sub := range it.Subitems {
				if sub.Validator.Fn != "" {
					fns[sub.Key] = sub.Validator.Fn
				}
			}
		}
	}
	cases := map[string]map[string]bool{ // value -> valid
		"wizard_http_port":   {"30080": true, "8080": true, "5000": false, "22": false, "5432": false, "0": false, "70000": false, "abc": false, "": false},
		"wizard_ssh_port":    {"30022": true, "443": false, "80": false},
		"wizard_gitlab_host": {"": true, "nas.local": true, "192.168.1.10": true, "localhost": false, "127.0.0.1": false, "http://nas": false, "nas:30080": false},
		"wizard_registry_mirrors": {"": true, "https://mirror.ccs.tencentyun.com": true, "https://a.example, http://192.168.1.5:5000": true,
			"registry.gitlab.com=https://b.example/": true, "https://b.example/prefix": false, "mirror.example": false, "https://a.example, ftp://b": false, "https://": false},
	}
	for key, values := range cases {
		fn := fns[key]
		if fn == "" {
			t.Fatalf("no validator for %s", key)
		}
		for value, valid := range values {
			// DSM calls the function with the value as arguments[0]; "{...}" is its body.
			js := fmt.Sprintf("var f=function()%s;var r=f(%s);process.stdout.write(r===true?'ok':'msg:'+r);", fn, jsString(value))
			out, err := exec.Command(node, "-e", js).CombinedOutput()
			if err != nil {
				t.Fatalf("%s(%q): %v\n%s", key, value, err, out)
			}
			if got := string(out) == "ok"; got != valid {
				t.Errorf("%s(%q) = %s, want valid=%v", key, value, out, valid)
			}
		}
	}
	// The same reserved ports as the config's check.
	for p := range config.DSMReservedPorts {
		if !strings.Contains(fns["wizard_http_port"], fmt.Sprintf("%d:", p)) {
			t.Errorf("the port validator does not know DSM's port %d", p)
		}
	}
}

// TestAppWindowScript loads ui/dsm/forgebox.js in node with a minimal stand-in of DSM's ExtJS
// classes and opens the window: it must embed one iframe on DSM's own origin, at index.cgi/
// with DSM's language and the session's SynoToken.
func TestAppWindowScript(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Cannot(t, "node is not installed")
	}
	root := repoRoot(t)
	var cfg map[string]map[string]map[string]any
	b, err := os.ReadFile(filepath.Join(root, "ui/dsm/config"))
	if err != nil || json.Unmarshal(b, &cfg) != nil {
		t.Fatalf("ui/dsm/config: %v", err)
	}
	spec, _ := LoadSpec(root)
	app := cfg["forgebox.js"][spec.UI.App]
	if app["type"] != "app" || app["appWindow"] != "SYNO.SDS.Forgebox.MainWindow" || app["allUsers"] != false ||
		app["icon"] != "images/icon_{0}.png" {
		t.Errorf("app config %v", app)
	}
	// DSM loads i18n strings when the app opens; the start menu's title and description need
	// them before that (guide: Integrate DSM > i18n, preloadTexts).
	preload := map[string]bool{}
	if list, ok := app["preloadTexts"].([]any); ok {
		for _, k := range list {
			preload[fmt.Sprint(k)] = true
		}
	}
	for _, k := range []string{fmt.Sprint(app["title"]), fmt.Sprint(app["desc"])} {
		if strings.HasPrefix(k, "app:") && !preload[k] {
			t.Errorf("the app's %s is not in preloadTexts %v", k, app["preloadTexts"])
		}
	}
	stub := `
var Ext = {
  namespace: function (ns) { var o = globalThis; ns.split(".").forEach(function (p) { o = o[p] = o[p] || {}; }); },
  apply: function (a, b) { for (var k in b) a[k] = b[k]; return a; },
  define: function (name, body) {
    var parent = function (cfg) { this.cfg = cfg; };
    var cls = body.hasOwnProperty("constructor") ? body.constructor : function () {};
    cls.superclass = { constructor: parent };
    cls.prototype.callParent = function () {};
    var parts = name.split("."), o = globalThis;
    parts.slice(0, -1).forEach(function (p) { o = o[p] = o[p] || {}; });
    o[parts[parts.length - 1]] = cls;
  }
};
globalThis.Ext = Ext;
globalThis._S = function (k) { return k === "lang" ? "chs" : ""; };
require("vm").runInThisContext(require("fs").readFileSync(process.argv[1], "utf8"));
SYNO.SDS.Session = { SynoToken: "tok en" };
var w = new SYNO.SDS.Forgebox.MainWindow({ appInstance: {} });
var opened = "";
globalThis.window = { open: function (u) { opened = u; } };
w.cfg.tbar[0].handler();
process.stdout.write(w.cfg.html + "\n" + w.cfg.tbar[0].text + "\n" + opened);
`
	out, err := exec.Command(node, "-e", stub, filepath.Join(root, "ui/dsm/forgebox.js")).CombinedOutput()
	if err != nil {
		t.Fatalf("forgebox.js: %v\n%s", err, out)
	}
	lines := strings.Split(string(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("forgebox.js printed %q", out)
	}
	html := lines[0]
	if !strings.HasPrefix(html, `<iframe src="webman/3rdparty/forgebox/index.cgi/?lang=chs&_ts=`) ||
		!strings.Contains(html, "&SynoToken=tok%20en") || strings.Count(html, "<iframe") != 1 {
		t.Errorf("the window holds %s", html)
	}
	// "Download diagnostics" opens the front's own report route, with the session's token.
	if lines[1] != "Download diagnostics" || lines[2] != "webman/3rdparty/forgebox/index.cgi/_dsm/report?SynoToken=tok%20en" {
		t.Errorf("the diagnostics button: %q opens %q", lines[1], lines[2])
	}
}
