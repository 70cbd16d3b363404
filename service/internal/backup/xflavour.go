package backup

// A restore across image flavours: a backup of a sameersbn stack onto an Omnibus stack of the
// same GitLab version, or the reverse. GitLab's data is the same in both (its database and its
// own backup archive, which GitLab restores whatever installation made it); what differs is
// where each image keeps the Rails secrets the data was encrypted with. sameersbn takes them
// from environment variables (forgebox's secret store, gitlab_secrets_*), Omnibus from
// /etc/gitlab/gitlab-secrets.json, key "gitlab_rails", which its reconfigure reads at every
// start, filling in only what is missing (omnibus-gitlab 19.2.4+ce.0
// files/gitlab-cookbooks/package/libraries/helpers/secrets_helper.rb read_gitlab_secrets;
// gitlab_rails.rb parse_secrets). Without them GitLab boots on the restored data but cannot
// decrypt CI variables, runner tokens or 2FA secrets (GitLab docs, "When the secrets file is
// lost").

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/msg"
	"github.com/forgebox/forgebox/service/internal/stack"
)

// carrySecrets makes the unpacked backup's Rails secrets the ones the target flavour reads:
// onto Omnibus, a gitlab-secrets.json that is the stack's own with the backup's gitlab_rails
// keys; onto sameersbn, the backup's gitlab-secrets.json values in the secret store. It runs
// before anything is changed, so a backup whose secrets cannot be carried changes nothing.
func carrySecrets(x *stack.Session, cfg config.Config, from string, u *unpacked) error {
	to := cfg.GitLab.Flavour
	if from == to {
		return nil
	}
	switch {
	case from == "sameersbn" && to == "omnibus":
		etc, err := x.HostPath("gitlab", "/etc/gitlab")
		if err != nil {
			return err
		}
		current, err := os.ReadFile(filepath.Join(etc, "gitlab-secrets.json"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("read the stack's /etc/gitlab/gitlab-secrets.json: %w; the stack was not changed", err)
		}
		merged, err := omnibusSecretsFrom(u.secrets, current)
		if err != nil {
			return err
		}
		u.files[MemberOmnibusJSON], u.modes[MemberOmnibusJSON] = merged, 0o600
		x.Emit(events.Event{Kind: events.KindInfo, Component: "gitlab"}.With(msg.New("restore.switchToOmnibus")))
	case from == "omnibus" && to == "sameersbn":
		rails, err := storeSecretsFrom(u.files[MemberOmnibusJSON])
		if err != nil {
			return err
		}
		for name, v := range rails {
			u.secrets[name] = v
		}
		// gitlab.rb configured the Omnibus image; a sameersbn stack is configured by forgebox's
		// config alone, and /etc/gitlab is not where it looks.
		delete(u.files, MemberOmnibusJSON)
		delete(u.files, MemberOmnibusRB)
		x.Emit(events.Event{Kind: events.KindInfo, Component: "gitlab"}.With(msg.New("restore.switchToSameersbn")))
	default:
		return &FlavourMismatchError{Backup: from, Running: to}
	}
	return nil
}

// omnibusSecretsFrom is the stack's gitlab-secrets.json (current, may be empty) with the Rails
// secrets of a sameersbn secret store in its gitlab_rails section. Keys the store does not hold
// (openid_connect_signing_key) and the other sections (gitlab_shell, gitlab_workhorse, ...)
// stay the stack's own.
func omnibusSecretsFrom(store map[string]string, current []byte) ([]byte, error) {
	doc := map[string]any{}
	if len(current) > 0 {
		if err := json.Unmarshal(current, &doc); err != nil {
			return nil, fmt.Errorf("the stack's /etc/gitlab/gitlab-secrets.json is not valid JSON (%v): fix or move it, then restore again; the stack was not changed", err)
		}
	}
	rails, _ := doc["gitlab_rails"].(map[string]any)
	if rails == nil {
		rails = map[string]any{}
	}
	var missing []string
	for _, k := range stack.RailsSecrets() {
		v := store[k.Secret]
		if v == "" {
			missing = append(missing, k.Secret)
			continue
		}
		if k.Array {
			rails[k.Key] = []string{v}
		} else {
			rails[k.Key] = v
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the backup's secret store lacks %s: without them GitLab could not read the backup's encrypted data on Omnibus; the stack was not changed", strings.Join(missing, ", "))
	}
	doc["gitlab_rails"] = rails
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// storeSecretsFrom reads an Omnibus gitlab-secrets.json's Rails secrets under forgebox's secret
// names. The sameersbn image takes one active_record_encryption key of each kind (forgebox
// writes it as a one-element array), so a file in the middle of a key rotation is refused.
func storeSecretsFrom(b []byte) (map[string]string, error) {
	if len(b) == 0 {
		return nil, errors.New("the backup holds no gitlab-secrets.json: an Omnibus backup needs it to carry GitLab's secrets; the stack was not changed")
	}
	var doc struct {
		Rails map[string]any `json:"gitlab_rails"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("the backup's gitlab-secrets.json is not valid JSON: %v; the stack was not changed", err)
	}
	out := map[string]string{}
	for _, k := range stack.RailsSecrets() {
		v := doc.Rails[k.Key]
		if k.Array {
			list, ok := v.([]any)
			if !ok || len(list) != 1 {
				return nil, fmt.Errorf("the backup's gitlab-secrets.json has gitlab_rails.%s = %s: the sameersbn image takes exactly one key there (a list of several is a key rotation in progress); finish it on the Omnibus stack and back up again; the stack was not changed", k.Key, describe(v))
			}
			v = list[0]
		}
		s, ok := v.(string)
		if !ok || s == "" {
			return nil, fmt.Errorf("the backup's gitlab-secrets.json has no gitlab_rails.%s; the stack was not changed", k.Key)
		}
		out[k.Secret] = s
	}
	return out, nil
}

// describe names a JSON value's shape without its content (it is a secret).
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "nothing"
	case []any:
		return fmt.Sprintf("a list of %d", len(v))
	case string:
		return "a string"
	}
	return fmt.Sprintf("a %T", v)
}

// switchedSecretsError is a flavour switch after which GitLab did not take the restored runner
// tokens: the secrets it runs with do not match the data.
func switchedSecretsError(from, to string, rejected []string, safety string) error {
	where := "the secret store (gitlab_secrets_*)"
	if to == "omnibus" {
		where = "/etc/gitlab/gitlab-secrets.json (gitlab_rails) and the secret store"
	}
	return fmt.Errorf("the restore from %s onto %s is done, but GitLab rejected the restored token of runner profile(s) %s: the secrets it runs with do not match the backup's data, so CI variables, runner tokens and 2FA secrets cannot be decrypted (check %s against the source stack's; forgebox export secrets --format omnibus on the source writes them to a file); the stack as it was before is in backup %s (forgebox backup restore %s)",
		from, to, strings.Join(rejected, ", "), where, safety, safety)
}

func knownFlavour(f string) bool { return f == "sameersbn" || f == "omnibus" }
