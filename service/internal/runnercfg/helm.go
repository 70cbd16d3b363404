package runnercfg

import (
	"bytes"
	"fmt"

	"github.com/goccy/go-yaml"
)

// HelmValues are the values forgebox writes for GitLab's official gitlab-runner Helm chart,
// under the chart's own names (gitlab-runner v19.2.2 docs/install/kubernetes.md and
// kubernetes_helm_chart_configuration.md, which describe the chart's values.yaml at
// gitlab.com/gitlab-org/charts/gitlab-runner): gitlabUrl, runnerToken, concurrent, rbac.create
// and runners.config, a config.toml template the chart completes with url and token.
type HelmValues struct {
	GitLabURL   string      `yaml:"gitlabUrl"`
	RunnerToken string      `yaml:"runnerToken"`
	Concurrent  int         `yaml:"concurrent"`
	RBAC        HelmRBAC    `yaml:"rbac"`
	Runners     HelmRunners `yaml:"runners"`
}

// HelmRBAC lets the chart make the role its runner needs to start build pods.
type HelmRBAC struct {
	Create bool `yaml:"create"`
}

// HelmRunners is runners: in the chart's values; Config is TOML text.
type HelmRunners struct {
	Config string `yaml:"config"`
}

// RenderHelm writes v as a values file.
func RenderHelm(v HelmValues) ([]byte, error) {
	b, err := yaml.MarshalWithOptions(v, yaml.UseLiteralStyleIfMultiline(true))
	if err != nil {
		return nil, fmt.Errorf("render Helm values: %w", err)
	}
	var out bytes.Buffer
	out.WriteString("# Written by `forgebox runner export-helm`: values for GitLab's gitlab-runner Helm chart.\n")
	out.WriteString("# runnerToken is a secret: keep this file 0600, or move the token into a Kubernetes Secret.\n")
	out.Write(b)
	return out.Bytes(), nil
}

// KubernetesTemplate is the [[runners]] template of runners.config for a runner that lives in the
// cluster: the chart fills in url and token, and the runner uses its own service account, so
// only the executor, clone_url and [runners.kubernetes] are given.
func KubernetesTemplate(cloneURL string, k Kubernetes) (string, error) {
	type runner struct {
		Executor   string     `toml:"executor"`
		CloneURL   string     `toml:"clone_url,omitempty"`
		Kubernetes Kubernetes `toml:"kubernetes"`
	}
	var b bytes.Buffer
	enc := tomlEncoder(&b)
	if err := enc.Encode(struct {
		Runners []runner `toml:"runners"`
	}{[]runner{{Executor: "kubernetes", CloneURL: cloneURL, Kubernetes: k}}}); err != nil {
		return "", fmt.Errorf("render runners.config: %w", err)
	}
	return b.String(), nil
}
