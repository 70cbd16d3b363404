package spkbuild

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// DefaultCACerts is where the build host keeps the CA bundle the controller image carries, so
// the controller can check the TLS of the registries it pulls from.
const DefaultCACerts = "/etc/ssl/certs/ca-certificates.crt"

// ImageOptions describe the controller image.
type ImageOptions struct {
	Ref     string // name:tag, e.g. forgebox/controller:0.1.0-0042
	Arch    Arch
	Binary  string // the static linux forgebox binary for Arch
	CACerts string // CA bundle; DefaultCACerts when empty
	Port    int    // the controller's port inside its container
	Created time.Time
	Version string // the package version, as a label
}

// WriteControllerImage writes the controller image as a gzip-compressed `docker save` tarball:
// one layer with /forgebox, the CA bundle and /tmp, on nothing (empty.Image), configured to run
// `forgebox serve --listen 0.0.0.0:<port>` as root. Docker's `load` and Container Manager's
// preload-image read it.
func WriteControllerImage(w io.Writer, o ImageOptions) error {
	if o.CACerts == "" {
		o.CACerts = DefaultCACerts
	}
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return fmt.Errorf("controller image: %w", err)
	}
	certs, err := os.ReadFile(o.CACerts)
	if err != nil {
		return fmt.Errorf("controller image: CA certificates: %w", err)
	}
	layerTar := newTree()
	layerTar.file("forgebox", 0o755, bin)
	layerTar.file("etc/ssl/certs/ca-certificates.crt", 0o644, certs)
	layerTar.entries["tmp"] = entry{name: "tmp", mode: 0o1777, dir: true}
	var lb bytes.Buffer
	if err := layerTar.write(&lb, o.Created, nil); err != nil {
		return fmt.Errorf("controller image layer: %w", err)
	}
	layerBytes := lb.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithCompressionLevel(gzip.BestCompression), tarball.WithCompressedCaching)
	if err != nil {
		return fmt.Errorf("controller image layer: %w", err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: o.Created},
			CreatedBy: "forgebox spkbuild: /forgebox, CA certificates, /tmp",
		},
	})
	if err != nil {
		return fmt.Errorf("controller image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("controller image: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture = o.Arch.OCI
	cf.OS = "linux"
	cf.Created = v1.Time{Time: o.Created}
	port := strconv.Itoa(o.Port)
	cf.Config = v1.Config{
		Entrypoint:   []string{"/forgebox"},
		Cmd:          []string{"serve", "--listen", "0.0.0.0:" + port},
		Env:          []string{"PATH=/", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
		WorkingDir:   "/",
		ExposedPorts: map[string]struct{}{port + "/tcp": {}},
		Labels: map[string]string{
			"org.opencontainers.image.title":       "Forgebox controller",
			"org.opencontainers.image.description": "Runs PostgreSQL, Redis, GitLab and GitLab Runner through the Docker socket",
			"org.opencontainers.image.version":     o.Version,
		},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return fmt.Errorf("controller image config: %w", err)
	}
	tag, err := name.NewTag(o.Ref)
	if err != nil {
		return fmt.Errorf("controller image tag %q: %w", o.Ref, err)
	}
	return gzipTo(w, func(zw io.Writer) error { return tarball.Write(tag, img, zw) })
}
