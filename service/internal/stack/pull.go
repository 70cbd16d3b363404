package stack

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/docker/go-units"
	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/download"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/msg"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// imageLoader is what forgebox's own downloads need of the engine besides Engine: its platform,
// and a way to load an image archive. The engine package's client has both.
type imageLoader interface {
	Info(ctx context.Context) (engine.Info, error)
	LoadImage(ctx context.Context, archive io.Reader) ([]string, error)
}

// ImageCacheDir is where forgebox's own downloads are kept: content-addressed, verified blobs,
// and the partial ones they resume from.
func ImageCacheDir(cfg config.Config) string {
	return filepath.Join(cfg.Stack.DataDir, "cache", "images")
}

// pullImage brings ref onto the engine the way stack.pull_via asks (see default.toml).
func (s *Stack) pullImage(ctx context.Context, component, ref string) error {
	via := s.cfg.Stack.PullVia
	if via == "auto" && len(s.cfg.Stack.RegistryMirrors) > 0 {
		via = "forgebox"
	}
	if via != "forgebox" {
		err := s.eng.Pull(ctx, ref, s.pullRetry, func(p engine.PullProgress) {
			s.emit(events.Event{Kind: events.KindPull, ID: p.Layer, Parent: p.Image, Status: pullStatus(p.Status), Component: component, Image: p.Image, Layer: p.Layer,
				Current: p.Current, Total: p.Total}.With(pullMsg(p.Status)))
		})
		if err == nil || via == "engine" || ctx.Err() != nil {
			return err
		}
		if _, ok := s.eng.(imageLoader); !ok {
			return err
		}
		s.say(events.Event{Kind: events.KindInfo, Status: events.Warning, Component: component, Image: ref},
			"pull.fallback", "image", ref, "error", msg.Raw(err.Error()))
		s.log.Warn("engine pull failed; forgebox downloads", "image", ref, "err", err)
	}
	return s.download(ctx, component, ref)
}

// download fetches ref into the image cache (resuming), then loads it into the engine.
func (s *Stack) download(ctx context.Context, component, ref string) error {
	eng, ok := s.eng.(imageLoader)
	if !ok {
		return fmt.Errorf("pull %s: this engine client cannot load images", ref)
	}
	f, err := s.fetcher(ctx, eng, component)
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	res, err := f.Fetch(ctx, ref)
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	s.say(events.Event{Kind: events.KindInfo, Status: events.Working, Component: component, Image: ref}, "pull.downloaded",
		"image", ref, "source", res.Source, "network", units.BytesSize(float64(res.Downloaded)), "size", units.BytesSize(float64(res.Size)))
	if err := f.Load(ctx, eng, ref); err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	return nil
}

// fetcher is a download.Fetcher for this stack: its cache, mirrors and the engine's platform.
func (s *Stack) fetcher(ctx context.Context, eng imageLoader, component string) (*download.Fetcher, error) {
	info, err := eng.Info(ctx)
	if err != nil {
		return nil, err
	}
	cache, err := download.OpenCache(ImageCacheDir(s.cfg))
	if err != nil {
		return nil, err
	}
	f := &download.Fetcher{
		Cache:    cache,
		Platform: v1.Platform{OS: orDefault(info.OS, "linux"), Architecture: orDefault(info.Arch, "amd64")},
	}
	for _, m := range s.cfg.Stack.RegistryMirrors {
		mm, err := download.ParseMirror(m)
		if err != nil {
			return nil, fmt.Errorf("stack.registry_mirrors: %w", err)
		}
		f.Mirrors = append(f.Mirrors, mm)
	}
	f.Progress = func(p download.Progress) {
		m := msg.New("pull.download", "status", downloadStatus(p.Status), "current", units.BytesSize(float64(p.Current)), "total", units.BytesSize(float64(p.Total)), "source", p.Source)
		if p.Rate > 0 || p.Left > 0 {
			m = msg.New("pull.downloadRate", "status", downloadStatus(p.Status), "current", units.BytesSize(float64(p.Current)), "total", units.BytesSize(float64(p.Total)), "source", p.Source,
				"rate", units.BytesSize(p.Rate), "left", p.Left.Round(time.Second).String())
		}
		s.emit(events.Event{Kind: events.KindPull, Status: events.Working, Component: component, Image: p.Image, Layer: "download",
			Current: p.Current, Total: p.Total}.With(m))
	}
	return f, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// downloadStatus is forgebox's own download's status word as a message; anything else (a lost
// connection it resumes) is the downloader's words.
func downloadStatus(status string) msg.Msg {
	switch status {
	case "downloading", "done":
		return msg.New("pull.status." + status)
	}
	return msg.New("pull.status.other", "status", msg.Raw(status))
}
