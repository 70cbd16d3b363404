#!/usr/bin/env bash
# Builds Docker Compose v2 from the Go module proxy into a cache dir, once per version, and
# prints the binary's path. Used by the bench (bench/run.sh) and by `./build.sh test`, whose
# compose test runs `docker compose config` on the exported files with it.
#
# Environment:
#   FORGEBOX_BENCH_CACHE   where Compose is built (default /var/cache/forgebox-bench)
set -euo pipefail
cd "$(dirname "$0")/.."

# The Compose release used. v2.40.3 is the newest v2 the module proxy serves that builds with
# Go 1.26 and still speaks to API 1.41 engines (Docker 20.10); Compose v5 moved to the
# moby/moby client. Its go.mod has exclude directives, so `go install ...@version` refuses it:
# the module is downloaded and built as the main module instead.
COMPOSE_MODULE=github.com/docker/compose/v2
COMPOSE_VERSION=v2.40.3
CACHE="${FORGEBOX_BENCH_CACHE:-/var/cache/forgebox-bench}"
COMPOSE_BIN="$CACHE/compose-$COMPOSE_VERSION/docker-compose"

log() { printf 'compose: %s\n' "$*" >&2; }

if [ ! -x "$COMPOSE_BIN" ]; then
  log "building Docker Compose $COMPOSE_VERSION from the Go module proxy into $CACHE (a few minutes, once)"
  mkdir -p "$CACHE"
  src="$(go mod download -json "$COMPOSE_MODULE@$COMPOSE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  if [ -z "$src" ] || [ ! -d "$src" ]; then
    log "go mod download $COMPOSE_MODULE@$COMPOSE_VERSION gave no source dir"
    exit 1
  fi
  work="$(mktemp -d "$CACHE/build.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  cp -r "$src/." "$work/" && chmod -R u+w "$work"
  (cd "$work" && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X $COMPOSE_MODULE/internal.Version=$COMPOSE_VERSION" -o "$work/docker-compose" ./cmd) >&2
  mkdir -p "$(dirname "$COMPOSE_BIN")"
  mv "$work/docker-compose" "$COMPOSE_BIN"
fi
echo "$COMPOSE_BIN"
