#!/usr/bin/env python3
"""Extract GitLab Runner's config.toml key names and value kinds from its own source.

Usage: git --git-dir <gitlab-runner mirror> show v19.2.2:common/config.go > config.go
       git --git-dir <mirror> show v19.2.2:helpers/docker/credentials.go > credentials.go
       tools/runner-schema.py v19.2.2 config.go credentials.go > service/internal/runnercfg/testdata/runner-schema.json

Only names and kinds are kept (facts about the file format), for the schema test in
service/internal/runnercfg: a key forgebox writes that the runner does not know, or a value of
another kind, fails it.
"""
import json, re, sys

tag, files = sys.argv[1], sys.argv[2:]
src = "\n".join(open(f).read() for f in files)
structs = {}
for m in re.finditer(r"^type (\w+) struct \{\n(.*?)^\}", src, re.S | re.M):
    structs[m.group(1)] = m.group(2)

def kind(t):
    t = t.lstrip("*")
    if t in ("string",):
        return "string"
    if t == "bool":
        return "bool"
    if t in ("int", "int64", "int32", "RequestRetryLimit", "RequestRetryBackoffMax"):
        return "integer"
    if t == "time.Time":
        return "datetime"
    if t == "time.Duration":
        return "duration"
    if t == "StringOrArray":
        return "string|array"
    if t.startswith("[]"):
        return "array"
    if t.startswith("map["):
        return "table"
    return "table"

def fields(name):
    out = {}
    for line in structs[name].splitlines():
        line = line.strip()
        if not line or line.startswith("//"):
            continue
        parts = line.split(None, 2)
        m = re.search(r'toml:"([^"]*)"', line)
        if len(parts) == 1 or (not m and parts[0] in ("docker.Credentials", "RunnerCredentials", "RunnerSettings")):
            emb = parts[0].split(".")[-1]
            if emb in structs:
                out.update(fields(emb))
            continue
        if not m:
            continue
        key = m.group(1).split(",")[0]
        if key in ("", "-"):
            continue
        out[key] = kind(parts[1])
    return out

schema = {
    "source": "gitlabhq/gitlab-runner " + tag + " common/config.go, helpers/docker/credentials.go",
    "config": fields("Config"),
    "runners": fields("RunnerConfig"),
    "runners.docker": fields("DockerConfig"),
    "runners.kubernetes": fields("KubernetesConfig"),
}
json.dump(schema, sys.stdout, indent=1, sort_keys=True)
print()
