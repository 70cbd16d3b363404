#!/usr/bin/env bash
# Benchmarks: forgebox against Docker Compose v2 on the same stack (see bench/README.md).
# Run by `./build.sh bench`; never part of the test run.
#
#   1. the engine and the local test images (testimages/build.sh);
#   2. ./build.sh: the release binaries and SPKs in dist/ (their sizes are reported);
#   3. Docker Compose v2 built from the Go module proxy into a cache dir, once per version
#      (bench/compose.sh, which ./build.sh test uses too);
#   4. bench/cmd/fbbench: the scenarios, the table on stdout and in $FORGEBOX_BENCH_OUT.
#
# Environment:
#   FORGEBOX_BENCH_CACHE   where Compose is built (default /var/cache/forgebox-bench)
#   FORGEBOX_BENCH_OUT     also write the report there (markdown)
#   FORGEBOX_BENCH_ARGS    extra fbbench flags, e.g. "-cold 2 -runs 3"
set -euo pipefail
cd "$(dirname "$0")/.."

# Docker Compose v2, built once per version into FORGEBOX_BENCH_CACHE (bench/compose.sh).
CACHE="${FORGEBOX_BENCH_CACHE:-/var/cache/forgebox-bench}"

log() { printf 'bench: %s\n' "$*" >&2; }

bash testimages/ensure-engine.sh >&2
eval "$(bash testimages/build.sh)"

log "building the release binaries and SPKs (./build.sh)"
./build.sh >&2

COMPOSE_BIN="$(bash bench/compose.sh)"
"$COMPOSE_BIN" version >&2

# The release binary for this machine's architecture is the one measured.
arch="$(go env GOARCH)"
FORGEBOX_BIN="dist/forgebox-linux-$arch"
[ -x "$FORGEBOX_BIN" ] || { log "$FORGEBOX_BIN is missing after ./build.sh"; exit 1; }

# The exported compose file validates under the real Compose too.
FORGEBOX_COMPOSE_BIN="$COMPOSE_BIN" go test -count=1 -run 'TestComposeSpec' ./service/internal/compose/ >&2

go build -o "$CACHE/fbbench" ./bench/cmd/fbbench
# shellcheck disable=SC2086 # FORGEBOX_BENCH_ARGS is a list of flags
FORGEBOX_BENCH_COMPOSE_VERSION="$COMPOSE_VERSION" "$CACHE/fbbench" \
  -forgebox "$FORGEBOX_BIN" -compose "$COMPOSE_BIN" -dist dist \
  ${FORGEBOX_BENCH_OUT:+-out "$FORGEBOX_BENCH_OUT"} ${FORGEBOX_BENCH_ARGS:-}
