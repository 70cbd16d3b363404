#!/usr/bin/env bash
# The DSM app window's cost (bench/README.md, "The DSM app window"): builds forgebox and the
# small index.cgi front for this machine and runs bench/cmd/frontbench against the local
# engine. Not a test. FORGEBOX_FRONTBENCH_ARGS="-n 300 -idle 60s" sets the sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -tags forgebox_testhooks -trimpath -ldflags "-s -w" -o "$work/forgebox" ./service/cmd/forgebox
CGO_ENABLED=0 go build -tags forgebox_testhooks -trimpath -ldflags "-s -w" -o "$work/forgebox-cgi" ./service/cmd/forgebox-cgi
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/gostart" ./bench/cmd/gostart
go build -o "$work/frontbench" ./bench/cmd/frontbench
"$work/frontbench" -forgebox "$work/forgebox" -cgi "$work/forgebox-cgi" -gostart "$work/gostart" ${FORGEBOX_FRONTBENCH_ARGS:-}
