package download

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/testenv"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// testRegistry is a real distribution registry on loopback, with its data in a temp dir.
type testRegistry struct {
	Addr string // 127.0.0.1:port
}

type registryOpts struct {
	certFile, keyFile string
}

func startRegistry(t testing.TB, o registryOpts) *testRegistry {
	t.Helper()
	bin := testenv.RegistryBinary(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
`, filepath.Join(dir, "data"), addr)
	if o.certFile != "" {
		cfg += fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", o.certFile, o.keyFile)
	}
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the registry: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("the registry did not listen on %s within 30 s: %s", addr, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &testRegistry{Addr: addr}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// engineImage exports a local test image with `docker save` and reads it with go-containerregistry,
// so tests push real image content (the Redis test image) into the registry.
var (
	savedMu sync.Mutex
	saved   = map[string]v1.Image{}
)

func engineImage(t testing.TB, ref string) v1.Image {
	t.Helper()
	savedMu.Lock()
	defer savedMu.Unlock()
	if img, ok := saved[ref]; ok {
		return img
	}
	file := filepath.Join(os.TempDir(), "forgebox-download-test-"+strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
	if _, err := os.Stat(file); err != nil {
		out, err := exec.Command("docker", "save", "-o", file+".tmp", ref).CombinedOutput()
		if err != nil {
			t.Fatalf("docker save %s: %v: %s", ref, err, out)
		}
		if err := os.Rename(file+".tmp", file); err != nil {
			t.Fatal(err)
		}
	}
	// Compressed once into an OCI layout beside it, so every push reuses the gzip work.
	lay := file + ".oci"
	if _, err := os.Stat(filepath.Join(lay, "index.json")); err != nil {
		tag, err := name.NewTag(ref)
		if err != nil {
			t.Fatal(err)
		}
		src, err := tarball.ImageFromPath(file, &tag)
		if err != nil {
			t.Fatalf("read %s: %v", file, err)
		}
		os.RemoveAll(lay)
		p, err := layout.Write(lay, empty.Index)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AppendImage(src); err != nil {
			t.Fatalf("write %s: %v", lay, err)
		}
	}
	idx, err := layout.ImageIndexFromPath(lay)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		t.Fatalf("layout %s: %v", lay, err)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	saved[ref] = img
	return img
}

func push(t testing.TB, img v1.Image, ref string) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithTransport(http.DefaultTransport)); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

func pushIndex(t testing.TB, idx v1.ImageIndex, ref string) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx, remote.WithTransport(http.DefaultTransport)); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// imageBytes is what a download of img must move at least: its manifest and blobs.
func imageBytes(t testing.TB, img v1.Image) int64 {
	t.Helper()
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := imageBlobs(img)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(len(raw))
	for _, b := range blobs {
		n += b.Size
	}
	return n
}

// cutProxy forwards TCP to a target and misbehaves as a bad link does: it cuts a connection once
// cutAfter bytes went to the client on it, or stalls it there (stall), and may limit the rate.
// It counts every byte it sends to clients, so a test sees what a download really cost.
type cutProxy struct {
	Addr     string
	target   string
	cutAfter atomic.Int64 // 0: never
	stall    atomic.Bool
	rate     atomic.Int64 // bytes per second per connection; 0: unlimited
	sent     atomic.Int64
	cuts     atomic.Int64
	conns    atomic.Int64
	l        net.Listener
	mu       sync.Mutex
	open     map[net.Conn]bool
}

func startCutProxy(t testing.TB, target string) *cutProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{Addr: l.Addr().String(), target: target, l: l, open: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		l.Close()
		p.mu.Lock()
		for c := range p.open { // idle keep-alive connections would hold serve forever
			c.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.serve(c, done)
			}()
		}
	}()
	return p
}

func (p *cutProxy) serve(client net.Conn, done <-chan struct{}) {
	defer client.Close()
	p.conns.Add(1)
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	p.track(client, up)
	defer p.untrack(client, up)
	go func() { io.Copy(up, client); up.(*net.TCPConn).CloseWrite() }()
	buf := make([]byte, 32<<10)
	var onConn int64
	limit := p.cutAfter.Load()
	start := time.Now()
	for {
		want := len(buf)
		if limit > 0 && limit-onConn < int64(want) {
			want = int(limit - onConn)
		}
		if want == 0 {
			p.cuts.Add(1)
			if p.stall.Load() {
				<-done // hold the connection open, sending nothing
			}
			return
		}
		n, err := up.Read(buf[:want])
		if n > 0 {
			if r := p.rate.Load(); r > 0 {
				due := start.Add(time.Duration(float64(onConn+int64(n)) / float64(r) * float64(time.Second)))
				time.Sleep(time.Until(due))
			}
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
			onConn += int64(n)
			p.sent.Add(int64(n))
		}
		if err != nil {
			return
		}
	}
}

func (p *cutProxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.open[c] = true
	}
}

func (p *cutProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.open, c)
	}
}

// connectProxy is a small HTTP CONNECT proxy: it maps the host names in routes to loopback
// addresses (so a registry "elsewhere" is reached only through it) and counts tunnels.
type connectProxy struct {
	Addr    string
	tunnels atomic.Int64
}

func startConnectProxy(t testing.TB, routes map[string]string) *connectProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connectProxy{Addr: l.Addr().String()}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil || req.Method != http.MethodConnect {
					fmt.Fprint(c, "HTTP/1.1 405 Method Not Allowed\r\n\r\n")
					return
				}
				target, ok := routes[req.Host]
				if !ok {
					fmt.Fprint(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
					return
				}
				up, err := net.Dial("tcp", target)
				if err != nil {
					fmt.Fprint(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
					return
				}
				defer up.Close()
				p.tunnels.Add(1)
				fmt.Fprint(c, "HTTP/1.1 200 Connection established\r\n\r\n")
				go io.Copy(up, br)
				io.Copy(c, up)
			}()
		}
	}()
	return p
}

// selfSigned writes a certificate and key for host and returns their paths and a pool that
// trusts the certificate.
func selfSigned(t testing.TB, host string) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func tlsTo(pool *x509.CertPool) *tls.Config { return &tls.Config{RootCAs: pool} }

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
