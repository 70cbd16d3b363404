package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
)

// IsNotFound reports whether err says the object does not exist.
func IsNotFound(err error) bool { return errdefs.IsNotFound(err) }

// IsConflict reports whether err is a name or state conflict.
func IsConflict(err error) bool { return errdefs.IsConflict(err) }

// ListContainers returns every container, running or not, labelled as part of stack.
func (c *Client) ListContainers(ctx context.Context, stack string) ([]Container, error) {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	c.calls.add()
	list, err := c.api.ContainerList(ctx, container.ListOptions{
		All:     true,
		Filters: filters.NewArgs(filters.Arg("label", LabelStack+"="+stack)),
	})
	if err != nil {
		return nil, fmt.Errorf("list containers of stack %s: %w", stack, err)
	}
	out := make([]Container, 0, len(list))
	for _, s := range list {
		name := ""
		if len(s.Names) > 0 {
			name = strings.TrimPrefix(s.Names[0], "/")
		}
		out = append(out, Container{
			ID:        s.ID,
			Name:      name,
			Image:     s.Image,
			ImageID:   s.ImageID,
			Component: s.Labels[LabelComponent],
			SpecHash:  s.Labels[LabelSpecHash],
			State:     string(s.State),
			Labels:    s.Labels,
		})
	}
	return out, nil
}

// PortUsers maps each host port a running container publishes, among all the engine's
// containers (any stack's or none), to that container's name.
func (c *Client) PortUsers(ctx context.Context) (map[int]string, error) {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	c.calls.add()
	list, err := c.api.ContainerList(ctx, container.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list running containers: %w", err)
	}
	out := map[int]string{}
	for _, s := range list {
		name := s.ID
		if len(s.Names) > 0 {
			name = strings.TrimPrefix(s.Names[0], "/")
		}
		for _, p := range s.Ports {
			if p.PublicPort != 0 {
				out[int(p.PublicPort)] = name
			}
		}
	}
	return out, nil
}

// Inspect returns a container's state and health.
func (c *Client) Inspect(ctx context.Context, id string) (Detail, error) {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	c.calls.add()
	r, err := c.api.ContainerInspect(ctx, id)
	if err != nil {
		return Detail{}, fmt.Errorf("inspect container %s: %w", id, err)
	}
	d := Detail{Container: Container{
		ID:      r.ID,
		Name:    strings.TrimPrefix(r.Name, "/"),
		ImageID: r.Image,
	}}
	if r.Config != nil {
		d.Image = r.Config.Image
		d.Labels = r.Config.Labels
		d.Component = r.Config.Labels[LabelComponent]
		d.SpecHash = r.Config.Labels[LabelSpecHash]
		d.Env = r.Config.Env
	}
	if s := r.State; s != nil {
		d.State = string(s.Status)
		d.ExitCode = s.ExitCode
		d.OOMKilled = s.OOMKilled
		d.Error = s.Error
		if s.Health != nil {
			d.Health = string(s.Health.Status)
		}
		if t, err := time.Parse(time.RFC3339Nano, s.StartedAt); err == nil {
			d.StartedAt = t
		}
	}
	d.RestartCount = r.RestartCount
	if r.NetworkSettings != nil {
		d.IPs = map[string]string{}
		for name, ep := range r.NetworkSettings.Networks {
			if ep != nil {
				d.IPs[name] = ep.IPAddress
			}
		}
	}
	return d, nil
}

