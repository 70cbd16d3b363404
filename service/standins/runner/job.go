package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/versions"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-units"
)

// minAPIVersion is the oldest Engine API the stand-in speaks (Docker 20.10), as forgebox.
const minAPIVersion = "1.41"

// Labels on job containers.
const (
	labelStandin = "io.forgebox.standin"
	labelStack   = "io.forgebox.stack"
)

// jobTimeout bounds one job container's run.
const jobTimeout = 90 * time.Second

// probePath is the repository the job fetches from GitLab (the stand-in answers any).
const probePath = "/forgebox/standin-probe.git/info/refs?service=git-upload-pack"

// jobSpec is everything about a runner entry that shapes its job container.
type jobSpec struct {
	RunnerID   int64
	Token      string
	Name       string
	BaseURL    string // clone_url, else url
	Docker     Docker
	Env        []string
	DockerHost string
}

// probeURL is the URL the job fetches.
func (j jobSpec) probeURL() string { return strings.TrimRight(j.BaseURL, "/") + probePath }

// network names the job's network for the log line.
func (j jobSpec) network() string {
	if j.Docker.NetworkMode == "" {
		return "default"
	}
	return j.Docker.NetworkMode
}

// key identifies the job: once per runner id and token, and again only if what the job would
// prove (image, network, URL, limits) changes.
func (j jobSpec) key() string {
	b, _ := json.Marshal(struct {
		ID                                      int64
		Token, URL, Image, Net, Mem, CPUs, Host string
		Privileged                              bool
		Helper                                  string `json:",omitempty"`
	}{j.RunnerID, j.Token, j.probeURL(), j.Docker.Image, j.Docker.NetworkMode, j.Docker.Memory, j.Docker.CPUs, j.DockerHost, j.Docker.Privileged, j.Docker.HelperImage})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// dockers keeps one negotiated client per Docker host and certificate path.
type dockers struct {
	mu      sync.Mutex
	clients map[string]*client.Client
}

// get connects to [runners.docker] host as the runner does (gitlab-runner v19.2.2
// helpers/docker/options.go): with tls_verify, the client certificate is cert.pem and key.pem in
// tls_cert_path and the engine must be signed by ca.pem there, nothing else trusted.
func (d *dockers) get(ctx context.Context, dc Docker) (*client.Client, error) {
	host := dc.Host
	id := host + "|" + dc.TLSCertPath + "|" + strconv.FormatBool(dc.TLSVerify)
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.clients[id]; ok {
		return c, nil
	}
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	if dc.TLSVerify {
		if dc.TLSCertPath == "" {
			return nil, fmt.Errorf("Docker Engine at %s: tls_verify without tls_cert_path", host)
		}
		opts = append(opts, client.WithTLSClientConfig(filepath.Join(dc.TLSCertPath, "ca.pem"),
			filepath.Join(dc.TLSCertPath, "cert.pem"), filepath.Join(dc.TLSCertPath, "key.pem")))
	}
	c, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ping, err := c.Ping(pctx)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("Docker Engine at %s: %w", c.DaemonHost(), err)
	}
	if ping.APIVersion != "" && versions.LessThan(ping.APIVersion, minAPIVersion) {
		c.Close()
		return nil, fmt.Errorf("Docker Engine at %s speaks API %s, older than %s", c.DaemonHost(), ping.APIVersion, minAPIVersion)
	}
	c.NegotiateAPIVersionPing(ping)
	if d.clients == nil {
		d.clients = map[string]*client.Client{}
	}
	d.clients[id] = c
	return c, nil
}

var containerIDInPath = regexp.MustCompile(`/containers/([0-9a-f]{64})/`)

// ownContainerID finds the runner's own container: the engine's per-container files mounted at
// /etc/hostname and friends name it; the hostname is the short id unless someone set it.
func ownContainerID() string {
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if m := containerIDInPath.FindStringSubmatch(sc.Text()); m != nil {
				return m[1]
			}
		}
	}
	h, _ := os.Hostname()
	return h
}

// ownStackLabel reads io.forgebox.stack from the runner's own container, "" if it cannot.
func ownStackLabel(ctx context.Context, c *client.Client) string {
	id := ownContainerID()
	if id == "" {
		return ""
	}
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	insp, err := c.ContainerInspect(ictx, id)
	if err != nil || insp.Config == nil {
		return ""
	}
	return insp.Config.Labels[labelStack]
}

// fetchTar is a tar stream holding this binary as /forgebox-standin/fetch.
func fetchTar() (io.Reader, error) {
	exe, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("read own binary: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "forgebox-standin/", Mode: 0o755, ModTime: now}); err != nil {
		return nil, err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "forgebox-standin/fetch", Mode: 0o755, Size: int64(len(exe)), ModTime: now}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(exe); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &buf, nil
}

// ensureImage pulls the job image only when it is missing and the pull policy allows a pull.
// (The real runner also pulls a present image under "always"; the stand-in never reaches a
// registry for an image the engine has.)
func ensureImage(ctx context.Context, c *client.Client, ref string, policy PullPolicy) error {
	if _, err := c.ImageInspect(ctx, ref); err == nil {
		return nil
	} else if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("inspect image %s: %w", ref, err)
	}
	if len(policy) > 0 && !oneOf("always", policy) && !oneOf("if-not-present", policy) {
		return fmt.Errorf("image %s is not on the engine and pull_policy %v forbids pulling it", ref, []string(policy))
	}
	rc, err := c.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("pull %s: %w", ref, err)
		}
		if msg.Error != "" {
			return fmt.Errorf("pull %s: %s", ref, msg.Error)
		}
	}
}

