package main

import (
	"strings"
	"testing"
	"time"
)

const (
	keyBase = "aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3kM5oQ7sU9wY1"
	arKey   = `["Zx8Cv7Bn6Mm5Ll4Kk3Jj2Hh1Gg0Ff9Ee"]`
)

func sameersbnEnv() map[string]string {
	return map[string]string{
		"DB_HOST": "postgres", "DB_USER": "gitlab", "DB_PASS": "secret", "DB_NAME": "gitlabhq_production",
		"DB_PORT": "5432", "REDIS_HOST": "redis", "REDIS_PORT": "6379",
		"GITLAB_SECRETS_DB_KEY_BASE":                                  keyBase,
		"GITLAB_SECRETS_SECRET_KEY_BASE":                              keyBase,
		"GITLAB_SECRETS_OTP_KEY_BASE":                                 keyBase,
		"GITLAB_SECRETS_ENCRYPTED_SETTINGS_KEY_BASE":                  keyBase,
		"GITLAB_SECRETS_ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY":         arKey,
		"GITLAB_SECRETS_ACTIVE_RECORD_ENCRYPTION_DETERMINISTIC_KEY":   arKey,
		"GITLAB_SECRETS_ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT": "SaltSaltSalt1234",
		"GITLAB_HOST": "nas.example.lan", "GITLAB_PORT": "8929", "GITLAB_SSH_PORT": "2224",
		"GITLAB_ROOT_PASSWORD": "correct-horse-battery", "GITLAB_ROOT_EMAIL": "admin@example.lan",
		"GITLAB_MONITORING_IP_WHITELIST": "172.18.0.0/16",
	}
}

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestSameersbnValidEnv(t *testing.T) {
	c, err := LoadConfig(lookup(sameersbnEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if c.Flavour != flavourSameersbn || c.HTTPListen != 80 || c.SSHListen != 22 || c.PublicPort != 8929 || c.PublicSSHPort != 2224 {
		t.Errorf("config = %+v", c)
	}
	if len(c.Monitoring) != 2 || c.Monitoring[0].String() != "127.0.0.0/8" || c.Monitoring[1].String() != "172.18.0.0/16" {
		t.Errorf("monitoring = %v", c.Monitoring)
	}
	if c.BootDelay != 3*time.Second || c.Version != "18.5.1" {
		t.Errorf("defaults: delay %v version %s", c.BootDelay, c.Version)
	}
	if c.ExternalURL() != "http://nas.example.lan:8929" {
		t.Errorf("external URL %s", c.ExternalURL())
	}
	env := sameersbnEnv()
	delete(env, "DB_NAME")
	delete(env, "DB_PORT")
	delete(env, "REDIS_PORT")
	env["FORGEBOX_STANDIN_BOOT_DELAY"] = "0"
	c, err = LoadConfig(lookup(env))
	if err != nil || c.DBName != "gitlabhq_production" || c.DBPort != 5432 || c.RedisPort != 6379 || c.BootDelay != 0 {
		t.Errorf("defaults: %+v, %v", c, err)
	}
}

func TestSameersbnWiringMistakes(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(map[string]string)
		wants string
	}{
		{"DB_USER unset", func(e map[string]string) { delete(e, "DB_USER") }, `DB_USER is not set`},
		{"DB_USER root", func(e map[string]string) { e["DB_USER"] = "root" }, `DB_USER=root`},
		{"DB_HOST unset", func(e map[string]string) { delete(e, "DB_HOST") }, "DB_HOST is not set"},
		{"DB_PASS unset", func(e map[string]string) { delete(e, "DB_PASS") }, "DB_PASS is not set"},
		{"DB_PORT text", func(e map[string]string) { e["DB_PORT"] = "postgres" }, `DB_PORT="postgres" is not a port`},
		{"REDIS_HOST unset", func(e map[string]string) { delete(e, "REDIS_HOST") }, "REDIS_HOST is not set"},
		{"short key base", func(e map[string]string) { e["GITLAB_SECRETS_OTP_KEY_BASE"] = "abc123" }, "GITLAB_SECRETS_OTP_KEY_BASE must be at least 32"},
		{"key base with symbols", func(e map[string]string) { e["GITLAB_SECRETS_DB_KEY_BASE"] = keyBase + "+/=" }, "GITLAB_SECRETS_DB_KEY_BASE must be at least 32"},
		{"secret unset", func(e map[string]string) { delete(e, "GITLAB_SECRETS_ENCRYPTED_SETTINGS_KEY_BASE") }, "GITLAB_SECRETS_ENCRYPTED_SETTINGS_KEY_BASE is not set"},
		{"AR key quoted", func(e map[string]string) {
			e["GITLAB_SECRETS_ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY"] = "'" + arKey + "'"
		}, "extra quotes"},
		{"AR key plain", func(e map[string]string) {
			e["GITLAB_SECRETS_ACTIVE_RECORD_ENCRYPTION_DETERMINISTIC_KEY"] = "Zx8Cv7Bn6Mm5Ll4Kk3Jj2Hh1Gg0Ff9Ee"
		}, `GITLAB_SECRETS_ACTIVE_RECORD_ENCRYPTION_DETERMINISTIC_KEY must be exactly ["<32+ alphanumerics>"]`},
		{"AR key short", func(e map[string]string) {
			e["GITLAB_SECRETS_ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY"] = `["short"]`
		}, "GITLAB_SECRETS_ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY must be exactly"},
		{"salt as array", func(e map[string]string) {
			e["GITLAB_SECRETS_ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT"] = arKey
		}, "KEY_DERIVATION_SALT must be a plain alphanumeric"},
		{"host localhost", func(e map[string]string) { e["GITLAB_HOST"] = "localhost" }, `GITLAB_HOST="localhost"`},
		{"host 127.0.1.1", func(e map[string]string) { e["GITLAB_HOST"] = "127.0.1.1" }, `GITLAB_HOST="127.0.1.1": a loopback`},
		{"host empty", func(e map[string]string) { e["GITLAB_HOST"] = "" }, "GITLAB_HOST is empty"},
		{"port unset", func(e map[string]string) { delete(e, "GITLAB_PORT") }, "GITLAB_PORT is not set"},
		{"ssh port text", func(e map[string]string) { e["GITLAB_SSH_PORT"] = "22a" }, `GITLAB_SSH_PORT="22a" is not a port`},
		{"port 0", func(e map[string]string) { e["GITLAB_PORT"] = "0" }, `GITLAB_PORT="0" is not a port`},
		{"short root password", func(e map[string]string) { e["GITLAB_ROOT_PASSWORD"] = "1234567" }, "GITLAB_ROOT_PASSWORD must be at least 8"},
		{"no root email", func(e map[string]string) { delete(e, "GITLAB_ROOT_EMAIL") }, "GITLAB_ROOT_EMAIL"},
		{"two CIDRs", func(e map[string]string) { e["GITLAB_MONITORING_IP_WHITELIST"] = "172.18.0.0/16,10.0.0.0/8" }, "exactly one CIDR"},
		{"no allowlist", func(e map[string]string) { delete(e, "GITLAB_MONITORING_IP_WHITELIST") }, "GITLAB_MONITORING_IP_WHITELIST is not set"},
		{"https", func(e map[string]string) { e["GITLAB_HTTPS"] = "true" }, "GITLAB_HTTPS"},
		{"bad delay", func(e map[string]string) { e["FORGEBOX_STANDIN_BOOT_DELAY"] = "soon" }, "FORGEBOX_STANDIN_BOOT_DELAY"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := sameersbnEnv()
			tc.edit(env)
			_, err := LoadConfig(lookup(env))
			if err == nil || !strings.Contains(err.Error(), tc.wants) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wants)
			}
			if n := len(err.(*ConfigError).Problems); n != 1 {
				t.Errorf("%d problems reported, want exactly the one: %v", n, err)
			}
		})
	}
}

