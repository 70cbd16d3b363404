package msg

// Field errors of the config (config.FieldError's Text and Advice), by what is wrong and what
// to do.
func init() {
	for code, text := range map[string]string{
		"field.missing":             "missing",
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

		"hint.version.set":      "set version = {version}",
		"hint.version.upgrade":  "upgrade forgebox, or write version = {version}",
		"hint.allowed":          "allowed: {allowed}",
		"hint.stackName":        "use 1 to 30 lowercase letters, digits and dashes, starting with a letter",
		"hint.mirror":           "write \"https://mirror.example\" for a Docker Hub mirror, or \"registry.gitlab.com=https://mirror.example\" for another registry's",
		"hint.mirrorEngine":     "set stack.pull_via = \"auto\" or \"forgebox\", or set the mirrors in the engine's daemon.json instead",
		"hint.role":             "use lowercase letters, digits and underscores, e.g. \"postgres\"",
		"hint.roleGitlab":       "pick another name, e.g. \"postgres\"",
		"hint.portTwice":        "give HTTP and SSH different ports, e.g. 30080 and 30022",
		"hint.timeZone":         "a tz database name such as \"Europe/Berlin\" or \"UTC\", or \"\" for the host's",
		"hint.email":            "e.g. admin@example.com",
		"hint.range":            "allowed: {min} to {max}",
		"hint.concurrentBelow":  "set runner.concurrent to at least {n}, or remove a profile",
		"hint.noProfile":        "add at least one [[runner.profiles]] with a name and an image",
		"hint.schedule":         "use HH:MM on the 24-hour clock, e.g. \"03:30\", or \"\" for no scheduled backups",
		"hint.keep":             "allowed: 1 to 1000 scheduled backups",
		"hint.profileName":      "every profile needs a name, e.g. \"default\"",
		"hint.profileNameChars": "use lowercase letters, digits, '-' and '_', at most 40",
		"hint.profileTwice":     "runner.profiles[{first}] has the same name; names must be unique",
		"hint.noTags":           "add tags, or set run_untagged = true",
		"hint.tag":              "tags are non-empty, without commas or surrounding spaces",
		"hint.tagTwice":         "list each tag once",
		"hint.cpus":             "a positive number such as \"1\" or \"1.5\", or empty for no limit",
		"hint.memory":           "a size such as \"512m\" or \"2g\", or empty for no limit",
		"hint.image":            "an image reference such as \"postgres:17-alpine\"",
		"hint.imageSyntax":      "use [registry/]name[:tag][@digest] in lowercase, e.g. \"postgres:17-alpine\"",
		"hint.port":             "allowed: 1 to 65535; the defaults are 30080 (HTTP) and 30022 (SSH)",
		"hint.portDSM":          "pick a port DSM does not use, e.g. 30080 for HTTP or 30022 for SSH",
		"hint.hostLocal":        "use the NAS's name or address as other machines reach it, e.g. nas.local or 192.168.1.10",
		"hint.host":             "e.g. nas.local or 192.168.1.10, without scheme or port",
		"hint.absPath":          "an absolute directory path, e.g. /var/lib/forgebox",
		"hint.rootDir":          "use a directory of its own, e.g. /var/lib/forgebox",
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
