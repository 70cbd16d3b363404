package backup

import (
	"encoding/json"
	"strings"
	"testing"
)

func sameersbnStore() map[string]string {
	return map[string]string{
		"gitlab_secrets_secret_key_base":             "skb",
		"gitlab_secrets_db_key_base":                 "dkb",
		"gitlab_secrets_otp_key_base":                "okb",
		"gitlab_secrets_encrypted_settings_key_base": "eskb",
		"gitlab_secrets_ar_primary_key":              "arp",
		"gitlab_secrets_ar_deterministic_key":        "ard",
		"gitlab_secrets_ar_key_derivation_salt":      "ars",
		"gitlab_root_password":                       "root",
	}
}

// A sameersbn store's Rails secrets replace the Omnibus stack's gitlab_rails keys, in Omnibus'
// shapes (the two active_record_encryption keys as arrays); what the store does not hold
// (openid_connect_signing_key) and the other sections stay; a store that lacks one is refused
// with its name, and the reverse gives back exactly the store's values.
func TestCarrySecretsBetweenFlavours(t *testing.T) {
	current := []byte(`{"gitlab_workhorse":{"secret_token":"wh"},"gitlab_rails":{"db_key_base":"own","openid_connect_signing_key":"pem","active_record_encryption_primary_key":["ownp"]}}`)
	b, err := omnibusSecretsFrom(sameersbnStore(), current)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	r := doc["gitlab_rails"]
	if r["db_key_base"] != "dkb" || r["otp_key_base"] != "okb" || r["secret_key_base"] != "skb" || r["encrypted_settings_key_base"] != "eskb" || r["active_record_encryption_key_derivation_salt"] != "ars" {
		t.Errorf("gitlab_rails %v", r)
	}
	if p, ok := r["active_record_encryption_primary_key"].([]any); !ok || len(p) != 1 || p[0] != "arp" {
		t.Errorf("primary key %v, want [arp]", r["active_record_encryption_primary_key"])
	}
	if r["openid_connect_signing_key"] != "pem" || doc["gitlab_workhorse"]["secret_token"] != "wh" {
		t.Errorf("the stack's own secrets did not stay: %v", doc)
	}
	if _, ok := r["gitlab_root_password"]; ok {
		t.Error("a secret that is no Rails secret went into gitlab_rails")
	}

	back, err := storeSecretsFrom(b)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range sameersbnStore() {
		if strings.HasPrefix(name, "gitlab_secrets_") && back[name] != v {
			t.Errorf("%s: %q back, want %q", name, back[name], v)
		}
	}
	if len(back) != 7 {
		t.Errorf("%d secrets back, want the 7 Rails secrets", len(back))
	}

	short := sameersbnStore()
	delete(short, "gitlab_secrets_otp_key_base")
	if _, err := omnibusSecretsFrom(short, current); err == nil || !strings.Contains(err.Error(), "gitlab_secrets_otp_key_base") {
		t.Errorf("a store without otp_key_base: %v", err)
	}
	if _, err := omnibusSecretsFrom(sameersbnStore(), []byte("{")); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("a damaged gitlab-secrets.json: %v", err)
	}
	fresh, err := omnibusSecretsFrom(sameersbnStore(), nil)
	if err != nil || !strings.Contains(string(fresh), `"dkb"`) {
		t.Errorf("no gitlab-secrets.json yet: %v %s", err, fresh)
	}

	rotating := strings.Replace(string(b), `"arp"`, `"arp", "arp2"`, 1)
	_, err = storeSecretsFrom([]byte(rotating))
	if err == nil || !strings.Contains(err.Error(), "a list of 2") || strings.Contains(err.Error(), "arp") {
		t.Errorf("a key rotation in progress: %v (and the error must not show the keys)", err)
	}
	if _, err := storeSecretsFrom(nil); err == nil {
		t.Error("an Omnibus backup without gitlab-secrets.json was accepted")
	}
}
