package compose

// The part of the Compose specification (compose-spec.io, as Docker Compose v2 reads it) that an
// exported stack uses. Field names and shapes are the specification's; anything forgebox does
// not set is left out rather than written empty, so the file reads like a hand-written one.

// Project is a whole compose.yaml.
type Project struct {
	Name     string             `yaml:"name"`
	Services map[string]Service `yaml:"services"`
	Networks map[string]Network `yaml:"networks"`
}

// Service is one container of the project.
type Service struct {
	ContainerName   string                    `yaml:"container_name"`
	Image           string                    `yaml:"image"`
	User            string                    `yaml:"user,omitempty"`
	Entrypoint      []string                  `yaml:"entrypoint,omitempty"`
	Command         []string                  `yaml:"command,omitempty"`
	Environment     map[string]string         `yaml:"environment,omitempty"`
	Volumes         []Volume                  `yaml:"volumes,omitempty"`
	Ports           []Port                    `yaml:"ports,omitempty"`
	Networks        map[string]ServiceNetwork `yaml:"networks"`
	DependsOn       map[string]Dependency     `yaml:"depends_on,omitempty"`
	Healthcheck     *Healthcheck              `yaml:"healthcheck,omitempty"`
	Restart         string                    `yaml:"restart,omitempty"`
	StopSignal      string                    `yaml:"stop_signal,omitempty"`
	StopGracePeriod string                    `yaml:"stop_grace_period,omitempty"`
	ShmSize         int64                     `yaml:"shm_size,omitempty"`
	MemLimit        int64                     `yaml:"mem_limit,omitempty"`
	Privileged      bool                      `yaml:"privileged,omitempty"`
	Labels          map[string]string         `yaml:"labels,omitempty"`
}

// Volume is a mount in the long syntax, which says what it is instead of packing it into one
// colon-separated string (host paths may hold colons).
type Volume struct {
	Type     string       `yaml:"type"`
	Source   string       `yaml:"source"`
	Target   string       `yaml:"target"`
	ReadOnly bool         `yaml:"read_only,omitempty"`
	Bind     *BindOptions `yaml:"bind,omitempty"`
}

// BindOptions are a bind mount's options.
type BindOptions struct {
	// CreateHostPath makes Compose create a missing host directory, as the engine does for
	// forgebox's binds (forgebox creates them beforehand, with their modes).
	CreateHostPath bool `yaml:"create_host_path"`
}

// Port publishes a container port, in the long syntax: no "HOST:CONTAINER" string that a YAML
// 1.1 reader could take for a base-60 number.
type Port struct {
	Target    int    `yaml:"target"`
	Published string `yaml:"published"`
	HostIP    string `yaml:"host_ip,omitempty"`
	Protocol  string `yaml:"protocol"`
}

// ServiceNetwork is a service's attachment to a network.
type ServiceNetwork struct {
	Aliases []string `yaml:"aliases,omitempty"`
}

// Dependency makes a service wait for another at start.
type Dependency struct {
	Condition string `yaml:"condition"`
}

// Healthcheck is a container healthcheck; durations in Go's notation, which Compose reads.
type Healthcheck struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval,omitempty"`
	Timeout     string   `yaml:"timeout,omitempty"`
	StartPeriod string   `yaml:"start_period,omitempty"`
	Retries     int      `yaml:"retries,omitempty"`
}

// Network is a network of the project.
type Network struct {
	Name     string            `yaml:"name"`
	Driver   string            `yaml:"driver"`
	Internal bool              `yaml:"internal,omitempty"`
	IPAM     *IPAM             `yaml:"ipam,omitempty"`
	Labels   map[string]string `yaml:"labels,omitempty"`
}

// IPAM pins a network's address range.
type IPAM struct {
	Config []IPAMConfig `yaml:"config"`
}

// IPAMConfig is one subnet.
type IPAMConfig struct {
	Subnet string `yaml:"subnet"`
}
