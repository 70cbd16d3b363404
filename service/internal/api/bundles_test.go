package api_test

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/api"
	"github.com/forgebox/forgebox/service/internal/download"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/stack"
)

// writeDamagedBundle writes a bundle whose manifest is sound but whose one blob's bytes do not
// match its digest (same size: a flipped byte in transit).
func writeDamagedBundle(t *testing.T, file, ref string) string {
	t.Helper()
	good := []byte(`{"schemaVersion":2,"layers":[]}`)
	sum := sha256.Sum256(good)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	bad := append([]byte(nil), good...)
	bad[len(bad)-2] = '!'
	bm, _ := json.Marshal(download.BundleManifest{Format: download.BundleFormat, Created: time.Now(), Platform: "linux/amd64",
		Images: []download.BundleImage{{Ref: ref, Manifest: digest, Size: int64(len(good))}},
		Blobs:  []download.BundleBlob{{Digest: digest, Size: int64(len(good))}}})
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for _, m := range []struct {
		name string
		body []byte
	}{{"forgebox-bundle.json", bm}, {"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)}, {"blobs/sha256/" + hex.EncodeToString(sum[:]), bad}} {
		tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.body)), Typeflag: tar.TypeReg})
		tw.Write(m.body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return digest
}

// The share's bundles are listed (top level and its bundles folder); a name not in the listing,
// or one that climbs out of the share, is refused before anything is opened.
func TestBundlesListedFromTheShare(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	share := h.cfg.ShareDir()
	writeDamagedBundle(t, filepath.Join(share, "top.tar"), "forgebox-test/x:1")
	writeDamagedBundle(t, filepath.Join(share, "bundles", "offline-arm64.tar"), "forgebox-test/x:1")
	os.WriteFile(filepath.Join(share, "bundles", "notes.txt"), []byte("x"), 0o644)
	var page api.BundlesPage
	res, body := h.do(h.bearer("GET", "/api/v1/bundles", nil), &page)
	expectStatus(t, res, body, http.StatusOK)
	if page.Dir != share || len(page.Bundles) != 2 || page.Bundles[0].Name != "bundles/offline-arm64.tar" || page.Bundles[1].Name != "top.tar" || page.Bundles[1].Size == 0 {
		t.Fatalf("bundles page %+v", page)
	}
	for _, name := range []string{"missing.tar", "../forgebox.toml", "bundles/notes.txt"} {
		res, body := h.do(h.bearer("POST", "/api/v1/bundles/load", api.LoadBundleRequest{Name: name}), nil)
		expectError(t, res, body, http.StatusNotFound, api.CodeNotFound)
	}
}

// A damaged bundle in the share is refused by the load operation with the reason, and nothing
// reaches the engine or the image cache.
func TestDamagedBundleFromTheShareLoadsNothing(t *testing.T) {
	h := newHarness(t, harnessOptions{engine: true})
	ref := "forgebox-test/bundle-" + randHex(4) + ":damaged"
	digest := writeDamagedBundle(t, filepath.Join(h.cfg.ShareDir(), "bundles", "damaged.tar"), ref)

	var out struct {
		Operation api.Operation `json:"operation"`
	}
	res, body := h.do(h.bearer("POST", "/api/v1/bundles/load", api.LoadBundleRequest{Name: "bundles/damaged.tar"}), &out)
	expectStatus(t, res, body, http.StatusAccepted)
	op := h.waitOperation(out.Operation.ID, 2*time.Minute)
	if op.State != "failed" || !strings.Contains(op.Error, "damaged") || !strings.Contains(op.Error, "nothing was loaded") {
		t.Fatalf("operation %+v; want it refused as damaged", op)
	}
	if id, err := h.eng.ImageID(t.Context(), ref); err != nil || id != "" {
		t.Fatalf("image %s is on the engine (%q, %v) after a damaged bundle", ref, id, err)
	}
	blob := filepath.Join(stack.ImageCacheDir(h.cfg), "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
	if _, err := os.Stat(blob); !os.IsNotExist(err) {
		t.Fatalf("the damaged blob entered the cache (%v)", err)
	}
	var page api.EventsPage
	h.do(h.bearer("GET", "/api/v1/events?after=0&limit=2000", nil), &page)
	seen := false
	for _, e := range page.Events {
		seen = seen || (e.Op == "bundle load" && e.Kind == events.KindInfo && strings.Contains(e.Message, "verifying bundles/damaged.tar"))
	}
	if !seen {
		t.Errorf("the feed does not show the load's progress: %+v", page.Events)
	}
}
