package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/versions"
	"github.com/docker/docker/client"
)

// RemoteCertFiles are the names GitLab Runner reads in a profile's tls_cert_path (gitlab-runner
// v19.2.2 helpers/docker/options.go), Docker's own DOCKER_CERT_PATH names.
var RemoteCertFiles = []string{"ca.pem", "cert.pem", "key.pem"}

// RemoteInfo is what a remote engine said about itself.
type RemoteInfo struct {
	Host          string    `json:"host"`
	APIVersion    string    `json:"api_version"`
	ServerVersion string    `json:"server_version"`
	Arch          string    `json:"arch"`
	CertExpires   time.Time `json:"cert_expires"`
}

// CheckRemote connects to another Docker Engine over TCP with the TLS client certificate in
// certDir, as GitLab Runner will (the CA in ca.pem only, TLS 1.2 or newer), and asks its version.
// The error says what is wrong in words a user can act on: a missing or unreadable file, an
// expired certificate, an engine that is not signed by ca.pem, or one that refuses the client.
func CheckRemote(ctx context.Context, host, certDir string) (RemoteInfo, error) {
	info := RemoteInfo{Host: host}
	tc, leaf, err := remoteTLS(certDir)
	if err != nil {
		return info, err
	}
	info.CertExpires = leaf.NotAfter
	if time.Now().After(leaf.NotAfter) {
		return info, fmt.Errorf("the client certificate %s expired on %s: make a new one for %s", filepath.Join(certDir, "cert.pem"), leaf.NotAfter.Format(time.DateOnly), host)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc, DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}}
	api, err := client.NewClientWithOpts(client.WithHost(host), client.WithHTTPClient(hc), client.WithAPIVersionNegotiation())
	if err != nil {
		return info, fmt.Errorf("docker client for %s: %w", host, err)
	}
	defer api.Close()
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	v, err := api.ServerVersion(cctx)
	if err != nil {
		return info, explainRemoteError(host, certDir, err)
	}
	if versions.LessThan(v.APIVersion, MinAPIVersion) {
		return info, fmt.Errorf("the Docker Engine at %s speaks API %s, older than the %s GitLab Runner's jobs need here (Docker 20.10): update Docker there", host, v.APIVersion, MinAPIVersion)
	}
	info.APIVersion, info.ServerVersion, info.Arch = v.APIVersion, v.Version, v.Arch
	return info, nil
}

// remoteTLS loads the three files; the client trusts only ca.pem, as the runner does
// (ExclusiveRootPools in helpers/docker/options.go).
func remoteTLS(dir string) (*tls.Config, *x509.Certificate, error) {
	read := func(name string) ([]byte, error) {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w (docker_cert_dir must hold %s)", p, err, strings.Join(RemoteCertFiles, ", "))
		}
		return b, nil
	}
	caPEM, err := read("ca.pem")
	if err != nil {
		return nil, nil, err
	}
	certPEM, err := read("cert.pem")
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := read("key.pem")
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, fmt.Errorf("%s holds no PEM certificate", filepath.Join(dir, "ca.pem"))
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("cert.pem and key.pem in %s do not make a client certificate: %w", dir, err)
	}
	block, _ := pem.Decode(certPEM)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, "cert.pem"), err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, leaf, nil
}

func explainRemoteError(host, dir string, err error) error {
	var unknown x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	msg := err.Error()
	switch {
	case errors.As(err, &unknown) || strings.Contains(msg, "certificate signed by unknown authority"):
		return fmt.Errorf("the Docker Engine at %s presents a certificate that %s did not sign: put that engine's CA into ca.pem: %w", host, filepath.Join(dir, "ca.pem"), err)
	case errors.As(err, &hostErr) || strings.Contains(msg, "certificate is valid for"):
		return fmt.Errorf("the Docker Engine's certificate does not name %s: reach it by a name or address its certificate lists, or remake its certificate: %w", host, err)
	case errors.As(err, &invalid):
		return fmt.Errorf("the Docker Engine at %s presents an invalid certificate: %w", host, err)
	case strings.Contains(msg, "bad certificate") || strings.Contains(msg, "unknown certificate authority") ||
		strings.Contains(msg, "certificate required") || strings.Contains(msg, "handshake failure"):
		return fmt.Errorf("the Docker Engine at %s refused forgebox's client certificate (%s): sign it with the CA the engine's --tlscacert names: %w", host, filepath.Join(dir, "cert.pem"), err)
	case strings.Contains(msg, "connection refused"):
		return fmt.Errorf("nothing listens at %s: start that engine with a TLS listener (dockerd --tlsverify -H tcp://0.0.0.0:2376) and open the port: %w", host, err)
	case strings.Contains(msg, "timeout") || strings.Contains(msg, "no route to host") || strings.Contains(msg, "deadline"):
		return fmt.Errorf("the Docker Engine at %s does not answer from this machine: check the address and the firewall between them: %w", host, err)
	}
	return fmt.Errorf("the Docker Engine at %s: %w", host, err)
}
