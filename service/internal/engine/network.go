package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
)

// FindNetwork returns the stack's network by name, or ok=false when it does not exist.
// Only a network labelled for this stack counts: a same-named network of somebody else's is
// reported as a conflict, not used.
func (c *Client) FindNetwork(ctx context.Context, stack, name string) (Network, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	c.calls.add()
	list, err := c.api.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))})
	if err != nil {
		return Network{}, false, fmt.Errorf("list networks: %w", err)
	}
	for _, n := range list {
		if n.Name != name { // the name filter matches substrings
			continue
		}
		if why := Foreign(n.Labels, stack); why != "" {
			return Network{}, false, fmt.Errorf("a network named %s exists but is not this stack's: %s; remove or rename it, or change stack.name", name, why)
		}
		return toNetwork(n), true, nil
	}
	return Network{}, false, nil
}

func toNetwork(n network.Summary) Network {
	nw := Network{ID: n.ID, Name: n.Name, Internal: n.Internal, Created: n.Created}
	for _, cfg := range n.IPAM.Config {
		if cfg.Subnet != "" {
			nw.Subnets = append(nw.Subnets, cfg.Subnet)
		}
	}
	return nw
}

// ListNetworks returns every network labelled for the stack, by name order of the engine.
func (c *Client) ListNetworks(ctx context.Context, stack string) ([]Network, error) {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	c.calls.add()
	list, err := c.api.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelStack+"="+stack))})
	if err != nil {
		return nil, fmt.Errorf("list networks of stack %s: %w", stack, err)
	}
	out := make([]Network, 0, len(list))
	for _, n := range list {
		out = append(out, toNetwork(n))
	}
	return out, nil
}

// NetworkSpec is a network forgebox makes.
type NetworkSpec struct {
	Name     string
	Internal bool // no route out of the subnet (docker network create --internal)
	Labels   map[string]string
}

// CreateNetwork makes the stack's bridge network. Names resolve on user-defined networks only,
// which is why the stack gets one instead of the default bridge.
func (c *Client) CreateNetwork(ctx context.Context, stack, name string, labels map[string]string) (string, error) {
	return c.CreateStackNetwork(ctx, stack, NetworkSpec{Name: name, Labels: labels})
}

// CreateStackNetwork makes a bridge network of the stack as spec says.
func (c *Client) CreateStackNetwork(ctx context.Context, stack string, spec NetworkSpec) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	all := map[string]string{LabelStack: stack}
	for k, v := range spec.Labels {
		all[k] = v
	}
	c.calls.add()
	r, err := c.api.NetworkCreate(ctx, spec.Name, network.CreateOptions{Driver: "bridge", Internal: spec.Internal, Labels: all})
	if err != nil {
		return "", fmt.Errorf("create network %s: %w", spec.Name, err)
	}
	return r.ID, nil
}

// RemoveNetwork deletes a network; a network that is gone already is fine.
func (c *Client) RemoveNetwork(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	c.calls.add()
	if err := c.api.NetworkRemove(ctx, id); err != nil && !IsNotFound(err) {
		return fmt.Errorf("remove network %s: %w", id, err)
	}
	return nil
}

// IsAmbiguousNetwork says the engine found two networks of the name a container asked for. An
// engine before Docker 25 lets two creates of one name both succeed when neither has landed
// when the other is checked; it then refuses to connect or start a container on that name.
func IsAmbiguousNetwork(err error) bool {
	return err != nil && strings.Contains(err.Error(), " is ambiguous (")
}

// ConnectNetwork attaches a container to a network; one already attached is left as it is.
func (c *Client) ConnectNetwork(ctx context.Context, networkID, container string) error {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	c.calls.add()
	err := c.api.NetworkConnect(ctx, networkID, container, nil)
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("connect %s to network %s: %w", container, networkID, err)
	}
	return nil
}

// DisconnectNetwork detaches a container from a network; one not attached is fine.
func (c *Client) DisconnectNetwork(ctx context.Context, networkID, container string) error {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	c.calls.add()
	err := c.api.NetworkDisconnect(ctx, networkID, container, false)
	if err != nil && !IsNotFound(err) && !strings.Contains(err.Error(), "is not connected") {
		return fmt.Errorf("disconnect %s from network %s: %w", container, networkID, err)
	}
	return nil
}