const omnibusOK = `external_url 'http://nas.example.lan:8929'
# bundled services off
postgresql['enable'] = false
redis['enable'] = false
gitlab_rails['db_adapter'] = 'postgresql'
gitlab_rails['db_host'] = 'postgres'
gitlab_rails['db_port'] = 5432
gitlab_rails['db_username'] = 'gitlab'
gitlab_rails['db_password'] = 'it''s # not a comment'
gitlab_rails['db_database'] = 'gitlabhq_production'
gitlab_rails['redis_host'] = 'redis'
gitlab_rails['redis_port'] = 6379
gitlab_rails['redis_password'] = nil
gitlab_rails['initial_root_password'] = 'correct-horse-battery'
gitlab_rails['gitlab_shell_ssh_port'] = 2224
gitlab_rails['monitoring_whitelist'] = ['127.0.0.0/8', '::1/128', '172.18.0.0/16']  # the stack network
puma['worker_processes'] = 0
`

func omnibusEnv(cfg string) map[string]string { return map[string]string{"GITLAB_OMNIBUS_CONFIG": cfg} }

func TestOmnibusValidConfig(t *testing.T) {
	// 'it''s' is two adjacent Ruby literals in real Ruby; the subset reads 'it' then "'s..." and refuses.
	_, err := LoadConfig(lookup(omnibusEnv(omnibusOK)))
	if err == nil || !strings.Contains(err.Error(), "line 9") {
		t.Fatalf("adjacent string literals: error = %v, want one naming line 9", err)
	}
	good := strings.Replace(omnibusOK, `'it''s # not a comment'`, `'it\'s # not a comment'`, 1)
	c, err := LoadConfig(lookup(omnibusEnv(good)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Flavour != flavourOmnibus || c.HTTPListen != 8929 || c.PublicPort != 8929 || c.SSHListen != 22 || c.PublicSSHPort != 2224 {
		t.Errorf("ports: %+v", c)
	}
	if c.DBPassword != "it's # not a comment" || c.DBHost != "postgres" || c.DBPort != 5432 || c.RedisPort != 6379 {
		t.Errorf("db/redis: %+v", c)
	}
	if len(c.Monitoring) != 3 || c.Monitoring[2].String() != "172.18.0.0/16" {
		t.Errorf("monitoring = %v", c.Monitoring)
	}
}

func TestOmnibusWiringMistakes(t *testing.T) {
	good := strings.Replace(omnibusOK, `'it''s # not a comment'`, `'pw'`, 1)
	cases := []struct{ name, from, to, wants string }{
		{"bundled postgres on", "postgresql['enable'] = false", "postgresql['enable'] = true", "postgresql['enable'] must be false"},
		{"bundled redis unset", "redis['enable'] = false\n", "", "redis['enable'] is not set"},
		{"port as string", "gitlab_rails['db_port'] = 5432", "gitlab_rails['db_port'] = '5432'", "gitlab_rails['db_port'] must be a port number"},
		{"no db host", "gitlab_rails['db_host'] = 'postgres'\n", "", "gitlab_rails['db_host'] is not set"},
		{"short root password", "'correct-horse-battery'", "'short'", "initial_root_password'] must be at least 8"},
		{"localhost url", "http://nas.example.lan:8929", "http://localhost:8929", "external_url host"},
		{"https url", "http://nas.example.lan:8929", "https://nas.example.lan", "plain http only"},
		{"allowlist string", "['127.0.0.0/8', '::1/128', '172.18.0.0/16']", "'172.18.0.0/16'", "must be a non-empty array of CIDRs"},
		{"allowlist bad entry", "'172.18.0.0/16']", "'172.18.0.0/33']", `entry "172.18.0.0/33" is not a CIDR`},
		{"no ssh port", "gitlab_rails['gitlab_shell_ssh_port'] = 2224\n", "", "gitlab_shell_ssh_port'] is not set"},
		{"no external_url", "external_url 'http://nas.example.lan:8929'\n", "", "external_url is not set"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := strings.Replace(good, tc.from, tc.to, 1)
			if cfg == good {
				t.Fatalf("edit %q did not apply", tc.from)
			}
			_, err := LoadConfig(lookup(omnibusEnv(cfg)))
			if err == nil || !strings.Contains(err.Error(), tc.wants) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wants)
			}
		})
	}
}

