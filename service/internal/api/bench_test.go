package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkController measures the controller against a running stack on the real engine:
//
//	status:          GET api/v1/status from 8 concurrent clients (the cached snapshot that
//	                 engine events keep current): p50 and p99 latency, requests per second
//	status-refresh:  the same with ?refresh=1, which asks the engine every time
//	idle-rss:        resident memory of a started `forgebox serve`, idle after one status call
//
// Run it with a bounded count, e.g.:
//
//	go test -run '^$' -bench Controller -benchtime 2000x ./service/internal/api/
func BenchmarkController(b *testing.B) {
	h := newHarness(b, harnessOptions{engine: true})
	o := h.startOp("/api/v1/up")
	if f := h.waitOperation(o.ID, 6*time.Minute); f.State != "succeeded" {
		b.Fatalf("up: %s", f.Error)
	}
	b.Run("status", func(b *testing.B) { benchStatus(b, h, "/api/v1/status") })
	b.Run("status-refresh", func(b *testing.B) { benchStatus(b, h, "/api/v1/status?refresh=1") })
	b.Run("idle-rss", func(b *testing.B) { benchIdleRSS(b, h) })
}

func benchStatus(b *testing.B, h *harness, path string) {
	const clients = 8
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: time.Minute}
	lat := make([]time.Duration, b.N)
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				r, _ := http.NewRequest("GET", h.ts.URL+path, nil)
				r.Header.Set("Authorization", "Bearer "+h.creds.AdminToken)
				t0 := time.Now()
				res, err := client.Do(r)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				lat[i] = time.Since(t0)
				if res.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d status requests failed", n, b.N)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(0, "ns/op") // the latency percentiles say it better
}

func benchIdleRSS(b *testing.B, h *harness) {
	root, err := os.Getwd()
	if err != nil {
		b.Fatal(err)
	}
	for !fileExistsAt(filepath.Join(root, "go.mod")) {
		root = filepath.Dir(root)
	}
	bin := filepath.Join(b.TempDir(), "forgebox")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./service/cmd/forgebox")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build forgebox: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config", h.cfgPath, "serve", "--listen", "127.0.0.1:0")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Signal(os.Interrupt)
	addr := regexp.MustCompile(`serving on (http://\S+/)`)
	sc := bufio.NewScanner(stdout)
	var base string
	for sc.Scan() {
		if m := addr.FindStringSubmatch(sc.Text()); m != nil {
			base = m[1]
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	if base == "" {
		b.Fatal("forgebox serve did not say where it listens")
	}
	// One status call, so the engine connection, the snapshot and the stats sampler are all
	// set up, then idle.
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, _ := http.NewRequest("GET", base+"api/v1/status", nil)
		r.Header.Set("Authorization", "Bearer "+h.creds.AdminToken)
		res, err := http.DefaultClient.Do(r)
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK && strings.Contains(string(body), `"ok":true`) {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("forgebox serve did not report a connected engine within 30s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(5 * time.Second)
	rss, err := vmRSS(cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
	}
	b.ReportMetric(float64(rss)/1024, "idle-RSS-MiB")
	b.ReportMetric(0, "ns/op")
}

func fileExistsAt(p string) bool { _, err := os.Stat(p); return err == nil }

// vmRSS reads a process's resident set size, in KiB, from /proc.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
