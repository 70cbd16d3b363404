package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
)

// LoadImage loads an image archive in `docker save` format (what `docker load` reads) into the
// engine and returns the names the engine reports as loaded. The engine answers 200 and then
// reports a broken archive inside its message stream, so the stream is read to the end.
func (c *Client) LoadImage(ctx context.Context, archive io.Reader) ([]string, error) {
	c.calls.add()
	resp, err := c.api.ImageLoad(ctx, archive, client.ImageLoadWithQuiet(true))
	if err != nil {
		return nil, fmt.Errorf("load image: %w", err)
	}
	defer resp.Body.Close()
	var loaded []string
	dec := json.NewDecoder(resp.Body)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return loaded, nil
			}
			return loaded, fmt.Errorf("read load progress: %w", err)
		}
		if m.Error != nil {
			return loaded, fmt.Errorf("load image: %s", m.Error.Message)
		}
		// "Loaded image: NAME" or "Loaded image ID: sha256:..."
		if s := strings.TrimSpace(m.Stream); strings.HasPrefix(s, "Loaded image") {
			if _, name, ok := strings.Cut(s, ": "); ok {
				loaded = append(loaded, name)
			}
		}
	}
}
