package api

// Offline bundles over the API: the app window lists the bundles (`forgebox bundle save`) placed
// in the package's share and loads one as an operation, its progress in the activity feed. The
// bundle is verified blob by blob before anything reaches the engine: a damaged one loads
// nothing (download.LoadBundle).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/download"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/msg"
	"github.com/forgebox/forgebox/service/internal/stack"
)

// bundleSubdir is the share's folder for bundles; its top level is looked at too.
const bundleSubdir = "bundles"

// BundleFile is one *.tar found in the share.
type BundleFile struct {
	Name     string    `json:"name"` // relative to the share: "x.tar" or "bundles/x.tar"
	Size     int64     `json:"size"`
	Modified time.Time `json:"modified"`
}

// BundlesPage is GET api/v1/bundles.
type BundlesPage struct {
	Dir     string       `json:"dir"` // the share
	Bundles []BundleFile `json:"bundles"`
}

// LoadBundleRequest is POST api/v1/bundles/load.
type LoadBundleRequest struct {
	Name string `json:"name"`
}

func (s *Server) bundleRoutes(v1 *gin.RouterGroup) {
	v1.GET("/bundles", s.getBundles)
	v1.POST("/bundles/load", s.postLoadBundle)
}

// listBundles finds the *.tar files at the share's top level and in its bundles folder.
func listBundles(cfg config.Config) ([]BundleFile, error) {
	share := cfg.ShareDir()
	out := []BundleFile{}
	for _, sub := range []string{"", bundleSubdir} {
		ents, err := os.ReadDir(filepath.Join(share, sub))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list bundles in %s: %w", share, err)
		}
		for _, e := range ents {
			if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".tar") {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				continue
			}
			out = append(out, BundleFile{Name: filepath.ToSlash(filepath.Join(sub, e.Name())), Size: fi.Size(), Modified: fi.ModTime().UTC()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *Server) getBundles(c *gin.Context) {
	cfg := s.config()
	list, err := listBundles(cfg)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, BundlesPage{Dir: cfg.ShareDir(), Bundles: list})
}

func (s *Server) postLoadBundle(c *gin.Context) {
	var req LoadBundleRequest
	if err := decodeJSON(c, &req); err != nil {
		fail(c, err)
		return
	}
	cfg := s.config()
	list, err := listBundles(cfg)
	if err != nil {
		fail(c, err)
		return
	}
	// Only a name from the listing: nothing outside the share is ever opened.
	found := false
	for _, b := range list {
		found = found || b.Name == req.Name
	}
	if !found {
		abort(c, codedError(http.StatusNotFound, CodeNotFound, msg.New("api.noBundle", "name", msg.Q(req.Name), "dir", cfg.ShareDir(), "sub", bundleSubdir)))
		return
	}
	file := filepath.Join(cfg.ShareDir(), filepath.FromSlash(req.Name))
	s.startOperation(c, "bundle load", "", func(ctx context.Context, st *stack.Stack) error {
		x, err := st.Begin("bundle load")
		if err != nil {
			return err
		}
		defer x.End()
		eng, ok := x.Engine().(download.Loader)
		if !ok {
			return errors.New("bundle load: this engine client cannot load images")
		}
		cache, err := download.OpenCache(stack.ImageCacheDir(x.Config()))
		if err != nil {
			return fmt.Errorf("bundle load: %w", err)
		}
		emit := func(m msg.Msg) { x.Emit(events.Event{Kind: events.KindInfo, Status: events.Working}.With(m)) }
		emit(msg.New("bundle.verifying", "name", req.Name))
		bm, err := download.LoadBundle(ctx, cache, eng, file, emit)
		if err != nil {
			return err
		}
		emit(msg.New("bundle.loaded", "n", len(bm.Images), "platform", bm.Platform, "name", req.Name))
		return nil
	})
}
