package main

// Stopping GitLab's processes inside the container, as a restore needs: Omnibus
// `gitlab-ctl stop puma` and `gitlab-ctl stop sidekiq` (GitLab's restore docs), sameersbn
// supervisorctl with the image's own programs and groups (below): `stop gitlab:*` stops puma and
// gitlab-workhorse only, so Sidekiq needs `stop sidekiq`. The stand-in keeps one flag file per
// stopped service; while puma (or, on sameersbn, nginx) is stopped every API call answers 502. A
// container start clears them, as the real process managers start everything again.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

const serviceFlagDir = "/run/forgebox-standin/stopped"

var railsServices = []string{"puma", "sidekiq"}

func serviceStopped(name string) bool {
	_, err := os.Stat(filepath.Join(serviceFlagDir, name))
	return err == nil
}

func setServiceStopped(name string, stopped bool) error {
	if !stopped {
		err := os.Remove(filepath.Join(serviceFlagDir, name))
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	if err := os.MkdirAll(serviceFlagDir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(serviceFlagDir, name), nil, 0o644)
}

// clearStoppedServices runs at container start.
func clearStoppedServices() { os.RemoveAll(serviceFlagDir) }

// runGitlabCtl is Omnibus's `gitlab-ctl stop|start|status [service]`, as root.
func runGitlabCtl(args []string) int {
	if _, ok := os.LookupEnv("GITLAB_OMNIBUS_CONFIG"); !ok {
		fmt.Fprintln(os.Stderr, `forgebox GitLab stand-in (sameersbn flavour): exec: "gitlab-ctl": executable file not found in $PATH (the sameersbn image runs its services under supervisord: use supervisorctl)`)
		return 127
	}
	if os.Getuid() != 0 {
		return execFail("gitlab-ctl must run as root")
	}
	if len(args) < 1 || len(args) > 2 {
		return execFail("the stand-in's gitlab-ctl accepts: stop|start|status [puma|sidekiq] (got %s)", clipArgs(args))
	}
	services := railsServices
	if len(args) == 2 {
		if !slices.Contains(railsServices, args[1]) {
			return execFail("gitlab-ctl %s %s: the stand-in emulates only puma and sidekiq", args[0], args[1])
		}
		services = []string{args[1]}
	}
	return controlServices(args[0], services, func(svc, state string) string {
		return fmt.Sprintf("%s: %s: (pid 0) 0s", state, svc)
	})
}

// sameersbnPrograms are the supervisord programs of the sameersbn image and the group each is
// in (sameersbn/docker-gitlab assets/build/install.sh at 18.5.7: [group:core] gitaly,
// [group:gitlab] puma,gitlab-workhorse, [group:gitlab_extensions] sshd,nginx,mail_room,cron;
// [program:sidekiq] is in no group, so supervisord makes it a group of its own name).
var sameersbnPrograms = map[string]string{
	"gitaly": "core", "puma": "gitlab", "gitlab-workhorse": "gitlab", "sidekiq": "sidekiq",
	"sshd": "gitlab_extensions", "nginx": "gitlab_extensions", "mail_room": "gitlab_extensions", "cron": "gitlab_extensions",
}

// supervisorTargets resolves supervisorctl's names: all, <group>:*, <group>:<program>, or the
// bare name of a program in no group.
func supervisorTargets(names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		var found []string
		for prog, group := range sameersbnPrograms {
			switch {
			case n == "all",
				n == group+":*",
				n == group+":"+prog,
				n == prog && group == prog:
				found = append(found, prog)
			}
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: ERROR (no such process)", n)
		}
		slices.Sort(found)
		out = append(out, found...)
	}
	return out, nil
}

func supervisorName(prog string) string {
	if g := sameersbnPrograms[prog]; g != prog {
		return g + ":" + prog
	}
	return prog
}

// runSupervisorctl is sameersbn's `supervisorctl stop|start|status <name>...`, as root.
func runSupervisorctl(args []string) int {
	if _, ok := os.LookupEnv("GITLAB_OMNIBUS_CONFIG"); ok {
		fmt.Fprintln(os.Stderr, `forgebox GitLab stand-in (omnibus flavour): exec: "supervisorctl": executable file not found in $PATH (Omnibus uses gitlab-ctl)`)
		return 127
	}
	if os.Getuid() != 0 {
		return execFail("supervisorctl must run as root")
	}
	if len(args) < 2 {
		return execFail("the stand-in's supervisorctl accepts: stop|start|status <name>... (got %s)", clipArgs(args))
	}
	services, err := supervisorTargets(args[1:])
	if err != nil {
		fmt.Println(err)
		return 1
	}
	return controlServices(args[0], services, func(svc, state string) string {
		return fmt.Sprintf("%s: %s", supervisorName(svc), state)
	})
}

func controlServices(action string, services []string, line func(svc, state string) string) int {
	switch action {
	case "stop", "start":
		for _, svc := range services {
			if err := setServiceStopped(svc, action == "stop"); err != nil {
				return execFail("%s %s: %v", action, svc, err)
			}
			state := "started"
			if action == "stop" {
				state = "stopped"
			}
			fmt.Println(line(svc, state))
		}
	case "status":
		for _, svc := range services {
			state := "run"
			if serviceStopped(svc) {
				state = "down"
			}
			fmt.Println(line(svc, state))
		}
	default:
		return execFail("unknown action %q: the stand-in emulates stop, start and status", action)
	}
	return 0
}
