package runnercfg

// The schema test: every key forgebox writes into config.toml (and into the Helm chart's
// runners.config) must be one gitlab-runner v19.2.2 knows, with a value of the type it decodes.
// testdata/runner-schema.json is extracted from the runner's own source by
// tools/runner-schema.py (common/config.go, helpers/docker/credentials.go at v19.2.2): key
// names and kinds only. No Kubernetes cluster runs here; this is the check the rendering gets.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/goccy/go-yaml"
)

type upstreamSchema map[string]map[string]string

func loadSchema(t *testing.T) upstreamSchema {
	t.Helper()
	b, err := os.ReadFile("testdata/runner-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	s := upstreamSchema{}
	for k, v := range raw {
		if k == "source" {
			continue
		}
		m := map[string]string{}
		if err := json.Unmarshal(v, &m); err != nil {
			t.Fatal(err)
		}
		s[k] = m
	}
	return s
}

// kindOf is the schema kind a decoded TOML value has.
func kindOf(v any) string {
	switch x := v.(type) {
	case string:
		return "string"
	case bool:
		return "bool"
	case int64:
		return "integer"
	case float64:
		return "float"
	case time.Time:
		return "datetime"
	case []any:
		return "array"
	case []map[string]any:
		return "array-of-tables"
	case map[string]any:
		return "table"
	default:
		return fmt.Sprintf("%T", x)
	}
}

func fits(want, got string) bool {
	switch want {
	case "string|array":
		return got == "string" || got == "array"
	case "duration":
		return got == "string" || got == "integer"
	}
	return want == got
}

// check walks a decoded config.toml and lists every key the runner does not know or whose
// value has another type. Only the tables forgebox writes are walked ([[runners]], docker,
// kubernetes); any other table is itself an unknown key unless the schema lists it.
func (s upstreamSchema) check(doc map[string]any) []string {
	var problems []string
	var walk func(table, path string, m map[string]any)
	walk = func(table, path string, m map[string]any) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v := m[k]
			want, ok := s[table][k]
			p := strings.TrimPrefix(path+"."+k, ".")
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: unknown to gitlab-runner", p))
				continue
			}
			if table == "config" && k == "runners" {
				rs, ok := v.([]map[string]any)
				if !ok {
					problems = append(problems, fmt.Sprintf("%s: %s, want an array of tables", p, kindOf(v)))
					continue
				}
				for i, r := range rs {
					walk("runners", fmt.Sprintf("runners[%d]", i), r)
				}
				continue
			}
			if table == "runners" && (k == "docker" || k == "kubernetes") {
				sub, ok := v.(map[string]any)
				if !ok {
					problems = append(problems, fmt.Sprintf("%s: %s, want a table", p, kindOf(v)))
					continue
				}
				walk("runners."+k, p, sub)
				continue
			}
			if got := kindOf(v); !fits(want, got) {
				problems = append(problems, fmt.Sprintf("%s: %s, gitlab-runner decodes %s", p, got, want))
			}
		}
	}
	walk("config", "", doc)
	return problems
}

func decodeTOML(t *testing.T, src []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	if _, err := toml.Decode(string(src), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestGoldenConfigsKeepToUpstreamSchema(t *testing.T) {
	s := loadSchema(t)
	files, _ := filepath.Glob("../stack/testdata/runner-config*.golden")
	if len(files) < 2 {
		t.Fatalf("forgebox's config.toml goldens are missing: %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if p := s.check(decodeTOML(t, b)); len(p) > 0 {
			t.Errorf("%s:\n%s", f, strings.Join(p, "\n"))
		}
	}
}

// The check must be able to fail: a misspelt key, a string where a bool goes, an int where a
// quantity string goes, and an unknown table are each found.
func TestSchemaCheckFindsUnknownAndMistypedKeys(t *testing.T) {
	s := loadSchema(t)
	bad := `concurrent = 2
[[runners]]
  name = "x"
  url = "http://gitlab"
  executor = "kubernetes"
  limit = "4"
  [runners.kubernetes]
    namespace = "ci"
    cpu_limits = "2"
    memory_limit = 4
    privileged = "true"
  [runners.dockr]
    image = "alpine"
`
	got := s.check(decodeTOML(t, []byte(bad)))
	want := []string{
		"runners[0].dockr: unknown to gitlab-runner",
		"runners[0].kubernetes.cpu_limits: unknown to gitlab-runner",
		"runners[0].kubernetes.memory_limit: integer, gitlab-runner decodes string",
		"runners[0].kubernetes.privileged: string, gitlab-runner decodes bool",
		"runners[0].limit: string, gitlab-runner decodes integer",
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Forgebox's own model refuses them too when it reads a file back.
	if _, err := Parse([]byte(bad)); err == nil {
		t.Error("Parse took a file with unknown keys")
	}
}

// helmChartKeys are the values forgebox sets, by the chart's names and kinds (gitlab-runner
// v19.2.2 docs/install/kubernetes.md: gitlabUrl, runnerToken, rbac.create;
// kubernetes_helm_chart_configuration.md: concurrent, runners.config).
var helmChartKeys = map[string]string{
	"gitlabUrl": "string", "runnerToken": "string", "concurrent": "integer",
	"rbac": "table", "rbac.create": "bool", "runners": "table", "runners.config": "string",
}

func helmKind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case bool:
		return "bool"
	case uint64, int64, int:
		return "integer"
	case map[string]any:
		return "table"
	}
	return fmt.Sprintf("%T", v)
}

func checkHelm(s upstreamSchema, doc map[string]any, prefix string) []string {
	var out []string
	for k, v := range doc {
		p := strings.TrimPrefix(prefix+"."+k, ".")
		want, ok := helmChartKeys[p]
		switch {
		case !ok:
			out = append(out, p+": not a value forgebox may set")
		case helmKind(v) != want:
			out = append(out, fmt.Sprintf("%s: %s, the chart takes %s", p, helmKind(v), want))
		case want == "table":
			out = append(out, checkHelm(s, v.(map[string]any), p)...)
		case p == "runners.config":
			var tdoc map[string]any
			if _, err := toml.Decode(v.(string), &tdoc); err != nil {
				out = append(out, p+": "+err.Error())
			} else {
				out = append(out, s.check(tdoc)...)
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestHelmValuesKeepToTheChart(t *testing.T) {
	s := loadSchema(t)
	b, err := os.ReadFile("../stack/testdata/helm-values.golden")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if p := checkHelm(s, doc, ""); len(p) > 0 {
		t.Errorf("helm-values.golden:\n%s", strings.Join(p, "\n"))
	}
	for _, k := range []string{"gitlabUrl", "runnerToken", "rbac", "runners"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("helm-values.golden lacks %s, which the chart needs", k)
		}
	}
	bad := map[string]any{"gitlabURL": "x", "concurrent": "8", "runners": map[string]any{"config": "[[runners]]\n  executer = \"kubernetes\"\n"}}
	got := checkHelm(s, bad, "")
	want := []string{"concurrent: string, the chart takes integer", "gitlabURL: not a value forgebox may set", "runners[0].executer: unknown to gitlab-runner"}
	if !slices.Equal(got, want) {
		t.Errorf("helm check of bad values: %v, want %v", got, want)
	}
}
