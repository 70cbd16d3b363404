package config

// Images lists every image the config names, each once: the stack's, the runner's helper (when
// set) and every profile's job image. Bundles carry these; doctor checks their registries.
func (c Config) Images() []string {
	refs := []string{c.Postgres.Image, c.Redis.Image, c.GitLab.Image, c.Runner.Image, c.Runner.HelperImage}
	for _, p := range c.Runner.Profiles {
		refs = append(refs, p.Image)
	}
	seen := map[string]bool{}
	var out []string
	for _, r := range refs {
		if r != "" && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}
