package msg

// Field errors of the config (config.FieldError's Text and Advice), by what is wrong and what
// to do.
func init() {
	for code, text := range map[string]string{
		"field.missing":             "missing",
		"field.project":             "{value} is not a project path",
		"hint.project":              "the project's path as in its URL, e.g. \"team/app\" or \"team/sub/app\"",
		"field.group":               "{value} is not a group path",
		"hint.group":                "the group's full path as in its URL, e.g. \"team\" or \"team/sub\"",
		"field.groupAndProject":     "set together with project: a runner belongs to one group or one project",
		"hint.groupAndProject":      "keep group (its projects and subgroups' projects) or project (that project only), not both",
		"field.certDirAlone":        "set without docker_host",
		"hint.certDirAlone":         "remove it, or name the engine with docker_host = \"tcp://HOST:2376\"",
		"field.dockerHost":          "{value} is not a Docker Engine address",
		"hint.dockerHost":           "use tcp://HOST:PORT, e.g. tcp://build1.lan:2376 (the engine's TLS port)",
		"field.dockerHostPort":      "{value} has no valid port",
		"hint.dockerHostPort":       "e.g. tcp://build1.lan:2376",
		"field.certDirMissing":      "missing: a remote engine is reached only with TLS client certificates",
		"hint.certDirMissing":       "name a directory holding ca.pem, cert.pem and key.pem for that engine (see docs/scale-out.md)",
		"field.notAbsolute":         "{value} is not an absolute path",
		"hint.certDirPath":          "e.g. /volume1/forgebox/certs/build1",
		"field.kubeNotKube":         "set on a profile whose executor is not kubernetes",
		"hint.kubeNotKube":          "set executor = \"kubernetes\", or remove the table",
		"field.kubeDockerHost":      "set on a kubernetes profile",
		"hint.kubeDockerHost":       "a profile runs on one Docker Engine or one cluster: remove docker_host",
		"hint.kubeMissing":          "add [runner.profiles.kubernetes] with host, ca_file, token_file and namespace",
		"field.kubeHost":            "{value} is not an API server URL",
		"hint.kubeHost":             "e.g. https://k8s.lan:6443",
		"hint.kubeFile":             "a file on this machine, e.g. {example}",
		"field.kubeNamespace":       "{value} is not a namespace name",
		"hint.kubeNamespace":        "lowercase letters, digits and '-', e.g. \"gitlab-ci\"",
		"field.kubeQuantity":        "{value} is not a Kubernetes quantity",
		"hint.kubeQuantity":         "e.g. \"500m\" or \"2\" for CPU, \"512Mi\" or \"2Gi\" for memory",
		"field.version.newer":       "version {version} is newer than this forgebox understands",
		"field.version.unsupported": "version {version} is not supported",
		"field.stackName":           "{value} is not a valid stack name",
		"field.mirror":              "entry {n}: {error}",
		"field.mirrorEngine":        "mirrors are used by forgebox's own downloads, and stack.pull_via is \"engine\"",
		"field.role":                "{value} is not a valid PostgreSQL role name",
		"field.roleGitlab":          "\"gitlab\" is the role forgebox creates for GitLab",
		"field.portTwice":           "port {port} is also gitlab.http_port",
		"field.timeZone":            "{value} is not a time zone name",
		"field.email":               "{value} is not an e-mail address",
		"field.range":               "{value} is out of range",
		"field.concurrentBelow":     "{value} is below the number of runner profiles ({n})",
		"field.noProfile":           "no runner profile",
		"field.schedule":            "{value} is not a time of day",
		"field.profileName":         "{value} is not a valid profile name",
		"field.profileTwice":        "profile {value} is defined twice",
		"field.noTags":              "a profile with no tags that does not run untagged jobs would never get a job",
		"field.tag":                 "{value} is not a valid tag",
		"field.tagTwice":            "tag {value} is listed twice",
		"field.cpus":                "{value} is not a CPU count",
		"field.memory":              "{value} is not a memory size of at least 6m",
		"field.notAllowed":          "{value} is not allowed",
		"field.image":               "{value} is not a valid image reference: {error}",
		"field.port":                "{value} is not a port",
		"field.portDSM":             "port {port} is taken by DSM ({service})",
		"field.hostLocal":           "{value} only works on this machine, so clone URLs would not work anywhere else",
		"field.host":                "{value} is not a host name or IPv4 address",
		"field.absPath":             "{value} is not an absolute path",
		"field.rootDir":             "the root directory cannot hold forgebox's data",

		"field.privileged":        "profile {profile} is privileged: the jobs of this profile get the whole NAS (root on the host: every share, the Docker Engine and every container, forgebox's secrets included); anyone who can push a .gitlab-ci.yml that runs on it owns the box",
		"hint.privileged":         "turn it off unless trusted projects need Docker-in-Docker, and give it a tag those projects ask for (run_untagged = false)",
		"hint.privilegedUntagged": "it also runs untagged jobs, so every project's jobs land on it: {hint}",
		"hint.version.set":        "set version = {version}",
		"hint.version.upgrade":    "upgrade forgebox, or write version = {version}",
		"hint.allowed":            "allowed: {allowed}",
		"hint.stackName":          "use 1 to 30 lowercase letters, digits and dashes, starting with a letter",
		"hint.mirror":             "write \"https://mirror.example\" for a Docker Hub mirror, or \"registry.gitlab.com=https://mirror.example\" for another registry's",
		"hint.mirrorEngine":       "set stack.pull_via = \"auto\" or \"forgebox\", or set the mirrors in the engine's daemon.json instead",
		"hint.role":               "use lowercase letters, digits and underscores, e.g. \"postgres\"",
		"hint.roleGitlab":         "pick another name, e.g. \"postgres\"",
		"hint.portTwice":          "give HTTP and SSH different ports, e.g. 30080 and 30022",
		"hint.timeZone":           "a tz database name such as \"Europe/Berlin\" or \"UTC\", or \"\" for the host's",
		"hint.email":              "e.g. admin@example.com",
		"hint.range":              "allowed: {min} to {max}",
		"hint.concurrentBelow":    "set runner.concurrent to at least {n}, or remove a profile",
		"hint.noProfile":          "add at least one [[runner.profiles]] with a name and an image",
		"hint.schedule":           "use HH:MM on the 24-hour clock, e.g. \"03:30\", or \"\" for no scheduled backups",
		"hint.keep":               "allowed: 1 to 1000 scheduled backups",
		"hint.profileName":        "every profile needs a name, e.g. \"default\"",
		"hint.profileNameChars":   "use lowercase letters, digits, '-' and '_', at most 40",
		"hint.profileTwice":       "runner.profiles[{first}] has the same name; names must be unique",
		"hint.noTags":             "add tags, or set run_untagged = true",
		"hint.tag":                "tags are non-empty, without commas or surrounding spaces",
		"hint.tagTwice":           "list each tag once",
		"hint.cpus":               "a positive number such as \"1\" or \"1.5\", or empty for no limit",
		"hint.memory":             "a size such as \"512m\" or \"2g\", or empty for no limit",
		"hint.image":              "an image reference such as \"postgres:17-alpine\"",
		"hint.imageSyntax":        "use [registry/]name[:tag][@digest] in lowercase, e.g. \"postgres:17-alpine\"",
		"hint.port":               "allowed: 1 to 65535; the defaults are 30080 (HTTP) and 30022 (SSH)",
		"hint.portDSM":            "pick a port DSM does not use, e.g. 30080 for HTTP or 30022 for SSH",
		"hint.hostLocal":          "use the NAS's name or address as other machines reach it, e.g. nas.local or 192.168.1.10",
		"hint.host":               "e.g. nas.local or 192.168.1.10, without scheme or port",
		"hint.absPath":            "an absolute directory path, e.g. /var/lib/forgebox",
		"hint.rootDir":            "use a directory of its own, e.g. /var/lib/forgebox",
	} {
		english[code] = text
	}
}

