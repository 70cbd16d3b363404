package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/jsonmessage"
)

// PullRetry sets how often a pull that failed on a transient error is tried again, and the
// first pause between tries (doubled each time). The engine keeps layers that finished, so each
// try resumes where the last one broke.
type PullRetry struct {
	Attempts int
	Backoff  time.Duration
}

// DefaultPullRetry suits slow home links: four tries over about half a minute.
var DefaultPullRetry = PullRetry{Attempts: 4, Backoff: 2 * time.Second}

// ImageID returns the local ID of ref, or "" when the engine does not have it.
func (c *Client) ImageID(ctx context.Context, ref string) (string, error) {
	r, found, err := c.inspectImage(ctx, ref)
	if !found {
		return "", err
	}
	return r.ID, nil
}

// ImageArch returns the architecture of the local image ref (amd64, arm64, ...), or "" when the
// engine does not have it.
func (c *Client) ImageArch(ctx context.Context, ref string) (string, error) {
	r, found, err := c.inspectImage(ctx, ref)
	if !found {
		return "", err
	}
	return r.Architecture, nil
}

// inspectImage inspects the local image ref; found is false when the engine does not have it
// (err nil) or the inspection failed (err set).
func (c *Client) inspectImage(ctx context.Context, ref string) (r image.InspectResponse, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	c.calls.add()
	r, err = c.api.ImageInspect(ctx, ref)
	if errdefs.IsNotFound(err) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return r, true, nil
}

// Pull fetches ref, reporting each layer's progress, and retries transient failures.
func (c *Client) Pull(ctx context.Context, ref string, retry PullRetry, progress func(PullProgress)) error {
	if retry.Attempts < 1 {
		retry.Attempts = 1
	}
	wait := retry.Backoff
	var err error
	for attempt := 1; attempt <= retry.Attempts; attempt++ {
		err = c.pullOnce(ctx, ref, attempt, progress)
		if err == nil || !transientPullError(err) || ctx.Err() != nil {
			break
		}
		if attempt < retry.Attempts {
			progress(PullProgress{Image: ref, Status: fmt.Sprintf("pull failed (%v); trying again in %s", err, wait), Attempt: attempt})
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return fmt.Errorf("pull %s: %w", ref, ctx.Err())
			}
			wait *= 2
		}
	}
	if err != nil {
		return fmt.Errorf("pull %s: %w; %s", ref, err, pullAdvice(err))
	}
	return nil
}

func (c *Client) pullOnce(ctx context.Context, ref string, attempt int, progress func(PullProgress)) error {
	c.calls.add()
	rc, err := c.api.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read pull progress: %w", err)
		}
		if m.Error != nil {
			return &streamError{msg: m.Error.Message}
		}
		p := PullProgress{Image: ref, Layer: m.ID, Status: m.Status, Attempt: attempt}
		if m.Progress != nil {
			p.Current, p.Total = m.Progress.Current, m.Progress.Total
		}
		progress(p)
	}
}

// streamError is a failure the engine reported inside the pull stream, after the HTTP call
// itself had succeeded. The stream carries only text, so it is classified by its words.
type streamError struct{ msg string }

func (e *streamError) Error() string { return e.msg }

// transientPullError says whether a failed pull is worth another attempt. The registry's own
// error codes (OCI distribution spec, "Error Codes": MANIFEST_UNKNOWN, NAME_UNKNOWN) count as
// much as the engine's words for them: Docker 26 passes a registry's error body through verbatim,
// as "unknown: {...}" with status 500, when the registry sends it without a JSON content type
// (go-containerregistry's registry does; Docker 20.10 parsed it anyway), and a missing tag must
// not be retried as if the network had failed.
func transientPullError(err error) bool {
	if errdefs.IsNotFound(err) || errdefs.IsInvalidArgument(err) || errdefs.IsUnauthorized(err) || errdefs.IsPermissionDenied(err) {
		return false
	}
	msg := strings.ToLower(err.Error())
	for _, final := range []string{"manifest unknown", "manifest_unknown", "name_unknown", "not found", "unauthorized", "denied", "invalid reference", "no matching manifest", "repository does not exist", "no space left"} {
		if strings.Contains(msg, final) {
			return false
		}
	}
	return true
}

func pullAdvice(err error) string {
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "no matching manifest"):
		return "the image has no build for this machine's platform: pick a tag or flavour that has one"
	case strings.Contains(msg, "manifest unknown") || strings.Contains(msg, "not found") || strings.Contains(msg, "repository does not exist") ||
		strings.Contains(msg, "manifest_unknown") || strings.Contains(msg, "name_unknown"):
		return "check the image name and tag in the config"
	case strings.Contains(msg, "unauthorized") || strings.Contains(msg, "denied"):
		return "the registry refused access: check the image name, or log the engine in to that registry"
	case strings.Contains(msg, "no space left"):
		return "the engine's disk is full: free space, then run again"
	}
	return "the engine could not reach the registry: check the network, or load the image from a file (docker load) and set stack.pull_policy = \"missing\""
}
