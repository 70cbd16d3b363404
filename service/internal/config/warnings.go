package config

import (
	"fmt"

	"github.com/forgebox/forgebox/service/internal/msg"
)

// PrivilegedWarning says what a privileged runner profile means. It is the same sentence in the
// config's warnings, the API and doctor.
const PrivilegedWarning = "privileged: the jobs of this profile get the whole NAS (root on the host: every share, " +
	"the Docker Engine and every container, forgebox's secrets included); anyone who can push a .gitlab-ci.yml " +
	"that runs on it owns the box"

// PrivilegedHint is what to do about a privileged profile.
const PrivilegedHint = "turn it off unless trusted projects need Docker-in-Docker, and give it a tag those projects ask for " +
	"(run_untagged = false)"

// Warnings lists settings that are valid but dangerous, with the key and (when src, the
// config file's text, is given) the line: each privileged runner profile. Nothing here is
// ever a default.
func (c Config) Warnings(src []byte) []FieldError {
	out := []FieldError{}
	for i, p := range c.Runner.Profiles {
		if !p.Privileged {
			continue
		}
		key := fmt.Sprintf("runner.profiles[%d].privileged", i)
		line := 0
		if src != nil {
			line = lineOfKey(src, key)
		}
		hint := msg.New("hint.privileged")
		if p.RunUntagged {
			hint = msg.New("hint.privilegedUntagged", "hint", hint)
		}
		out = append(out, NewFieldError(key, line, msg.New("field.privileged", "profile", msg.Q(p.Name)), hint))
	}
	return out
}