// hostConfig applies [runners.docker] to the job container.
func hostConfig(d Docker) (*container.HostConfig, map[string]struct{}, error) {
	hc := &container.HostConfig{
		NetworkMode: container.NetworkMode(d.NetworkMode),
		Privileged:  d.Privileged,
		ExtraHosts:  d.ExtraHosts,
		DNS:         d.DNS,
		DNSSearch:   d.DNSSearch,
		ShmSize:     d.ShmSize,
		AutoRemove:  false,
	}
	var err error
	size := func(s string) int64 {
		if s == "" || err != nil {
			return 0
		}
		var n int64
		n, err = units.RAMInBytes(s)
		return n
	}
	hc.Memory = size(d.Memory)
	hc.MemorySwap = size(d.MemorySwap)
	hc.MemoryReservation = size(d.MemoryReservation)
	if err != nil {
		return nil, nil, err
	}
	if d.CPUs != "" {
		f, err := strconv.ParseFloat(d.CPUs, 64)
		if err != nil {
			return nil, nil, err
		}
		hc.NanoCPUs = int64(f * 1e9)
	}
	anon := map[string]struct{}{}
	for _, v := range d.Volumes {
		if strings.Contains(v, ":") {
			hc.Binds = append(hc.Binds, v)
		} else {
			anon[v] = struct{}{}
		}
	}
	return hc, anon, nil
}

// jobResult is how one job ended.
type jobResult struct {
	OK       bool
	ExitCode int
	Output   string
	Err      error
}

func (r jobResult) String() string {
	switch {
	case r.OK:
		return "ok"
	case r.Err != nil:
		return fmt.Sprintf("failed (%v)", r.Err)
	default:
		return fmt.Sprintf("failed (exit %d: %s)", r.ExitCode, lastLine(r.Output))
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// runJob starts one job container from the runner's image on its network, lets it fetch from
// GitLab, collects its exit code and output, and removes it.
func runJob(ctx context.Context, c *client.Client, j jobSpec, stack string, logf func(string, ...any)) jobResult {
	ctx, cancel := context.WithTimeout(ctx, jobTimeout+30*time.Second)
	defer cancel()
	if _, err := checkHelperImage(ctx, c, j.Docker); err != nil { // helper.go
		return jobResult{Err: err}
	}
	if err := ensureImage(ctx, c, j.Docker.Image, j.Docker.PullPolicy); err != nil {
		return jobResult{Err: err}
	}
	hc, anon, err := hostConfig(j.Docker)
	if err != nil {
		return jobResult{Err: err}
	}
	if stack == "" {
		stack = "none"
	}
	cfg := &container.Config{
		Image:      j.Docker.Image,
		Entrypoint: []string{"/forgebox-standin/fetch"},
		Cmd:        []string{j.probeURL(), strconv.FormatInt(j.RunnerID, 10)},
		Env:        append(append([]string{}, j.Env...), "CI=true", "CI_RUNNER_ID="+strconv.FormatInt(j.RunnerID, 10)),
		Volumes:    anon,
		Labels: map[string]string{
			labelStandin:                 "runner-job",
			labelStack:                   stack,
			"io.forgebox.standin.runner": strconv.FormatInt(j.RunnerID, 10),
		},
	}
	name := fmt.Sprintf("forgebox-standin-job-r%d-%s", j.RunnerID, randomSuffix())
	created, err := c.ContainerCreate(ctx, cfg, hc, nil, nil, name)
	if err != nil {
		return jobResult{Err: fmt.Errorf("create job container: %w", err)}
	}
	defer func() {
		rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer rcancel()
		if err := c.ContainerRemove(rctx, created.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			logf("cannot remove job container %s: %v", name, err)
		}
	}()
	tr, err := fetchTar()
	if err != nil {
		return jobResult{Err: err}
	}
	if err := c.CopyToContainer(ctx, created.ID, "/", tr, container.CopyToContainerOptions{}); err != nil {
		return jobResult{Err: fmt.Errorf("copy the fetch program into the job container: %w", err)}
	}
	waitC, errC := c.ContainerWait(ctx, created.ID, container.WaitConditionNextExit)
	if err := c.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return jobResult{Err: fmt.Errorf("start job container: %w", err)}
	}
	var code int64
	select {
	case w := <-waitC:
		if w.Error != nil {
			return jobResult{Err: fmt.Errorf("wait for job container: %s", w.Error.Message)}
		}
		code = w.StatusCode
	case err := <-errC:
		return jobResult{Err: fmt.Errorf("wait for job container: %w", err)}
	case <-time.After(jobTimeout):
		c.ContainerKill(context.Background(), created.ID, "KILL")
		return jobResult{Err: fmt.Errorf("job container still running after %s", jobTimeout)}
	case <-ctx.Done():
		return jobResult{Err: ctx.Err()}
	}
	var out bytes.Buffer
	if rc, err := c.ContainerLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true}); err == nil {
		stdcopy.StdCopy(&out, &out, io.LimitReader(rc, 64<<10))
		rc.Close()
	}
	return jobResult{OK: code == 0, ExitCode: int(code), Output: out.String()}
}

func randomSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}
