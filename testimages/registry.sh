#!/usr/bin/env bash
# The real container registry for the download tests (service/internal/download): the
# distribution registry (github.com/distribution/distribution/v3, the registry Docker Hub and most
# mirrors run), built from the Go module proxy once per version and cached. Prints
# FORGEBOX_TEST_REGISTRY_BIN=<path> for `eval`.
set -euo pipefail
VERSION=v3.1.2
CACHE="${FORGEBOX_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/forgebox-tools}"
DIR="$CACHE/registry-$VERSION"
if [ ! -x "$DIR/registry" ]; then
  echo "registry.sh: building the distribution registry $VERSION (once; cached in $DIR)" >&2
  mkdir -p "$DIR"
  GOBIN="$DIR" CGO_ENABLED=0 go install "github.com/distribution/distribution/v3/cmd/registry@$VERSION" >&2
fi
echo "export FORGEBOX_TEST_REGISTRY_BIN=$DIR/registry"
