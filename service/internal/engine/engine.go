// Package engine is forgebox's adapter to the Docker Engine API: the only package that imports
// the Docker client. It connects with API version negotiation and refuses engines older than API
// 1.41 (Docker 20.10, the oldest that DSM boxes run), lists only labelled objects, and offers
// the handful of calls the stack needs in forgebox's own types, so moving to another client
// module touches this package alone.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/versions"
	"github.com/docker/docker/client"
)

// MinAPIVersion is the oldest Engine API forgebox speaks. Nothing newer may be used without a
// version check: e.g. CreateMountpoint (1.42) is replaced by creating bind dirs beforehand.
const MinAPIVersion = "1.41"

// Labels that mark every object forgebox owns. Lists filter on LabelStack, so objects without it
// are never seen, let alone touched.
const (
	LabelStack     = "io.forgebox.stack"
	LabelComponent = "io.forgebox.component"
	LabelSpecHash  = "io.forgebox.spec-hash"
	LabelVersion   = "io.forgebox.version"
)

// shortCall bounds calls that should answer at once (inspect, list, create, start); streams
// (pull, logs, health waits) are bounded by their caller's context only.
const shortCall = 30 * time.Second

// Client is a connected, version-checked Engine client.
type Client struct {
	api        *client.Client
	host       string
	apiVersion string
	calls      callCounter
}

// Info describes the engine that answered.
type Info struct {
	Host          string `json:"host"`
	APIVersion    string `json:"api_version"`    // the version both sides speak
	ServerVersion string `json:"server_version"` // Docker's own version, e.g. 24.0.2
	ServerAPI     string `json:"server_api"`     // the newest API the server offers
	OS            string `json:"os"`
	Arch          string `json:"arch"`
}

// Connect reaches the engine named by the environment (DOCKER_HOST, default the local socket),
// negotiates the API version and refuses one below MinAPIVersion.
func Connect(ctx context.Context) (*Client, error) {
	api, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	c := &Client{api: api, host: api.DaemonHost()}
	pctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	c.calls.add()
	ping, err := api.Ping(pctx)
	if err != nil {
		api.Close()
		return nil, c.explainConnectError(err)
	}
	if ping.APIVersion == "" {
		// The client would assume API 1.24; no engine forgebox can use answers like this.
		api.Close()
		return nil, fmt.Errorf("the server at %s answered without an API version: it is no Docker Engine, or one far older than the API %s forgebox needs (Docker 20.10): check DOCKER_HOST, or update Docker (Container Manager on DSM)",
			c.host, MinAPIVersion)
	}
	if versions.LessThan(ping.APIVersion, MinAPIVersion) {
		api.Close()
		return nil, fmt.Errorf("the Docker Engine at %s speaks API %s, older than the %s forgebox needs (Docker 20.10): update Docker (Container Manager on DSM)",
			c.host, ping.APIVersion, MinAPIVersion)
	}
	api.NegotiateAPIVersionPing(ping)
	c.apiVersion = api.ClientVersion()
	return c, nil
}

// explainConnectError turns a failed first contact into what the user should do.
func (c *Client) explainConnectError(err error) error {
	sock := strings.TrimPrefix(c.host, "unix://")
	switch {
	case errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EACCES) || strings.Contains(err.Error(), "permission denied"):
		return fmt.Errorf("permission denied on the Docker socket %s: run forgebox as root, or as a member of the group that owns the socket (docker); on DSM use the package, which runs the controller inside Container Manager: %w", sock, err)
	case strings.HasPrefix(c.host, "unix://") && !fileExists(sock):
		return fmt.Errorf("no Docker Engine socket at %s: install and start Docker (Container Manager on DSM), or set DOCKER_HOST", sock)
	case client.IsErrConnectionFailed(err) || errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("the Docker Engine at %s does not answer: start it (on Debian: systemctl start docker; on DSM: Package Center > Container Manager > Run): %w", c.host, err)
	}
	return fmt.Errorf("reach the Docker Engine at %s: %w", c.host, err)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Close releases the client's connections.
func (c *Client) Close() error { return c.api.Close() }

// APIVersion is the negotiated API version.
func (c *Client) APIVersion() string { return c.apiVersion }

// Calls is how many Engine API requests this client has made; benchmarks report it.
func (c *Client) Calls() int64 { return c.calls.load() }

// Info asks the engine who it is.
func (c *Client) Info(ctx context.Context) (Info, error) {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	c.calls.add()
	v, err := c.api.ServerVersion(ctx)
	if err != nil {
		return Info{}, fmt.Errorf("engine version: %w", err)
	}
	return Info{
		Host:          c.host,
		APIVersion:    c.apiVersion,
		ServerVersion: v.Version,
		ServerAPI:     v.APIVersion,
		OS:            v.Os,
		Arch:          v.Arch,
	}, nil
}
