package stack

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/pgprov"
)

// Observed is one snapshot of what the engine (and PostgreSQL) hold for the stack.
type Observed struct {
	Networks      map[string]engine.Network // the wanted networks that exist, by name
	ExtraNetworks []engine.Network          // labelled for the stack but not wanted: the single network of older versions
	Containers    map[string]engine.Detail  // by component
	Extra         []engine.Container        // labelled for the stack but not wanted: old components, duplicates
	Images        map[string]string         // image reference -> local image ID; "" when missing
	// Postgres is what provisioning finds, when PostgreSQL could be asked; PostgresErr says why
	// it could not otherwise.
	Postgres    *pgprov.State
	PostgresErr error
	// GitLab is what forgebox sees through GitLab's API when its container runs; nil otherwise.
	GitLab *GitLabObserved
}

// ActionKind names what an action does.
type ActionKind string

const (
	ActCreateNetwork ActionKind = "create-network"
	ActRemoveNetwork ActionKind = "remove-network"
	ActRemove        ActionKind = "remove"
	ActPull          ActionKind = "pull"
	ActCreate        ActionKind = "create"
	ActRecreate      ActionKind = "recreate"
	ActStart         ActionKind = "start"
	ActRestart       ActionKind = "restart"
	ActWait          ActionKind = "wait"
	ActProvision     ActionKind = "provision"
	ActAdminToken    ActionKind = "admin-token"
	ActRunners       ActionKind = "runners"
)

// Action is one step of a plan, with the reason it is needed.
type Action struct {
	Kind      ActionKind
	Component string
	Target    string // container ID, network or image the action works on, when it exists already
	Reason    string
}

func (a Action) String() string {
	subject := a.Component
	if subject == "" {
		subject = a.Target
	}
	return fmt.Sprintf("%s %s: %s", a.Kind, subject, a.Reason)
}

// Plan is the ordered list of actions that takes the observed stack to the desired one.
type Plan struct {
	Actions []Action
}

// Empty reports whether there is nothing to do.
func (p Plan) Empty() bool { return len(p.Actions) == 0 }

func (p Plan) String() string {
	if p.Empty() {
		return "nothing to do: the stack is as configured\n"
	}
	var b strings.Builder
	for i, a := range p.Actions {
		fmt.Fprintf(&b, "%d. %s\n", i+1, a)
	}
	return b.String()
}

// MakePlan compares desired with observed and lists what to do, each with its reason. It is a
// pure function: the same inputs give the same plan, and it touches nothing.
func MakePlan(d Desired, o Observed, pullPolicy string) Plan {
	var p Plan
	add := func(kind ActionKind, component, target, reason string, args ...any) {
		p.Actions = append(p.Actions, Action{Kind: kind, Component: component, Target: target, Reason: fmt.Sprintf(reason, args...)})
	}

	// Leftovers go first: they may hold a name or a port that a wanted container needs.
	for _, c := range o.Extra {
		reason := fmt.Sprintf("component %q is not part of the configured stack", c.Component)
		if _, wanted := d.Component(c.Component); wanted {
			reason = fmt.Sprintf("a second container for component %q", c.Component)
		}
		add(ActRemove, c.Component, c.ID, "%s (container %s; its data stays on disk)", reason, c.Name)
	}
	for _, n := range d.Networks {
		if _, ok := o.Networks[n.Name]; !ok {
			add(ActCreateNetwork, "", n.Name, "network %s for %s does not exist%s", n.Name, n.Purpose, internalNote(n))
		}
	}

	// Components of one stage start together and are then waited for in order: PostgreSQL and
	// Redis need nothing from each other, so neither waits for the other's healthcheck.
	pulled := map[string]bool{}
	for first := 0; first < len(d.Components); {
		last := first
		for last+1 < len(d.Components) && d.Components[last+1].Stage == d.Components[first].Stage {
			last++
		}
		stage := d.Components[first : last+1]
		var waits []Action
		for _, c := range stage {
			var w []Action
			if c.Name == "runner" {
				p.Actions = planHelper(p.Actions, d, o, pullPolicy, pulled) // helper.go
			}
			p.Actions, w = planStart(p.Actions, c, o, pullPolicy, pulled)
			waits = append(waits, w...)
		}
		for _, c := range stage {
			for _, w := range waits {
				if w.Component == c.Name {
					p.Actions = append(p.Actions, w)
				}
			}
			switch c.Name {
			case "postgres":
				planProvision(&p, o, add)
			case "gitlab":
				planGitLab(d, o, add)
			}
		}
		first = last + 1
	}
	// Last: by now every container of the stack has moved to the networks it wants.
	for _, n := range o.ExtraNetworks {
		add(ActRemoveNetwork, "", n.Name, "network %s carries the stack's label but is none of its networks (the single network of an older forgebox, say); the stack's containers run on %s and %s",
			n.Name, d.Network, d.JobsNetwork)
	}
	return p
}

