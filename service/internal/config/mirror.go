package config

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// DockerHub is the registry a stack.registry_mirrors entry serves when it names none.
const DockerHub = name.DefaultRegistry

// ParseMirror reads a stack.registry_mirrors entry: "https://mirror.example" mirrors Docker Hub;
// "registry.gitlab.com=https://mirror.example" mirrors the registry named before the "=". It
// returns the registry the mirror stands for and where the mirror answers.
func ParseMirror(s string) (registry string, u *url.URL, err error) {
	registry = DockerHub
	if before, after, ok := strings.Cut(s, "="); ok {
		registry, s = strings.TrimSpace(before), strings.TrimSpace(after)
		if registry == "docker.io" {
			registry = DockerHub
		}
		if _, err := name.NewRegistry(registry); err != nil || registry == "" {
			return "", nil, fmt.Errorf("%q before \"=\" is not a registry host name", registry)
		}
	}
	u, err = url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", nil, fmt.Errorf("%q is not an http:// or https:// URL of a registry", s)
	}
	if u.Path != "" && u.Path != "/" {
		return "", nil, fmt.Errorf("%q has a path; a registry mirror answers at its root (/v2/)", s)
	}
	return registry, u, nil
}
