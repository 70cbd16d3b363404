package engine

import (
	"sync/atomic"
	"time"
)

// ContainerSpec is everything forgebox decides about one container. The stack hashes it to detect
// drift, so it holds only what forgebox sets, in a stable order.
type ContainerSpec struct {
	Name       string            `json:"name"`
	Image      string            `json:"image"`
	Env        []string          `json:"env,omitempty"`
	Cmd        []string          `json:"cmd,omitempty"`
	Entrypoint []string          `json:"entrypoint,omitempty"`
	User       string            `json:"user,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Network    string            `json:"network"`
	Aliases    []string          `json:"aliases,omitempty"`
	// Networks are further networks the container joins, each with its own aliases. API 1.41
	// creates a container with one endpoint only, so Create connects these before anything
	// starts it.
	Networks    []Endpoint   `json:"networks,omitempty"`
	Binds       []Bind       `json:"binds,omitempty"`
	Ports       []Port       `json:"ports,omitempty"`
	Health      *Healthcheck `json:"health,omitempty"`
	Restart     string       `json:"restart,omitempty"` // "unless-stopped", "no", ...
	StopTimeout int          `json:"stop_timeout,omitempty"`
	StopSignal  string       `json:"stop_signal,omitempty"`
	MemoryLimit int64        `json:"memory_limit,omitempty"`
	ShmSize     int64        `json:"shm_size,omitempty"`
	Privileged  bool         `json:"privileged,omitempty"`
}

// Endpoint is a container's attachment to one more network.
type Endpoint struct {
	Network string   `json:"network"`
	Aliases []string `json:"aliases,omitempty"`
}

// Bind mounts a host directory or file. The host path is created beforehand by the stack, since
// CreateMountpoint needs API 1.42.
type Bind struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// Port publishes a container port on the host.
type Port struct {
	HostIP        string `json:"host_ip,omitempty"`
	HostPort      int    `json:"host_port"`
	ContainerPort int    `json:"container_port"`
	Proto         string `json:"proto,omitempty"` // "tcp" when empty
}

// Healthcheck is a Docker healthcheck. StartInterval (API 1.44) is deliberately absent.
type Healthcheck struct {
	Test        []string      `json:"test"`
	Interval    time.Duration `json:"interval"`
	Timeout     time.Duration `json:"timeout"`
	StartPeriod time.Duration `json:"start_period"`
	Retries     int           `json:"retries"`
}

// Container is what forgebox observes of one of its containers.
type Container struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Image     string            `json:"image"`    // the reference it was created from
	ImageID   string            `json:"image_id"` // the image it runs
	Component string            `json:"component"`
	SpecHash  string            `json:"spec_hash"`
	State     string            `json:"state"` // created, running, paused, restarting, exited, dead
	Labels    map[string]string `json:"-"`
}

// Running reports whether the container's process is up.
func (c Container) Running() bool { return c.State == "running" }

// Detail is one inspected container: state, health and start time.
type Detail struct {
	Container
	Health       string    `json:"health"` // healthy, unhealthy, starting, or "" without a healthcheck
	StartedAt    time.Time `json:"started_at"`
	ExitCode     int       `json:"exit_code"`
	RestartCount int       `json:"restart_count"`
	OOMKilled    bool      `json:"oom_killed"`
	Error        string    `json:"error,omitempty"`
	IPs          map[string]string
	// Env is the container's environment, the image's ENV included. It holds secrets: never
	// log, show or serialize it.
	Env []string `json:"-"`
}

// Network is one of forgebox's networks.
type Network struct {
	ID       string
	Name     string
	Subnets  []string
	Internal bool      // the engine gives it no route out of its subnet
	Created  time.Time // when the engine made it: of two copies of one name, the older stays
}

// PullProgress is one line of an image pull, as the engine reports it per layer.
type PullProgress struct {
	Image   string `json:"image"`
	Layer   string `json:"layer,omitempty"`
	Status  string `json:"status"`
	Current int64  `json:"current,omitempty"`
	Total   int64  `json:"total,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
}

type callCounter struct{ n atomic.Int64 }

func (c *callCounter) add()        { c.n.Add(1) }
func (c *callCounter) load() int64 { return c.n.Load() }