// Create makes a container from spec, with the labels given in spec. It does not start it.
func (c *Client) Create(ctx context.Context, spec ContainerSpec) (string, error) {
	cfg := &container.Config{
		Image:      spec.Image,
		Env:        spec.Env,
		Cmd:        spec.Cmd,
		Entrypoint: spec.Entrypoint,
		User:       spec.User,
		Labels:     spec.Labels,
		StopSignal: spec.StopSignal,
	}
	if spec.StopTimeout > 0 {
		t := spec.StopTimeout
		cfg.StopTimeout = &t
	}
	if h := spec.Health; h != nil {
		cfg.Healthcheck = &container.HealthConfig{
			Test:        h.Test,
			Interval:    h.Interval,
			Timeout:     h.Timeout,
			StartPeriod: h.StartPeriod,
			Retries:     h.Retries,
		}
	}
	host := &container.HostConfig{
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(spec.Restart)},
		Privileged:    spec.Privileged,
		ShmSize:       spec.ShmSize,
	}
	host.Memory = spec.MemoryLimit
	for _, b := range spec.Binds {
		bind := b.Source + ":" + b.Target
		if b.ReadOnly {
			bind += ":ro"
		}
		host.Binds = append(host.Binds, bind)
	}
	if len(spec.Ports) > 0 {
		cfg.ExposedPorts = nat.PortSet{}
		host.PortBindings = nat.PortMap{}
		for _, p := range spec.Ports {
			proto := p.Proto
			if proto == "" {
				proto = "tcp"
			}
			port := nat.Port(strconv.Itoa(p.ContainerPort) + "/" + proto)
			cfg.ExposedPorts[port] = struct{}{}
			host.PortBindings[port] = append(host.PortBindings[port], nat.PortBinding{HostIP: p.HostIP, HostPort: strconv.Itoa(p.HostPort)})
		}
	}
	var netCfg *network.NetworkingConfig
	if spec.Network != "" {
		host.NetworkMode = container.NetworkMode(spec.Network)
		netCfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			spec.Network: {Aliases: spec.Aliases},
		}}
	}
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	c.calls.add()
	r, err := c.api.ContainerCreate(ctx, cfg, host, netCfg, nil, spec.Name)
	if err != nil {
		// A conflict says only that the name is taken; whose container holds it is for the
		// caller to find out (Foreign), not to assume.
		return "", fmt.Errorf("create container %s: %w", spec.Name, err)
	}
	for _, ep := range spec.Networks {
		c.calls.add()
		err := c.api.NetworkConnect(ctx, ep.Network, r.ID, &network.EndpointSettings{Aliases: ep.Aliases})
		if err != nil {
			// A container missing a network would carry the full spec's hash and pass for
			// converged: take it away again, so the next run creates it whole.
			c.calls.add()
			if rerr := c.api.ContainerRemove(ctx, r.ID, container.RemoveOptions{Force: true}); rerr != nil {
				err = fmt.Errorf("%w (and removing the half-made container: %v)", err, rerr)
			}
			return "", fmt.Errorf("create container %s: connect network %s: %w", spec.Name, ep.Network, err)
		}
	}
	return r.ID, nil
}

// Start starts a created or stopped container. Port clashes surface here, so the error says so.
func (c *Client) Start(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	c.calls.add()
	if err := c.api.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		msg := err.Error()
		if strings.Contains(msg, "address already in use") || strings.Contains(msg, "port is already allocated") {
			return fmt.Errorf("start container %s: a host port it publishes is taken by another program; change the port in the config or stop that program: %w", id, err)
		}
		return fmt.Errorf("start container %s: %w", id, err)
	}
	return nil
}

// Stop stops a container, giving it timeout to shut down cleanly before it is killed.
func (c *Client) Stop(ctx context.Context, id string, timeout time.Duration) error {
	secs := int(timeout / time.Second)
	ctx, cancel := context.WithTimeout(ctx, timeout+shortCall)
	defer cancel()
	c.calls.add()
	if err := c.api.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs}); err != nil && !IsNotFound(err) {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	return nil
}

// Remove deletes a stopped container. Its bind-mounted data is untouched, and anonymous volumes
// are kept too: forgebox never deletes data on its own.
func (c *Client) Remove(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	c.calls.add()
	if err := c.api.ContainerRemove(ctx, id, container.RemoveOptions{RemoveVolumes: false, Force: false}); err != nil && !IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}

// Logs returns the last n lines of a container's output, stdout and stderr merged.
func (c *Client) Logs(ctx context.Context, id string, n int) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	c.calls.add()
	rc, err := c.api.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n)})
	if err != nil {
		return nil, fmt.Errorf("logs of container %s: %w", id, err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, rc); err != nil && err != io.EOF {
		return nil, fmt.Errorf("read logs of container %s: %w", id, err)
	}
	text := strings.TrimRight(buf.String(), "\n")
	if text == "" {
		return nil, nil
	}
	return strings.Split(text, "\n"), nil
}
