package stack_test

// A runner profile on a second Docker Engine: a private dockerd in a network namespace of its
// own, joined to the host by a veth pair as a second machine on the LAN would be, listening on
// TCP with TLS certificates this test makes. The runner stand-in (on the machine's engine)
// drives it as gitlab-runner's docker executor does with host, tls_verify and tls_cert_path;
// the GitLab stand-in records the job's fetch. A pass shows the wiring, not a real runner.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/doctor"
	"github.com/forgebox/forgebox/service/internal/testenv"
)

// testCA signs certificates for the test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return testCA{cert: c, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes ca.pem, cert.pem and key.pem into dir: a server certificate for ip, or a client
// certificate when ip is "".
func (ca testCA) issue(t *testing.T, dir, ip string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if ip != "" {
		tmpl.Subject.CommonName = ip
		tmpl.IPAddresses = []net.IP{net.ParseIP(ip)}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.MkdirAll(dir, 0o700)
	for name, b := range map[string][]byte{
		"ca.pem":   ca.pem,
		"cert.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"key.pem":  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRemoteDockerProfileRunsJobsOnAnotherEngine(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	certs := t.TempDir()
	ca := newTestCA(t, "forgebox test CA")
	pe := testenv.StartPrivateEngine(t, testenv.PrivateEngineOptions{Link: true,
		LinkArgs: func(_, engineIP string) []string {
			srv := filepath.Join(certs, "server")
			ca.issue(t, srv, engineIP)
			return []string{"--tlsverify", "--tlscacert", filepath.Join(srv, "ca.pem"),
				"--tlscert", filepath.Join(srv, "cert.pem"), "--tlskey", filepath.Join(srv, "key.pem"),
				"-H", "tcp://" + engineIP + ":2376"}
		}})
	hostIP, engineIP := pe.LinkAddrs()
	// The job image and the helper image, as an operator would pull them on the build machine.
	pe.Load(f.cfg.Redis.Image, f.cfg.Runner.HelperImage)

	// GitLab's external name is the host's address on the link: what the build machine reaches.
	f.cfg.GitLab.Host = hostIP
	f.cfg.Runner.Concurrent = 2
	remote := config.Profile{Name: "remote", Image: f.cfg.Redis.Image, Tags: []string{"remote"}, Concurrency: 1,
		DockerHost: "tcp://" + engineIP + ":2376", DockerCertDir: filepath.Join(certs, "client")}
	f.cfg.Runner.Profiles = append(f.cfg.Runner.Profiles, remote)

	// Each wrong certificate fails doctor and up with its own words, and up changes nothing.
	for _, tc := range []struct{ name, want string }{
		{"client certificate of another CA", "refused forgebox's client certificate"},
		{"ca.pem that did not sign the engine", "did not sign: put that engine's CA into ca.pem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			newTestCA(t, "someone else's CA").issue(t, remote.DockerCertDir, "")
			if tc.want == "refused forgebox's client certificate" {
				os.WriteFile(filepath.Join(remote.DockerCertDir, "ca.pem"), ca.pem, 0o600)
			}
			checks := doctor.Run(ctx, f.cfg, f.eng, nil)
			var found bool
			for _, c := range checks {
				if c.Name == "remote engine remote" {
					found = true
					if c.Status != doctor.Fail || !strings.Contains(c.Detail, tc.want) {
						t.Errorf("doctor: %+v", c)
					}
				}
			}
			if !found {
				t.Fatalf("doctor has no remote engine check: %+v", checks)
			}
			_, err := f.stack().Up(ctx)
			if err == nil || !strings.Contains(err.Error(), "runner profile remote") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("up with a wrong certificate: %v", err)
			}
			for c, s := range f.status(ctx) {
				if s.ID != "" {
					t.Errorf("up refused yet created %s", c)
				}
			}
		})
	}

	ca.issue(t, remote.DockerCertDir, "")
	for _, c := range doctor.Run(ctx, f.cfg, f.eng, nil) {
		if c.Name == "remote engine remote" && c.Status != doctor.OK {
			t.Fatalf("doctor with the right certificate: %+v", c)
		}
	}
	f.up(ctx)

	rc := f.runnerConfig()
	var rr *struct{ host, url, clone, certPath, net string }
	for _, r := range rc.Runners {
		if strings.HasSuffix(r.Name, "-remote") {
			rr = &struct{ host, url, clone, certPath, net string }{r.Docker.Host, r.URL, r.CloneURL, r.Docker.TLSCertPath, r.Docker.NetworkMode}
			if !r.Docker.TLSVerify {
				t.Errorf("tls_verify is off")
			}
		}
	}
	ext := fmt.Sprintf("http://%s:%d", hostIP, f.cfg.GitLab.HTTPPort)
	if rr == nil || rr.host != remote.DockerHost || rr.url != ext || rr.clone != ext || rr.certPath != "/etc/gitlab-runner/certs/remote" || rr.net != "" {
		t.Fatalf("remote runner in config.toml: %+v", rr)
	}
	for _, name := range []string{"ca.pem", "cert.pem", "key.pem"} {
		fi, err := os.Stat(filepath.Join(f.cfg.Stack.DataDir, "runner", "certs", "remote", name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s in the runner's dir: %v %v", name, fi, err)
		}
	}

	recs := f.records()
	f.waitJobFetches(ctx, []int64{recs["default"].ID, recs["remote"].ID})
	var fetches []struct {
		RemoteAddr string `json:"remote_addr"`
		RunnerID   any    `json:"runner_id"`
		Host       string `json:"host"`
	}
	f.apiGet(ctx, "/api/v4/standin/fetches", &fetches)
	want := fmt.Sprint(recs["remote"].ID)
	var seen bool
	for _, fe := range fetches {
		if fmt.Sprint(fe.RunnerID) != want {
			continue
		}
		seen = true
		// The job container ran on the other engine: its fetch came in over the link, to the
		// external name and port.
		if fe.Host != fmt.Sprintf("%s:%d", hostIP, f.cfg.GitLab.HTTPPort) || !strings.HasPrefix(fe.RemoteAddr, engineIP) {
			t.Errorf("remote runner's fetch: host %q from %q, want %s:%d from %s", fe.Host, fe.RemoteAddr, hostIP, f.cfg.GitLab.HTTPPort, engineIP)
		}
	}
	if !seen {
		t.Fatalf("no fetch of runner %s in %+v", want, fetches)
	}
	t.Run("second up changes nothing", func(t *testing.T) {
		if plan := f.up(ctx); !plan.Empty() {
			t.Fatalf("second up planned:\n%s", plan)
		}
	})
}
