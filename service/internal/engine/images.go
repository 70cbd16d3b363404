package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
)

// ImageTag is one tag of a local image.
type ImageTag struct {
	Ref string // repo:tag
	ID  string
}

// ImageTags lists the local tags of repo whose image carries the label key=value: the label
// says the image is forgebox's, so a user's image under the same name is never listed.
func (c *Client) ImageTags(ctx context.Context, repo, key, value string) ([]ImageTag, error) {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	c.calls.add()
	list, err := c.api.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(
		filters.Arg("reference", repo), filters.Arg("label", key+"="+value))})
	if err != nil {
		return nil, fmt.Errorf("list images of %s: %w", repo, err)
	}
	var out []ImageTag
	for _, im := range list {
		for _, ref := range im.RepoTags {
			if strings.HasPrefix(ref, repo+":") {
				out = append(out, ImageTag{Ref: ref, ID: im.ID})
			}
		}
	}
	return out, nil
}

// RemoveImageTag removes a tag, and the image with its last tag, never by force: an image a
// container uses (even a stopped one) stays, and the error says so.
func (c *Client) RemoveImageTag(ctx context.Context, ref string) error {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	c.calls.add()
	if _, err := c.api.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true}); err != nil {
		return fmt.Errorf("remove image %s: %w", ref, err)
	}
	return nil
}
