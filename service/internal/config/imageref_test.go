package config

import "testing"

// The image references a config may hold follow the distribution spec's grammar (the one the
// engine holds them to), checked without distribution/reference (see checkImageRef).
func TestCheckImageRef(t *testing.T) {
	for ref, ok := range map[string]bool{
		"postgres:17-alpine":                  true,
		"sameersbn/gitlab:19.2.0":             true,
		"gitlab/gitlab-ce:19.2.4-ce.0":        true,
		"gitlab/gitlab-runner:alpine-v19.2.2": true,
		"registry.gitlab.com/gitlab-org/gitlab-runner/gitlab-runner-helper:x86_64-v19.2.2": true,
		"127.0.0.1:5000/forgebox-test/postgres:17-c8fd":                                    true,
		"a__b/c-d.e:f": true,
		"a@sha256:0123456789012345678901234567890123456789012345678901234567890123": true,
		"Bad/Upper:1":  false,
		"foo::bar":     false,
		"foo:":         false,
		"a b":          false,
		"a@sha256:abc": false,
		"x:-bad":       false,
		"-a":           false,
		"a___b":        false,
		"a..b":         false,
		"a/":           false,
	} {
		if err := checkImageRef(ref); (err == nil) != ok {
			t.Errorf("%q: err = %v, want accepted = %v", ref, err, ok)
		}
	}
}
