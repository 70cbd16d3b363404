package config

import (
	"strings"
	"testing"
)

// Remote engine and Kubernetes profiles: each bad setting is refused with its key and a fix.
func TestRemoteAndKubernetesProfileValidation(t *testing.T) {
	base := "version = 1\n[runner]\nconcurrent = 2\n[[runner.profiles]]\nname = \"default\"\nimage = \"alpine:3.22\"\nrun_untagged = true\n[[runner.profiles]]\nname = \"p\"\nimage = \"alpine:3.22\"\ntags = [\"x\"]\n"
	for _, tc := range []struct{ name, extra, wantKey, wantMsg string }{
		{"plain tcp without certificates", "docker_host = \"tcp://build1.lan:2376\"\n", "runner.profiles[1].docker_cert_dir", "only with TLS client certificates"},
		{"not tcp", "docker_host = \"unix:///var/run/docker.sock\"\ndocker_cert_dir = \"/c\"\n", "runner.profiles[1].docker_host", "not a Docker Engine address"},
		{"no port", "docker_host = \"tcp://build1.lan\"\ndocker_cert_dir = \"/c\"\n", "runner.profiles[1].docker_host", "not a Docker Engine address"},
		{"relative cert dir", "docker_host = \"tcp://build1.lan:2376\"\ndocker_cert_dir = \"certs\"\n", "runner.profiles[1].docker_cert_dir", "not an absolute path"},
		{"cert dir alone", "docker_cert_dir = \"/c\"\n", "runner.profiles[1].docker_cert_dir", "without docker_host"},
		{"unknown executor", "executor = \"shell\"\n", "runner.profiles[1].executor", "not allowed"},
		{"kubernetes without its table", "executor = \"kubernetes\"\n", "runner.profiles[1].kubernetes", "missing"},
		{"http API server", "executor = \"kubernetes\"\n[runner.profiles.kubernetes]\nhost = \"http://k8s:6443\"\nca_file = \"/ca\"\ntoken_file = \"/t\"\nnamespace = \"ci\"\n", "runner.profiles[1].kubernetes.host", "not an API server URL"},
		{"bad quantity", "executor = \"kubernetes\"\n[runner.profiles.kubernetes]\nhost = \"https://k8s:6443\"\nca_file = \"/ca\"\ntoken_file = \"/t\"\nnamespace = \"ci\"\nmemory_limit = \"4 GB\"\n", "runner.profiles[1].kubernetes.memory_limit", "not a Kubernetes quantity"},
		{"mistyped key", "executor = \"kubernetes\"\n[runner.profiles.kubernetes]\nhost = \"https://k8s:6443\"\nnamespaces = \"ci\"\n", "runner.profiles.kubernetes.namespaces", "unknown key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(base + tc.extra))
			if err == nil || !strings.Contains(err.Error(), tc.wantKey) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("got %v, want %s: %s", err, tc.wantKey, tc.wantMsg)
			}
		})
	}
	ok := base + "docker_host = \"tcp://build1.lan:2376\"\ndocker_cert_dir = \"/volume1/certs/build1\"\n"
	if _, err := Parse([]byte(ok)); err != nil {
		t.Fatalf("a good remote profile: %v", err)
	}
	ok = base + "executor = \"kubernetes\"\n[runner.profiles.kubernetes]\nhost = \"https://k8s:6443\"\nca_file = \"/ca\"\ntoken_file = \"/t\"\nnamespace = \"ci\"\ncpu_request = \"500m\"\nmemory_limit = \"4Gi\"\n"
	if _, err := Parse([]byte(ok)); err != nil {
		t.Fatalf("a good kubernetes profile: %v", err)
	}
}
