package dsm

import (
	"context"
	"log/slog"
	"strings"
)

// The controller's image: every package upgrade preloads a new tag of it, and nothing else
// removes the old ones (Synology's review list: "file leftover"). Every controller image spkbuild
// writes carries this title label, which tells it from a user's image of the same name.
const (
	ControllerImageRepo  = "forgebox/controller" // spk/info.toml [controller] image
	ControllerImageLabel = "org.opencontainers.image.title"
	ControllerImageTitle = "Forgebox controller"
	// EnvControllerImage names the image the controller runs (compose project environment).
	EnvControllerImage = "FORGEBOX_CONTROLLER_IMAGE"
)

// ImageTag is one tag of a local image.
type ImageTag struct{ Ref, ID string }

// ImageStore is what the cleanup needs of the engine (an adapter of engine.Client: this package
// stays free of the Docker client, which index.cgi must not link).
type ImageStore interface {
	ImageTags(ctx context.Context, repo, key, value string) ([]ImageTag, error)
	RemoveImageTag(ctx context.Context, ref string) error
}

// OldControllerImages plans the cleanup: every labelled tag of current's repository except
// current itself and any other tag of the same image; nothing when current is not listed.
func OldControllerImages(current string, tags []ImageTag) []string {
	currentID := ""
	for _, t := range tags {
		if t.Ref == current {
			currentID = t.ID
		}
	}
	if currentID == "" {
		return nil // the running image is not among them: something is off, so touch nothing
	}
	var old []string
	for _, t := range tags {
		if t.Ref != current && t.ID != currentID {
			old = append(old, t.Ref)
		}
	}
	return old
}

// RemoveOldControllerImages removes the controller images older packages left, keeping the
// one named current (the controller's own). An image a container still uses stays, with a log
// line. It returns what it removed.
func RemoveOldControllerImages(ctx context.Context, store ImageStore, current string, log *slog.Logger) ([]string, error) {
	repo, _, ok := strings.Cut(current, ":")
	if !ok || repo == "" {
		return nil, nil // no tag to keep: never guess which images are old
	}
	tags, err := store.ImageTags(ctx, repo, ControllerImageLabel, ControllerImageTitle)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, ref := range OldControllerImages(current, tags) {
		if err := store.RemoveImageTag(ctx, ref); err != nil {
			log.Warn("an older controller image stays", "image", ref, "err", err)
			continue
		}
		log.Info("removed an older controller image", "image", ref)
		removed = append(removed, ref)
	}
	return removed, nil
}
