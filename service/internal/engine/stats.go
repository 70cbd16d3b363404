package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/container"
)

// Stats is one sample of a running container's resource use. CPU counters are cumulative, so a
// percentage needs two samples: see CPUPercent.
type Stats struct {
	Read time.Time `json:"read"`
	// MemoryUsage is what `docker stats` shows: usage less the inactive page cache, which the
	// kernel reclaims before it would kill the container.
	MemoryUsage uint64 `json:"memory_usage"`
	MemoryLimit uint64 `json:"memory_limit"` // the container's limit, or the host's memory
	// CPUTotal and SystemTotal are cumulative nanoseconds: the container's and the whole host's.
	CPUTotal    uint64 `json:"-"`
	SystemTotal uint64 `json:"-"`
	OnlineCPUs  uint32 `json:"online_cpus"`
	PIDs        uint64 `json:"pids"`
}

// ContainerStats takes one sample without waiting for a second one (the one-shot mode that API
// 1.41 added), so it answers at once.
func (c *Client) ContainerStats(ctx context.Context, id string) (Stats, error) {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	c.calls.add()
	r, err := c.api.ContainerStatsOneShot(ctx, id)
	if err != nil {
		return Stats{}, fmt.Errorf("stats of container %s: %w", id, err)
	}
	defer r.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(r.Body).Decode(&s); err != nil {
		return Stats{}, fmt.Errorf("read stats of container %s: %w", id, err)
	}
	return statsFrom(s), nil
}

func statsFrom(s container.StatsResponse) Stats {
	out := Stats{
		Read:        s.Read,
		MemoryLimit: s.MemoryStats.Limit,
		CPUTotal:    s.CPUStats.CPUUsage.TotalUsage,
		SystemTotal: s.CPUStats.SystemUsage,
		OnlineCPUs:  s.CPUStats.OnlineCPUs,
		PIDs:        s.PidsStats.Current,
	}
	if out.OnlineCPUs == 0 {
		out.OnlineCPUs = uint32(len(s.CPUStats.CPUUsage.PercpuUsage))
	}
	// The same subtraction as the docker CLI: cgroup v1 reports total_inactive_file, v2
	// inactive_file.
	usage := s.MemoryStats.Usage
	cache, ok := s.MemoryStats.Stats["total_inactive_file"]
	if !ok {
		cache = s.MemoryStats.Stats["inactive_file"]
	}
	if cache < usage {
		usage -= cache
	}
	out.MemoryUsage = usage
	return out
}

// CPUPercent is the container's CPU use between two samples, as `docker stats` shows it: 100%
// is one full CPU. It returns false when the samples cannot be compared (the first sample, or a
// restarted container whose counters went back).
func CPUPercent(prev, cur Stats) (float64, bool) {
	if prev.SystemTotal == 0 || cur.SystemTotal <= prev.SystemTotal || cur.CPUTotal < prev.CPUTotal {
		return 0, false
	}
	cpus := float64(cur.OnlineCPUs)
	if cpus == 0 {
		cpus = 1
	}
	cpuDelta := float64(cur.CPUTotal - prev.CPUTotal)
	sysDelta := float64(cur.SystemTotal - prev.SystemTotal)
	return cpuDelta / sysDelta * cpus * 100, true
}