// movesNetwork says which networks a container leaves and joins, when they differ from its spec's.
func movesNetwork(c Component, cur engine.Detail) string {
	want := []string{c.Spec.Network}
	for _, ep := range c.Spec.Networks {
		want = append(want, ep.Network)
	}
	var leaves []string
	for n := range cur.IPs {
		if !slices.Contains(want, n) {
			leaves = append(leaves, n)
		}
	}
	if len(leaves) == 0 {
		return ""
	}
	sort.Strings(leaves)
	return fmt.Sprintf("it runs on %s; it moves to %s", strings.Join(leaves, ", "), strings.Join(want, " and "))
}

func internalNote(n NetworkSpec) string {
	if n.Internal {
		return " (internal: no route out of it)"
	}
	return ""
}

// planStart appends what brings one component's container to its spec and running, and returns
// the wait that should follow once the whole stage is started.
func planStart(acts []Action, c Component, o Observed, pullPolicy string, pulled map[string]bool) ([]Action, []Action) {
	var waits []Action
	add := func(kind ActionKind, target, reason string, args ...any) {
		acts = append(acts, Action{Kind: kind, Component: c.Name, Target: target, Reason: fmt.Sprintf(reason, args...)})
	}
	wait := func(target, reason string, args ...any) {
		waits = append(waits, Action{Kind: ActWait, Component: c.Name, Target: target, Reason: fmt.Sprintf(reason, args...)})
	}
	image := c.Spec.Image
	localID := o.Images[image]
	if !pulled[image] {
		switch {
		case pullPolicy == "always":
			add(ActPull, image, "stack.pull_policy is \"always\"")
			pulled[image] = true
		case localID == "" && pullPolicy != "never":
			add(ActPull, image, "image %s is not on this engine", image)
			pulled[image] = true
		}
	}

	cur, exists := o.Containers[c.Name]
	want := c.Spec.Labels[engine.LabelSpecHash]
	started := true
	switch {
	case !exists:
		add(ActCreate, "", "no %s container yet", c.Name)
	case cur.SpecHash != want && movesNetwork(c, cur) != "":
		add(ActRecreate, cur.ID, "%s; data is kept", movesNetwork(c, cur))
	case cur.SpecHash != want:
		add(ActRecreate, cur.ID, "its settings changed (spec %s, want %s); data is kept", orUnknown(cur.SpecHash), want)
	case localID != "" && cur.ImageID != localID:
		add(ActRecreate, cur.ID, "image %s was updated (%s, running %s); data is kept", image, short(localID), short(cur.ImageID))
	case cur.State == "restarting":
		// Its restart policy is bringing it back (after a crash, or an engine restart):
		// starting it too would race the engine; wait for it instead.
		wait(cur.ID, "the engine is restarting it (restart policy)")
		started = false
	case !cur.Running():
		add(ActStart, cur.ID, "container is %s", cur.State)
	case cur.Health == "unhealthy":
		add(ActRestart, cur.ID, "container is unhealthy")
	case cur.Health == "starting":
		wait(cur.ID, "container is still starting")
		started = false
	case c.Name == "gitlab" && o.GitLab != nil && !o.GitLab.Ready:
		// Running but still booting, e.g. just restarted by its restart policy after a
		// reboot or a crash: the admin token and runner steps need a ready GitLab.
		wait(cur.ID, "GitLab runs but is not ready yet (%v)", o.GitLab.ReadyErr)
		started = false
	default:
		started = false
	}
	if started {
		if c.Name == "gitlab" {
			wait("", "wait until GitLab passes its readiness check")
		} else {
			wait("", "wait until %s is healthy", c.Name)
		}
	}
	return acts, waits
}

func planProvision(p *Plan, o Observed, add func(ActionKind, string, string, string, ...any)) {
	switch {
	case o.Postgres == nil && o.PostgresErr != nil:
		add(ActProvision, "postgres", "", "check GitLab's role, database and extensions (could not look: %v)", o.PostgresErr)
	case o.Postgres == nil:
		add(ActProvision, "postgres", "", "check GitLab's role, database and extensions once PostgreSQL is up")
	default:
		if missing := o.Postgres.Missing(provisionWants()); len(missing) > 0 {
			add(ActProvision, "postgres", "", "%s", strings.Join(missing, "; "))
		}
	}
}

// provisionWants is the part of a pgprov.Target that Missing compares against: names only.
func provisionWants() pgprov.Target {
	return pgprov.Target{Role: GitLabRole, Database: GitLabDatabase, Extensions: pgprov.Extensions}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
