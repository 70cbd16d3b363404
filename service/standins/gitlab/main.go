// Command forgebox-gitlab-standin is a contract stand-in for the GitLab images forgebox runs
// (sameersbn/gitlab and gitlab/gitlab-ce): a small test double, not GitLab. It validates the
// environment forgebox gives the container as strictly as the contract in
// docs/gitlab-contract.md allows, logs in to PostgreSQL and pings Redis as GitLab
// would, and serves the endpoints and the exec path forgebox uses. See ../README.md.
//
// One binary, dispatched on its name: as `bundle` it is the sameersbn exec path for the admin
// token and the backup rake tasks, as `gitlab-rails` the Omnibus one, as `gitlab-backup`,
// `gitlab-ctl` and `supervisorctl` the backup and service commands, as `supervisord` the
// sameersbn entrypoint's restarted PID 1, as `cat` coreutils' cat, otherwise the container's main
// process.
package main

import (
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	switch filepath.Base(os.Args[0]) {
	case "bundle":
		os.Exit(runBundle(os.Args[1:]))
	case "gitlab-rails":
		os.Exit(runGitlabRails(os.Args[1:]))
	case "gitlab-backup":
		os.Exit(runGitlabBackup(os.Args[1:]))
	case "gitlab-ctl":
		os.Exit(runGitlabCtl(os.Args[1:]))
	case "supervisorctl":
		os.Exit(runSupervisorctl(os.Args[1:]))
	case "supervisord": // sameersbn's restart after the migrations (restart.go)
		os.Exit(serveSupervisord())
	case "cat":
		os.Exit(runCat(os.Args[1:]))
	}
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "app:start", "/assets/wrapper": // the images' default commands
		default:
			fmt.Fprintf(os.Stderr, "standin-gitlab: refusing to start: command %q: the stand-in emulates only app:start (sameersbn) and /assets/wrapper (Omnibus)\n", os.Args[1])
			os.Exit(1)
		}
	}
	os.Exit(serve())
}