// API refusals (api.ErrorDetail's Text).
func init() {
	for code, text := range map[string]string{
		"api.unauthorized":  "authentication required: open forgebox from DSM, or log in with the admin token (forgebox token prints it)",
		"api.tooLarge":      "the request body is larger than the 1 MiB forgebox accepts",
		"api.noEngine":      "the Docker Engine is not reachable; forgebox keeps trying (see doctor)",
		"api.engineGone":    "the engine no longer has that object; reload the status",
		"api.busy":          "the stack is busy: another forgebox operation is changing it; wait for it to finish",
		"api.busyBy":        "the stack is busy: {op} (pid {pid}) has been changing it since {since}; wait for it to finish",
		"api.invalidConfig": "the settings have {n} problems",
	} {
		english[code] = text
	}
}

// Doctor results (doctor.Check's Label, Text and Advice).
func init() {
	for code, text := range map[string]string{
		"doctor.raw":                   "{text}",
		"doctor.label.engine":          "engine",
		"doctor.label.api":             "api version",
		"doctor.label.socket":          "socket",
		"doctor.label.disk":            "disk",
		"doctor.label.memory":          "memory",
		"doctor.label.profiles":        "runner profiles",
		"doctor.label.port":            "port {port}",
		"doctor.label.registry":        "registry {name}",
		"doctor.label.mirror":          "mirror {name}",
		"doctor.profile.warn":          "{key}: {text}",
		"doctor.profile.ok":            "{n} profiles, none privileged: jobs reach only their own containers",
		"doctor.engine.start":          "start the Docker Engine (Container Manager on DSM), or point DOCKER_HOST at it",
		"doctor.engine.running":        "check that the Docker Engine is running",
		"doctor.engine.ok":             "Docker {version} on {os}/{arch} at {host}",
		"doctor.api.ok":                "speaking API {api} (server offers up to {server}; forgebox needs at least {min})",
		"doctor.socket.remote":         "DOCKER_HOST is {host} (not a local socket)",
		"doctor.socket.install":        "install and start Docker (Container Manager on DSM)",
		"doctor.socket.denied":         "{path} is not writable by uid {uid}{owner}",
		"doctor.socket.fix":            "run as root or as a member of the socket's group; on DSM use the package, whose controller runs inside Container Manager",
		"doctor.socket.ok":             "{path} is writable",
		"doctor.disk.unknown":          "cannot read free space of {path}: {error}",
		"doctor.disk.free":             "{free} free in {path}",
		"doctor.disk.full":             "free space or set stack.data_dir to a bigger volume: GitLab needs several GiB",
		"doctor.disk.low":              "GitLab, its images and backups grow; 10 GiB or more is advised",
		"doctor.disk.readOnly":         "{path} is on a read-only file system",
		"doctor.disk.readOnlyFix":      "pick a writable stack.data_dir",
		"doctor.port.ours":             "used by this stack's GitLab ({key})",
		"doctor.port.stop":             "stop the program on port {port}, or set {key} to a free port",
		"doctor.port.root":             "ports below 1024 need root; set {key} to a port above 1024",
		"doctor.port.taken":            "{key} is taken: {error}",
		"doctor.port.free":             "{key} is free",
		"doctor.port.noEngine":         "cannot check {key} from inside forgebox's container without the Docker Engine",
		"doctor.port.allocatedFix":     "if up fails with \"port is already allocated\", set {key} to a port free on the host",
		"doctor.port.unknown":          "cannot check {key}: {error}",
		"doctor.port.container":        "{key} is published by container {container}",
		"doctor.port.containerFix":     "stop container {container}, or set {key} to a free port",
		"doctor.port.noContainer":      "{key} is published by no container; from inside forgebox's container a program on the host itself holding it cannot be seen (up then fails with \"port is already allocated\")",
		"doctor.memory.unknown":        "cannot read {path}: {error}",
		"doctor.memory.total":          "{total} of memory",
		"doctor.memory.low":            "GitLab needs at least 2 GiB plus swap; add memory",
		"doctor.memory.small":          "below 4 GiB GitLab is slow: keep gitlab.memory = \"small\" and add swap",
		"doctor.registry.notContacted": "{route} (not contacted)",
		"doctor.mirror.correct":        "correct stack.registry_mirrors",
		"doctor.mirror.silent":         "does not answer ({error}); {route}",
		"doctor.mirror.silentFix":      "check the address, or remove it: forgebox falls through to the next mirror and then the registry",
		"doctor.mirror.notRegistry":    "answered {status} to /v2/, which a registry does not; {route}",
		"doctor.mirror.root":           "a mirror's URL is its root, e.g. https://mirror.example",
		"doctor.mirror.ok":             "answers as a registry; {route}",
		"doctor.route.badProxy":        "the proxy settings do not parse ({error})",
		"doctor.route.direct":          "reached directly (no proxy)",
		"doctor.route.proxyEnv":        "reached through the proxy {proxy} (from HTTPS_PROXY/HTTP_PROXY)",
		"doctor.route.proxyDSM":        "reached through the proxy {proxy} (DSM's proxy setting, {from})",
	} {
		english[code] = text
	}
}

