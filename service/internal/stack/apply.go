package stack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/msg"
	"github.com/forgebox/forgebox/service/internal/pgprov"
)

// apply carries out a plan step by step. It makes no decisions of its own: what to do and why
// was settled by MakePlan. It takes the snapshot the plan was made from as an argument, and each
// step gets the results of the steps before it (the container a create made), as compose's
// executor passes its observed state and node results, so apply depends on nothing set
// elsewhere.
func (s *Stack) apply(ctx context.Context, d Desired, o Observed, plan Plan) error {
	r := &applied{observed: o, plan: plan, results: map[int]stepResult{}}
	for i, a := range plan.Actions {
		s.emit(events.Event{Kind: events.KindStep, ID: stepID(i), Status: events.Working, Component: a.Component}.With(a.Msg()))
		s.log.Info("plan step", "action", string(a.Kind), "component", a.Component, "reason", a.Reason)
		res, err := s.applyOne(ctx, d, a, r)
		if engine.IsAmbiguousNetwork(err) {
			// A killed run's network create landed after this run made its own: the next look
			// (ensureNetworks) drops the late copy, then the step runs again.
			err = &staleError{what: msg.New("stale.networkCopy"), err: err}
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", a.Kind, subjectOf(a), err)
		}
		r.results[i] = res
	}
	return nil
}

// stepResult is what one applied step produced that a later step may need.
type stepResult struct {
	ContainerID string // the container a create or recreate made
}

// applied is one apply's inputs and what its steps have produced so far, by plan index.
type applied struct {
	observed Observed
	plan     Plan
	results  map[int]stepResult
}

// containerID is the component's container as of now: the one the latest earlier step made, or
// else the one observed before the plan ran.
func (r *applied) containerID(component string) string {
	for i := len(r.plan.Actions) - 1; i >= 0; i-- {
		if res, ok := r.results[i]; ok && res.ContainerID != "" && r.plan.Actions[i].Component == component {
			return res.ContainerID
		}
	}
	return r.observed.Containers[component].ID
}

func subjectOf(a Action) string {
	if a.Component != "" {
		return a.Component
	}
	return a.Target
}

func (s *Stack) applyOne(ctx context.Context, d Desired, a Action, r *applied) (stepResult, error) {
	comp, _ := d.Component(a.Component)
	switch a.Kind {
	case ActCreate:
		id, err := s.createAndStart(ctx, comp)
		return stepResult{ContainerID: id}, err
	case ActRecreate:
		if err := s.eng.Stop(ctx, a.Target, comp.StopTimeout); err != nil {
			return stepResult{}, err
		}
		if err := s.eng.Remove(ctx, a.Target); err != nil {
			return stepResult{}, err
		}
		id, err := s.createAndStart(ctx, comp)
		return stepResult{ContainerID: id}, err
	}
	return stepResult{}, s.applyStep(ctx, d, comp, a, r)
}

// applyStep carries out a step that produces nothing a later step needs.
func (s *Stack) applyStep(ctx context.Context, d Desired, comp Component, a Action, r *applied) error {
	switch a.Kind {
	case ActRemove:
		if err := s.eng.Stop(ctx, a.Target, 60*time.Second); err != nil {
			return err
		}
		return s.eng.Remove(ctx, a.Target)
	case ActCreateNetwork:
		n, _ := d.NetworkSpec(a.Target)
		_, err := s.eng.CreateStackNetwork(ctx, d.Stack, engine.NetworkSpec{Name: n.Name, Internal: n.Internal})
		return settleNetwork(n.Name, err)
	case ActRemoveNetwork:
		return s.removeNetwork(ctx, a.Target)
	case ActPull:
		return s.pullImage(ctx, a.Component, a.Target)
	case ActStart:
		return s.eng.Start(ctx, a.Target)
	case ActRestart:
		if err := s.eng.Stop(ctx, a.Target, comp.StopTimeout); err != nil {
			return err
		}
		return s.eng.Start(ctx, a.Target)
	case ActWait:
		_, err := s.waitHealthy(ctx, comp, r.containerID(comp.Name))
		return err
	case ActProvision:
		return s.provision(ctx, d, r.containerID("postgres"))
	case ActAdminToken:
		return s.ensureAdminToken(ctx, d, r.containerID("gitlab"))
	case ActRunners:
		return s.syncRunners(ctx, d, r.containerID("gitlab"))
	}
	return fmt.Errorf("unknown action %q", a.Kind)
}

