package download

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/testenv"
)

// BenchmarkPullUnderCuts pulls the same image through a link that drops every connection after a
// sixth of the smallest layer, once with forgebox's download and once with the engine's own pull
// (its in-pull retries, as forgebox's "engine" pull_via uses them), and reports for each whether
// it completed and the bytes sent per byte of image. Run it with -benchtime=1x (bench/README.md).
func BenchmarkPullUnderCuts(b *testing.B) {
	reg := startRegistry(b, registryOpts{})
	proxy := startCutProxy(b, reg.Addr)
	img, _ := testImage(b, reg.Addr, "forgebox/bench")
	size := imageBytes(b, img)
	cut := smallestLayer(b, img) / 6
	ref := proxy.Addr + "/forgebox/bench:test"

	b.Run("forgebox", func(b *testing.B) {
		for range b.N {
			proxy.sent.Store(0)
			proxy.cutAfter.Store(cut)
			f := newFetcher(b, b.TempDir())
			start := time.Now()
			_, err := f.Fetch(context.Background(), ref)
			report(b, err, proxy.sent.Load(), size, time.Since(start))
		}
	})
	b.Run("engine", func(b *testing.B) {
		eng := testenv.Engine(b)
		for range b.N {
			exec.Command("docker", "rmi", "-f", ref).Run()
			proxy.sent.Store(0)
			proxy.cutAfter.Store(cut)
			start := time.Now()
			err := eng.Pull(context.Background(), ref, engine.DefaultPullRetry, func(engine.PullProgress) {})
			report(b, err, proxy.sent.Load(), size, time.Since(start))
			exec.Command("docker", "rmi", "-f", ref).Run()
		}
	})
}

func report(b *testing.B, err error, sent, size int64, took time.Duration) {
	done := 1.0
	if err != nil {
		done = 0
		b.Logf("did not complete: %v", err)
	}
	b.ReportMetric(done, "completed")
	b.ReportMetric(float64(sent)/float64(size), "sent/image")
	b.ReportMetric(took.Seconds(), "s")
}
