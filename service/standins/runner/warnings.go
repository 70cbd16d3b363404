package main

import "fmt"

// configWarnings are the warnings GitLab Runner logs for a loaded config.toml
// (commands/multi.go checkConfigConcurrency, the same at v18.5.0 and v19.2.2; it warns and goes
// on, it refuses nothing). The conditions, as upstream has them:
//   - concurrent < number of [[runners]]: "Worker starvation bottleneck";
//   - any runner whose request_concurrency is 1 (0 counts as 1: GetRequestConcurrency is
//     max(1, request_concurrency)): "Request bottleneck";
//   - any of those with 0 < limit <= 2: "Build limit bottleneck".
//
// Any of them makes the one warning "CONFIGURATION: Long polling issues detected." with the list.
// The stand-in logs the same, as a warning too.
func configWarnings(c *Config) []string {
	var issues []string
	if c.Concurrent < len(c.Runners) {
		issues = append(issues, fmt.Sprintf("Worker starvation bottleneck: 'concurrent' setting (%d) is less than number of runners (%d)", c.Concurrent, len(c.Runners)))
	}
	low, restrictive := 0, 0
	for _, r := range c.Runners {
		if max(1, r.RequestConcurrency) == 1 {
			low++
			if r.Limit > 0 && r.Limit <= 2 {
				restrictive++
			}
		}
	}
	if low > 0 {
		issues = append(issues, fmt.Sprintf("Request bottleneck: %d runners have request_concurrency=1, causing job delays during long polling", low))
	}
	if restrictive > 0 {
		issues = append(issues, fmt.Sprintf("Build limit bottleneck: %d runners have low 'limit' settings (≤2) with request_concurrency=1", restrictive))
	}
	return issues
}
