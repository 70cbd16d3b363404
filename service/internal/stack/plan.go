package stack

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/msg"
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
	Target    string  // container ID, network or image the action works on, when it exists already
	Reason    string  // Why in English
	Why       msg.Msg // the reason as a message code, for the web app's languages
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
	add := func(kind ActionKind, component, target string, why msg.Msg) {
		p.Actions = append(p.Actions, newAction(kind, component, target, why))
	}

	// Leftovers go first: they may hold a name or a port that a wanted container needs.
	for _, c := range o.Extra {
		code := "plan.remove.unwanted"
		if _, wanted := d.Component(c.Component); wanted {
			code = "plan.remove.duplicate"
		}
		add(ActRemove, c.Component, c.ID, msg.New(code, "component", msg.Q(c.Component), "container", c.Name))
	}
	for _, n := range d.Networks {
		if _, ok := o.Networks[n.Name]; !ok {
			add(ActCreateNetwork, "", n.Name, networkMissing(n))
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
		add(ActRemoveNetwork, "", n.Name, msg.New("plan.network.extra", "network", n.Name, "internal", d.Network, "jobs", d.JobsNetwork))
	}
	return p
}

// movesNetwork says which networks a container leaves and joins, when they differ from its spec's.
func movesNetwork(c Component, cur engine.Detail) msg.Msg {
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
		return msg.Msg{}
	}
	sort.Strings(leaves)
	return msg.New("plan.moves", "from", strings.Join(leaves, ", "), "to", strings.Join(want, ", "))
}

func newAction(kind ActionKind, component, target string, why msg.Msg) Action {
	return Action{Kind: kind, Component: component, Target: target, Reason: why.String(), Why: why}
}

// networkMissing is the reason to create a network; n.Purpose is a message code's argument.
func networkMissing(n NetworkSpec) msg.Msg {
	code := "plan.network.missing"
	if n.Internal {
		code = "plan.network.missingInternal"
	}
	return msg.New(code, "network", n.Name, "purpose", msg.New("network.purpose."+n.Role))
}

// planStart appends what brings one component's container to its spec and running, and returns
// the wait that should follow once the whole stage is started.
func planStart(acts []Action, c Component, o Observed, pullPolicy string, pulled map[string]bool) ([]Action, []Action) {
	var waits []Action
	add := func(kind ActionKind, target, code string, kv ...any) {
		acts = append(acts, newAction(kind, c.Name, target, msg.New(code, kv...)))
	}
	wait := func(target, code string, kv ...any) {
		waits = append(waits, newAction(ActWait, c.Name, target, msg.New(code, kv...)))
	}
	image := c.Spec.Image
	localID := o.Images[image]
	if !pulled[image] {
		switch {
		case pullPolicy == "always":
			add(ActPull, image, "plan.pull.always")
			pulled[image] = true
		case localID == "" && pullPolicy != "never":
			add(ActPull, image, "plan.pull.missing", "image", image)
			pulled[image] = true
		}
	}

	cur, exists := o.Containers[c.Name]
	want := c.Spec.Labels[engine.LabelSpecHash]
	started := true
	switch {
	case !exists:
		add(ActCreate, "", "plan.create", "component", c.Name)
	case cur.SpecHash != want && !movesNetwork(c, cur).IsZero():
		add(ActRecreate, cur.ID, "plan.recreate.network", "moves", movesNetwork(c, cur))
	case cur.SpecHash != want:
		add(ActRecreate, cur.ID, "plan.recreate.settings", "spec", orUnknown(cur.SpecHash), "want", want)
	case localID != "" && cur.ImageID != localID:
		add(ActRecreate, cur.ID, "plan.recreate.image", "image", image, "local", short(localID), "running", short(cur.ImageID))
	case cur.State == "restarting":
		// Its restart policy is bringing it back (after a crash, or an engine restart):
		// starting it too would race the engine; wait for it instead.
		wait(cur.ID, "plan.wait.restarting")
		started = false
	case !cur.Running():
		add(ActStart, cur.ID, "plan.start", "state", msg.New("state."+knownOr(cur.State, "other")))
	case cur.Health == "unhealthy":
		add(ActRestart, cur.ID, "plan.restart.unhealthy")
	case cur.Health == "starting":
		wait(cur.ID, "plan.wait.starting")
		started = false
	case c.Name == "gitlab" && o.GitLab != nil && !o.GitLab.Ready:
		// Running but still booting, e.g. just restarted by its restart policy after a
		// reboot or a crash: the admin token and runner steps need a ready GitLab.
		wait(cur.ID, "plan.wait.gitlabBooting", "error", msg.Raw(fmt.Sprint(o.GitLab.ReadyErr)))
		started = false
	default:
		started = false
	}
	if started {
		if c.Name == "gitlab" {
			wait("", "plan.wait.gitlabReady")
		} else {
			wait("", "plan.wait.healthy", "component", c.Name)
		}
	}
	return acts, waits
}

func planProvision(p *Plan, o Observed, add func(ActionKind, string, string, msg.Msg)) {
	switch {
	case o.Postgres == nil && o.PostgresErr != nil:
		add(ActProvision, "postgres", "", msg.New("plan.provision.unknown", "error", msg.Raw(o.PostgresErr.Error())))
	case o.Postgres == nil:
		add(ActProvision, "postgres", "", msg.New("plan.provision.later"))
	default:
		if missing := o.Postgres.Gaps(provisionWants()); len(missing) > 0 {
			add(ActProvision, "postgres", "", msg.New("plan.provision.missing", "missing", missing))
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