func TestParseOmnibusSubset(t *testing.T) {
	ok := map[string]string{
		"ints and bools":  "a['b'] = -12\nc['d'] = true\ne['f'] = nil",
		"empty array":     "a['b'] = []",
		"comment after":   "a['b'] = 'x' # note",
		"hash in string":  "a['b'] = 'x#y'",
		"escapes":         `a['b'] = 'x\\y\'z\n'`,
		"blank and crlf":  "\r\n  # c\r\na['b'] = 1\r\n",
		"spaced assign":   "a['b']=1",
		"external url":    "external_url 'http://h:1'",
		"array of string": "a['b'] = ['x', 'y']",
	}
	for name, src := range ok {
		if _, err := ParseOmnibus(src); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	cfg, _ := ParseOmnibus(`a['b'] = 'x\\y\'z\n'` + "\nc['d'] = ['p', 'q']")
	if v, _ := cfg.Get("a['b']"); v.Str != `x\y'z\n` {
		t.Errorf("escapes: %q", v.Str)
	}
	if v, _ := cfg.Get("c['d']"); v.Kind != KindArray || len(v.List) != 2 || v.List[1] != "q" {
		t.Errorf("array: %+v", v)
	}

	bad := map[string]string{
		"double quotes":     `a['b'] = "x"`,
		"hash":              `gitaly['env'] = { 'A' => 'b' }`,
		"method call":       `gitlab_rails['x'] = ENV['Y']`,
		"two statements":    `a['b'] = 1; c['d'] = 2`,
		"compound assign":   `a['b'] += 1`,
		"unterminated":      `a['b'] = 'x`,
		"trailing comma":    `a['b'] = ['x',]`,
		"array of ints":     `a['b'] = [1, 2]`,
		"float":             `a['b'] = 1.5`,
		"symbol":            `a['b'] = :x`,
		"double-quoted key": `a["b"] = 1`,
		"bare ruby":         `puts 'hi'`,
		"duplicate":         "a['b'] = 1\na['b'] = 2",
		"external twice":    "external_url 'http://a'\nexternal_url 'http://b'",
		"external dq":       `external_url "http://a"`,
		"nested key":        `a['b']['c'] = 1`,
		"underscored int":   `a['b'] = 1_000`,
	}
	for name, src := range bad {
		if _, err := ParseOmnibus(src); err == nil {
			t.Errorf("%s: %q accepted", name, src)
		} else if !strings.Contains(err.Error(), "line ") {
			t.Errorf("%s: error does not name the line: %v", name, err)
		}
	}
}
