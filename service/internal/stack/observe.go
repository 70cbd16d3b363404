package stack

import (
	"context"
	"fmt"
	"time"

	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/pgprov"
)

// Engine is the part of the Docker Engine the stack uses, as forgebox's engine package offers
// it. Declared here, where it is consumed, so tests and a future client swap see one small
// surface.
type Engine interface {
	ListContainers(ctx context.Context, stack string) ([]engine.Container, error)
	Inspect(ctx context.Context, id string) (engine.Detail, error)
	FindNetwork(ctx context.Context, stack, name string) (engine.Network, bool, error)
	ListNetworks(ctx context.Context, stack string) ([]engine.Network, error)
	CreateStackNetwork(ctx context.Context, stack string, spec engine.NetworkSpec) (string, error)
	Info(ctx context.Context) (engine.Info, error)
	RemoveNetwork(ctx context.Context, id string) error
	ConnectNetwork(ctx context.Context, networkID, container string) error
	DisconnectNetwork(ctx context.Context, networkID, container string) error
	ImageID(ctx context.Context, ref string) (string, error)
	ImageArch(ctx context.Context, ref string) (string, error)
	Pull(ctx context.Context, ref string, retry engine.PullRetry, progress func(engine.PullProgress)) error
	Create(ctx context.Context, spec engine.ContainerSpec) (string, error)
	Start(ctx context.Context, id string) error
	Stop(ctx context.Context, id string, timeout time.Duration) error
	Remove(ctx context.Context, id string) error
	WaitHealthy(ctx context.Context, id string, o engine.WaitOptions) (engine.Detail, error)
	Logs(ctx context.Context, id string, n int) ([]string, error)
	Exec(ctx context.Context, id, user string, cmd []string) (engine.ExecResult, error)
}

// observe takes one snapshot: the stack's labelled containers (inspected, for health), its
// network, the local image IDs of the wanted images, what provisioning finds in PostgreSQL when
// it runs, and GitLab's readiness, admin token and runners when GitLab runs.
func (s *Stack) observe(ctx context.Context, d Desired) (Observed, error) {
	o := Observed{Networks: map[string]engine.Network{}, Containers: map[string]engine.Detail{}, Images: map[string]string{}}
	// Same-named networks of somebody else's are a conflict the user must settle.
	for _, n := range d.Networks {
		if _, _, err := s.eng.FindNetwork(ctx, d.Stack, n.Name); err != nil {
			return o, err
		}
	}
	nets, err := s.eng.ListNetworks(ctx, d.Stack)
	if err != nil {
		return o, err
	}
	for _, n := range nets {
		if _, wanted := d.NetworkSpec(n.Name); wanted {
			o.Networks[n.Name] = n
		} else {
			o.ExtraNetworks = append(o.ExtraNetworks, n)
		}
	}
	list, err := s.eng.ListContainers(ctx, d.Stack)
	if err != nil {
		return o, err
	}
	for _, c := range list {
		if c.Component == "" {
			continue // carries the stack label but is no component (a job container, say): not ours to manage
		}
		comp, wanted := d.Component(c.Component)
		// Container names are unique, so one component has at most one container by its name;
		// anything else carrying the stack label is a leftover.
		if !wanted || c.Name != comp.Spec.Name {
			o.Extra = append(o.Extra, c)
			continue
		}
		det, err := s.eng.Inspect(ctx, c.ID)
		if engine.IsNotFound(err) {
			continue // removed between list and inspect
		}
		if err != nil {
			return o, err
		}
		det.Health = s.probedHealth(ctx, comp, det)
		o.Containers[c.Component] = det
	}
	refs := []string{}
	for _, c := range d.Components {
		refs = append(refs, c.Spec.Image)
	}
	if d.HelperImage != "" {
		refs = append(refs, d.HelperImage)
	}
	for _, ref := range refs {
		if _, seen := o.Images[ref]; seen {
			continue
		}
		id, err := s.eng.ImageID(ctx, ref)
		if err != nil {
			return o, err
		}
		o.Images[ref] = id
	}
	// A container not yet on the internal network (one an older forgebox made, on its single
	// network) cannot be asked there; it is recreated onto it, and asked after that.
	if pg, ok := o.Containers["postgres"]; ok && pg.Running() && pg.Health == "healthy" && pg.IPs[d.Network] != "" {
		target, err := s.postgresTarget(pg, d)
		if err != nil {
			return o, err
		}
		octx, cancel := context.WithTimeout(ctx, 15*time.Second)
		st, err := pgprov.Observe(octx, target)
		cancel()
		if err != nil {
			o.PostgresErr = err
		} else {
			o.Postgres = &st
		}
	}
	if gl, ok := o.Containers["gitlab"]; ok && gl.Running() && gl.IPs[d.Network] != "" {
		g, err := s.observeGitLab(ctx, d, gl)
		if err != nil {
			return o, err
		}
		o.GitLab = g
	}
	return o, nil
}

// postgresTarget addresses PostgreSQL at the container's IP on the internal network: it is never
// published on the host, and forgebox (on the host, through the network's gateway, or in its
// controller container attached to the internal network) reaches it there.
func (s *Stack) postgresTarget(pg engine.Detail, d Desired) (pgprov.Target, error) {
	ip := pg.IPs[d.Network]
	if ip == "" {
		return pgprov.Target{}, fmt.Errorf("container %s has no address on network %s", pg.Name, d.Network)
	}
	return provisionTarget(s.cfg, s.secrets, ip)
}