// removeNetwork removes a network the stack no longer wants, after taking forgebox's own
// controller off it. A CI job container still running there holds it: that is worth a word, not
// a failed up (the network holds no data; a later up removes it).
func (s *Stack) removeNetwork(ctx context.Context, name string) error {
	nw, ok, err := s.eng.FindNetwork(ctx, s.cfg.Stack.Name, name)
	if err != nil || !ok {
		return err
	}
	if c := os.Getenv(ControllerContainerEnv); c != "" {
		if err := s.eng.DisconnectNetwork(ctx, nw.ID, c); err != nil {
			return err
		}
	}
	if err := s.eng.RemoveNetwork(ctx, nw.ID); err != nil {
		s.say(events.Event{Kind: events.KindInfo, Status: events.Warning}, "network.keptForNow", "network", name, "error", msg.Raw(err.Error()))
		s.log.Warn("network kept", "network", name, "err", err)
	}
	return nil
}

func (s *Stack) createAndStart(ctx context.Context, c Component) (string, error) {
	for _, dir := range c.Dirs {
		if err := ensureDir(dir); err != nil {
			return "", err
		}
	}
	for _, f := range c.Files {
		if err := config.WriteFileAtomic(f.Path, f.Content, f.Mode); err != nil {
			return "", fmt.Errorf("write %s: %w", f.Path, err)
		}
	}
	id, err := s.eng.Create(ctx, c.Spec)
	if err != nil {
		return "", s.settleCreate(ctx, c.Spec.Name, err) // conflict.go
	}
	return id, s.eng.Start(ctx, id)
}

// ensureDir creates a bind-mount source before the container is created (API 1.41 has no
// CreateMountpoint). An existing directory keeps its mode and owner: the image's entrypoint
// may have changed them on purpose (PostgreSQL's data must be owned by its own user).
func ensureDir(d Dir) error {
	if fi, err := os.Stat(d.Path); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s exists but is not a directory: move it away, forgebox keeps data there", d.Path)
		}
		return nil
	}
	if err := os.MkdirAll(d.Path, d.Mode); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	// MkdirAll applies the umask; the mode matters (PostgreSQL refuses a group-readable PGDATA).
	if err := os.Chmod(d.Path, d.Mode); err != nil {
		return fmt.Errorf("set mode of %s: %w", d.Path, err)
	}
	return nil
}

func (s *Stack) waitHealthy(ctx context.Context, c Component, id string) (engine.Detail, error) {
	if id == "" {
		return engine.Detail{}, fmt.Errorf("no %s container to wait for", c.Name)
	}
	if c.Name == "gitlab" {
		// GitLab's own healthcheck (where the image has one) says little; its readiness
		// check covers the database, Redis and the rest.
		return s.waitGitLab(ctx, c, s.cfg, id)
	}
	start := time.Now()
	det, err := s.eng.WaitHealthy(ctx, id, engine.WaitOptions{
		Deadline: c.Deadline,
		Ready:    s.readyProbe(c),
		Progress: func(d engine.Detail, waited time.Duration) {
			s.say(events.Event{Kind: events.KindWait, Status: events.Working, Component: c.Name}, "wait.health",
				"component", c.Name, "state", msg.New("state."+knownOr(d.State, "other")), "health", msg.New("health."+knownOr(orNone(d.Health), "other")), "waited", waited.Round(time.Second).String())
		},
	})
	if err == nil {
		s.say(events.Event{Kind: events.KindInfo, Status: events.Done, Component: c.Name}, "wait.healthy", "component", c.Name, "took", took(start))
	}
	return det, err
}