// Advice for the causes forgebox knows, added once at the edge (package advice).
func init() {
	for code, text := range map[string]string{
		"advice.diskFull":   "the disk is full: free space there, then run again; nothing was changed",
		"advice.readOnly":   "the file system is read-only: check the volume's health in Storage Manager, or pick another stack.data_dir",
		"advice.permission": "permission denied: run forgebox as root, or give its user that directory",
	} {
		english[code] = text
	}
}

// Upgrade refusals.
func init() {
	english["upgrade.tagNoVersion"] = "the tag of image {image} holds no version, so forgebox cannot tell which tag holds {version}: set the image to a tag with its version (e.g. {repo}:{version}) and run again"
	english["upgrade.pgTagNoMajor"] = "the tag of image {image} does not start with the PostgreSQL major, so forgebox cannot tell which image holds PostgreSQL {major}: name it (--postgres-image {repo}:{major}-alpine, say)"
}

// Backup progress.
func init() {
	for code, text := range map[string]string{
		"backup.start":            "back up the stack ({kind}) into {dir}",
		"backup.kind.manual":      "manual",
		"backup.kind.scheduled":   "scheduled",
		"backup.kind.pre-upgrade": "pre-upgrade",
		"backup.kind.pre-restore": "pre-restore",
		"backup.stale":            "removed {name}, left by a backup that was interrupted",
		"backup.dumped":           "GitLab's database is dumped",
		"backup.gitlab":           "GitLab's backup: {command}",
		"backup.gitlabDone":       "GitLab's backup {id} is done",
		"backup.writing":          "writing {name} ({n} files)",
		"backup.pruned":           "deleted scheduled backup {name} (backup.keep = {keep})",
		"backup.pruneFailed":      "could not delete old scheduled backups: {error}",
		"backup.written":          "backup {name} written: {size}, GitLab {version}, in {took}",
		"backup.noHostKeys":       "GitLab has no SSH host keys in {dir} yet; none are backed up",
	} {
		english[code] = text
	}
}
