package stack

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/msg"
)

// checkRemoteEngines asks every remote profile's Docker Engine for its version with the
// profile's client certificate, before up changes anything: a wrong certificate or an engine
// that does not answer stops up with what to do, instead of a runner whose jobs fail later.
// forgebox asks from where it runs; the runner asks from its container on the same machine.
func (s *Stack) checkRemoteEngines(ctx context.Context) error {
	for _, p := range s.cfg.Runner.Profiles {
		if !p.Remote() {
			continue
		}
		info, err := engine.CheckRemote(ctx, p.DockerHost, p.DockerCertDir)
		if err != nil {
			return fmt.Errorf("runner profile %s: %w", p.Name, err)
		}
		s.log.Info("remote engine answers", "profile", p.Name, "host", p.DockerHost, "version", info.ServerVersion, "arch", info.Arch)
	}
	return nil
}

// remoteCertsDrift names the remote profiles whose certificate copy in the runner's dir differs
// from docker_cert_dir (or is missing).
func remoteCertsDrift(cfg config.Config) []msg.Msg {
	var out []msg.Msg
	for _, p := range cfg.Runner.Profiles {
		if !p.Remote() && !p.OnKubernetes() {
			continue
		}
		for _, f := range certFiles(p) {
			want, err := os.ReadFile(certSource(p, f))
			have, err2 := os.ReadFile(filepath.Join(runnerCertsDir(cfg, p.Name), f))
			if err != nil || err2 != nil || !bytes.Equal(want, have) {
				out = append(out, msg.New("plan.runner.copyCerts", "profile", p.Name))
				break
			}
		}
	}
	return out
}

// writeRemoteCerts copies each remote profile's ca.pem, cert.pem and key.pem into
// <data_dir>/runner/certs/<profile> (dirs 0700, files 0600: key.pem is a secret), which the
// runner container sees as its tls_cert_path. Certificates of removed profiles go too.
func writeRemoteCerts(cfg config.Config) error {
	root := filepath.Join(runnerDir(cfg), "certs")
	wanted := map[string]bool{}
	for _, p := range cfg.Runner.Profiles {
		if !p.Remote() && !p.OnKubernetes() {
			continue
		}
		wanted[p.Name] = true
		dir := runnerCertsDir(cfg, p.Name)
		if err := ensureDir(Dir{Path: dir, Mode: 0o700}); err != nil {
			return err
		}
		for _, f := range certFiles(p) {
			b, err := os.ReadFile(certSource(p, f))
			if err != nil {
				return fmt.Errorf("runner profile %s: %w", p.Name, err)
			}
			dst := filepath.Join(dir, f)
			if have, err := os.ReadFile(dst); err == nil && bytes.Equal(have, b) {
				continue
			}
			if err := config.WriteFileAtomic(dst, b, 0o600); err != nil {
				return fmt.Errorf("copy %s of profile %s: %w", f, p.Name, err)
			}
		}
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil // none yet
	}
	for _, e := range ents {
		if e.IsDir() && !wanted[e.Name()] {
			// Only forgebox writes here: a removed profile's copy, never the user's own files.
			if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
				return fmt.Errorf("remove the certificate copy of removed profile %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

// certFiles are the files a profile's runner reads from its certs dir: a remote engine's client
// certificate, or a cluster's CA.
func certFiles(p config.Profile) []string {
	if p.OnKubernetes() {
		return []string{"ca.pem"}
	}
	return engine.RemoteCertFiles
}

func certSource(p config.Profile, f string) string {
	if p.OnKubernetes() {
		return p.Kubernetes.CAFile
	}
	return filepath.Join(p.DockerCertDir, f)
}

// kubeTokens reads the kubernetes profiles' tokens from the secret store.
func kubeTokens(cfg config.Config, secrets interface{ Get(string) (string, bool) }) map[string]string {
	out := map[string]string{}
	for _, p := range cfg.Runner.Profiles {
		if p.OnKubernetes() {
			if t, ok := secrets.Get(kubeTokenSecret(p.Name)); ok {
				out[p.Name] = t
			}
		}
	}
	return out
}

// storeKubeTokens keeps each kubernetes profile's token (token_file) in the secret store, where
// it is masked in every output, and renders it from there into config.toml (mode 0600).
func (s *Stack) storeKubeTokens(cfg config.Config) error {
	for _, p := range cfg.Runner.Profiles {
		if !p.OnKubernetes() {
			continue
		}
		b, err := os.ReadFile(p.Kubernetes.TokenFile)
		if err != nil {
			return fmt.Errorf("runner profile %s: read the service account token: %w", p.Name, err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return fmt.Errorf("runner profile %s: %s is empty: put the service account's token there (kubectl create token NAME -n NAMESPACE)", p.Name, p.Kubernetes.TokenFile)
		}
		if have, ok := s.secrets.Get(kubeTokenSecret(p.Name)); ok && have == tok {
			continue
		}
		if err := s.secrets.Set(kubeTokenSecret(p.Name), tok); err != nil {
			return err
		}
	}
	return nil
}