func (s *Stack) provision(ctx context.Context, d Desired, id string) error {
	if id == "" {
		return errors.New("no postgres container")
	}
	pg, err := s.eng.Inspect(ctx, id)
	if err != nil {
		return err
	}
	// PostgreSQL may have gone down since it was observed (a crash the engine is restarting
	// it from): provisioning, and the steps after it, need it up and healthy.
	comp, _ := d.Component("postgres")
	if !pg.Running() || s.probedHealth(ctx, comp, pg) != "healthy" || pg.IPs[d.Network] == "" {
		if pg, err = s.waitHealthy(ctx, comp, id); err != nil {
			return err
		}
	}
	target, err := s.postgresTarget(pg, d)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	changes, err := pgprov.Provision(pctx, target)
	for _, ch := range changes {
		s.say(events.Event{Kind: events.KindInfo, Status: events.Done, Component: "postgres"}, "provision.change", "change", provisionMsg(ch))
		s.log.Info("provisioned", "component", "postgres", "change", ch)
	}
	if err != nil {
		if pgprov.IsAuthError(err) {
			return fmt.Errorf("PostgreSQL refused the superuser password from %s: its data dir was initialised with another one (a secret store from another install?); put back the secrets file that belongs to this data: %w", s.secretsPath, err)
		}
		return err
	}
	if len(changes) == 0 {
		s.say(events.Event{Kind: events.KindInfo, Status: events.Done, Component: "postgres"}, "provision.inPlace")
	}
	// The engine reports a crash a moment late, and pgprov retries through a restart: when it
	// restarted under provisioning, wait until the engine calls it healthy again.
	if pg, err = s.eng.Inspect(ctx, id); err != nil {
		return err
	}
	if !pg.Running() || s.probedHealth(ctx, comp, pg) != "healthy" {
		_, err = s.waitHealthy(ctx, comp, id)
	}
	return err
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// readyProbe asks PostgreSQL and Redis directly whether they serve, so a start does not wait for
// Docker's first healthcheck run. Only a real answer counts: a login that works, a PONG.
func (s *Stack) readyProbe(c Component) func(context.Context, engine.Detail) bool {
	switch c.Name {
	case "postgres":
		return func(ctx context.Context, d engine.Detail) bool {
			ip := d.IPs[s.cfg.NetworkName()]
			if ip == "" {
				return false
			}
			target, err := provisionTarget(s.cfg, readOnlySecrets{s.secrets}, ip)
			if err != nil {
				return false
			}
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			return pgprov.Ping(pctx, target) == nil
		}
	case "redis":
		return func(ctx context.Context, d engine.Detail) bool {
			ip := d.IPs[s.cfg.NetworkName()]
			password, _ := redisPasswordFor(s.cfg, readOnlySecrets{s.secrets})
			return ip != "" && redisPing(ctx, ip, password) == nil
		}
	}
	return nil
}

// probedHealth is the health forgebox acts on: Docker's, except that a container Docker still
// calls "starting" counts as healthy once its service answers a direct probe. Without this a
// converge that ended on the probe would find "starting" again and wait once more. The same for
// "unhealthy" that the probe contradicts (a slow first start outlasting the start period), so a
// serving PostgreSQL is not restarted for Docker's stale verdict.
func (s *Stack) probedHealth(ctx context.Context, c Component, d engine.Detail) string {
	if d.Running() && (d.Health == "starting" || d.Health == "unhealthy") {
		if ready := s.readyProbe(c); ready != nil && ready(ctx, d) {
			return "healthy"
		}
	}
	return d.Health
}

// redisPing sends PING over RESP and wants +PONG (a Redis still loading its data answers -LOADING),
// after AUTH when Redis has a password.
func redisPing(ctx context.Context, ip, password string) error {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", net.JoinHostPort(ip, "6379"))
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	r := bufio.NewReader(conn)
	if password != "" {
		// A RESP array of bulk strings: the password is sent as bytes, never parsed inline.
		auth := fmt.Sprintf("*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(password), password)
		if _, err := conn.Write([]byte(auth)); err != nil {
			return err
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.TrimSpace(line) != "+OK" {
			// Redis' own error words only; they never echo the password.
			return fmt.Errorf("redis refused AUTH: %q", strings.TrimSpace(line))
		}
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("redis answered %q", strings.TrimSpace(line))
	}
	return nil
}
