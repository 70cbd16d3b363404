package stack

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/goccy/go-yaml"

	"github.com/forgebox/forgebox/service/internal/config"
)

// The Rails secrets a sameersbn stack keeps in forgebox's secret store, under the names the other
// flavours give them: Omnibus' /etc/gitlab/gitlab-secrets.json "gitlab_rails" keys
// (omnibus-gitlab 19.2.4+ce.0 files/gitlab-cookbooks/package/libraries/helpers/secrets_helper.rb,
// gitlab_rails.rb parse_secrets: the two active_record_encryption keys are arrays) and the
// GitLab chart's <release>-rails-secret, whose secrets.yml has the same keys under production:
// (docs.gitlab.com/charts/installation/secrets, "GitLab Rails secret").
var railsSecretKeys = []struct {
	key, secret string
	array       bool
}{
	{"secret_key_base", "gitlab_secrets_secret_key_base", false},
	{"db_key_base", "gitlab_secrets_db_key_base", false},
	{"otp_key_base", "gitlab_secrets_otp_key_base", false},
	{"encrypted_settings_key_base", "gitlab_secrets_encrypted_settings_key_base", false},
	{"active_record_encryption_primary_key", "gitlab_secrets_ar_primary_key", true},
	{"active_record_encryption_deterministic_key", "gitlab_secrets_ar_deterministic_key", true},
	{"active_record_encryption_key_derivation_salt", "gitlab_secrets_ar_key_derivation_salt", false},
}

// railsSecrets are the stack's Rails secrets by the other flavours' key names. Omnibus keeps
// its own in its config dir, not in forgebox's store, so only a sameersbn stack has them here.
func railsSecrets(cfg config.Config, secrets interface{ Get(string) (string, bool) }) (map[string]any, error) {
	if cfg.GitLab.Flavour != "sameersbn" {
		return nil, fmt.Errorf("an %s stack keeps GitLab's secrets in its own gitlab-secrets.json (%s/config/gitlab-secrets.json): copy that file instead", cfg.GitLab.Flavour, cfg.GitLabDir())
	}
	out := map[string]any{}
	for _, k := range railsSecretKeys {
		v, ok := secrets.Get(k.secret)
		if !ok || v == "" {
			return nil, fmt.Errorf("the secret store has no %s: run forgebox up once so the stack has its secrets", k.secret)
		}
		if k.array {
			out[k.key] = []string{v}
		} else {
			out[k.key] = v
		}
	}
	return out, nil
}

// ExportSecrets writes the stack's Rails secrets for another GitLab: "omnibus" is a
// gitlab-secrets.json for /etc/gitlab, "helm" a Kubernetes Secret <release>-rails-secret for the
// GitLab chart. Keys forgebox does not hold (openid_connect_signing_key) are left out; the new
// GitLab generates them, and only what they signed (OpenID Connect ID tokens) is lost.
func ExportSecrets(cfg config.Config, secrets interface{ Get(string) (string, bool) }, format, release string) ([]byte, error) {
	rails, err := railsSecrets(cfg, secrets)
	if err != nil {
		return nil, err
	}
	switch format {
	case "omnibus":
		b, err := json.MarshalIndent(map[string]any{"gitlab_rails": rails}, "", "  ")
		if err != nil {
			return nil, err
		}
		return append(b, '\n'), nil
	case "helm":
		inner, err := yaml.Marshal(map[string]any{"production": rails})
		if err != nil {
			return nil, err
		}
		secret := map[string]any{
			"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
			"metadata":   map[string]any{"name": release + "-rails-secret"},
			"stringData": map[string]string{"secrets.yml": string(inner)},
		}
		b, err := yaml.MarshalWithOptions(secret, yaml.UseLiteralStyleIfMultiline(true))
		if err != nil {
			return nil, err
		}
		var out bytes.Buffer
		out.WriteString("# Written by `forgebox export secrets --format helm`: GitLab's Rails secrets for the GitLab chart.\n")
		out.WriteString("# kubectl apply -n NAMESPACE -f THIS_FILE before helm install; keep this file 0600 and delete it after.\n")
		out.Write(b)
		return out.Bytes(), nil
	}
	return nil, fmt.Errorf("--format %q: use omnibus (gitlab-secrets.json) or helm (a Kubernetes Secret)", format)
}

// RailsSecret is one Rails secret: its key in the other flavours (gitlab-secrets.json's
// gitlab_rails, the chart's secrets.yml), its name in forgebox's secret store, and whether the
// other flavours keep it as an array of keys.
type RailsSecret struct {
	Key, Secret string
	Array       bool
}

// RailsSecrets lists the Rails secrets forgebox holds for a sameersbn stack (a restore across
// flavours carries them).
func RailsSecrets() []RailsSecret {
	out := make([]RailsSecret, len(railsSecretKeys))
	for i, k := range railsSecretKeys {
		out[i] = RailsSecret{Key: k.key, Secret: k.secret, Array: k.array}
	}
	return out
}
