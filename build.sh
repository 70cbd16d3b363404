#!/usr/bin/env bash
# Build, test and demo entry point for forgebox.
#
#   ./build.sh            build forgebox for linux/amd64 and linux/arm64, and the Synology
#                         packages dist/forgebox-<version>-{x86_64,armv8}.spk (needs Go only)
#   ./build.sh test       real-engine test run: engine, test images, go vet, go test ./...
#   ./build.sh demo       stand the stack up on the local engine (see README: images)
#   ./build.sh images     build (or reuse) the local test images and print their names
#   ./build.sh bench      benchmarks against Docker Compose v2 (bench/README.md; not a test)
#   ./build.sh dsm-build-number   the Synology packages' build number (refuses a shallow clone
#                         unless FORGEBOX_DSM_BUILD is set)
set -euo pipefail
cd "$(dirname "$0")"

# The version comes from git; a clone without tags still gets a unique, honest one.
version() {
  local v
  v=$(git describe --tags --always --dirty 2>/dev/null || true)
  case "$v" in
    "") echo "0.1.0-dev" ;;
    v*) echo "${v#v}" ;;
    *) echo "0.1.0-dev+${v}" ;;
  esac
}

VERSION=${FORGEBOX_VERSION:-$(version)}
LDFLAGS="-s -w -X github.com/forgebox/forgebox/service/internal/buildinfo.Version=${VERSION}"

# The DSM package's build number: it only ever grows (the commit count of this clone's history).
# INFO's version is spk/info.toml's feature version plus it, e.g. 0.1.0-0042. DSM refuses to
# upgrade to a lower number, and a shallow clone (CI's default depth 1) counts 1: refuse it, or
# any clone without history, unless FORGEBOX_DSM_BUILD says the number.
dsm_build_number() {
  if [ -n "${FORGEBOX_DSM_BUILD:-}" ]; then
    case "$FORGEBOX_DSM_BUILD" in
      *[!0-9]*) echo "FORGEBOX_DSM_BUILD=$FORGEBOX_DSM_BUILD is not a number" >&2; return 1 ;;
    esac
    echo "$FORGEBOX_DSM_BUILD"; return
  fi
  local shallow
  if ! shallow=$(git rev-parse --is-shallow-repository 2>/dev/null); then
    echo "no git history here, so no DSM build number: set FORGEBOX_DSM_BUILD to a number above the last release's" >&2
    return 1
  fi
  if [ "$shallow" = true ]; then
    echo "this is a shallow clone: its commit count would give DSM packages a build number lower than released ones." >&2
    echo "Run 'git fetch --unshallow', or set FORGEBOX_DSM_BUILD to a number above the last release's." >&2
    return 1
  fi
  git rev-list --count HEAD
}

build_binary() { # GOARCH OUT [PACKAGE]
  CGO_ENABLED=0 GOOS=linux GOARCH="$1" go build -trimpath -ldflags "$LDFLAGS" -o "$2" "${3:-./service/cmd/forgebox}"
}

cmd_build() {
  mkdir -p dist
  for arch in amd64 arm64; do
    # index.cgi of the Synology package: the app window's small front (no Docker client, gin, pgx).
    build_binary "$arch" "dist/forgebox-cgi-linux-${arch}" ./service/cmd/forgebox-cgi
    build_binary "$arch" "dist/forgebox-linux-${arch}"
    printf '%-44s %6.1f MiB  (%s bytes)\n' "dist/forgebox-linux-${arch}" \
      "$(awk -v b="$(stat -c %s "dist/forgebox-linux-${arch}")" 'BEGIN { print b / 1048576 }')" \
      "$(stat -c %s "dist/forgebox-linux-${arch}")"
  done
  # The Synology packages, one per DSM family; the GOARCH <-> DSM arch table is in
  # service/internal/spkbuild. Archive times come from the last commit: same input, same bytes.
  local build
  build=$(dsm_build_number)
  SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}" \
    go run ./service/cmd/spkbuild -out dist -build "$build" \
      -binary x86_64=dist/forgebox-linux-amd64 -binary armv8=dist/forgebox-linux-arm64 \
      -cgi x86_64=dist/forgebox-cgi-linux-amd64 -cgi armv8=dist/forgebox-cgi-linux-arm64
}

cmd_images() {
  bash testimages/ensure-engine.sh >&2
  bash testimages/build.sh
}

# The browser tests need Debian's Chromium and a CJK font (without one, Chinese renders as
# boxes); the DSM wizard and app-window tests run their scripts in node.
ensure_test_tools() {
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

cmd_test() {
  ensure_test_tools
  bash testimages/ensure-engine.sh
  eval "$(bash testimages/build.sh)"
  export FORGEBOX_REQUIRE_ENGINE=1
  # The real Docker Compose checks the exported compose file (built once, then cached).
  FORGEBOX_COMPOSE_BIN="$(bash bench/compose.sh)"
  export FORGEBOX_COMPOSE_BIN
  echo "== compose: $("$FORGEBOX_COMPOSE_BIN" version)"
  # The real distribution registry for the download tests (built once per version, cached).
  eval "$(bash testimages/registry.sh)"
  echo "== registry: $FORGEBOX_TEST_REGISTRY_BIN"
  # The fault suite's kill trials: a fresh seed each run, printed here (FORGEBOX_FAULT_SEED
  # replays it), and as many trials as start within the budget (bench/soak.sh runs many more).
  export FORGEBOX_FAULT_SEED="${FORGEBOX_FAULT_SEED:-$(od -An -N6 -tu8 /dev/urandom | tr -d ' ')}"
  export FORGEBOX_FAULT_BUDGET="${FORGEBOX_FAULT_BUDGET:-3m}"
  echo "== fault seed: $FORGEBOX_FAULT_SEED (budget $FORGEBOX_FAULT_BUDGET; FORGEBOX_FAULT_SEED=$FORGEBOX_FAULT_SEED replays it)"
  echo "== test images: $(env | grep '^FORGEBOX_TEST_.*_IMAGE=' | sort | tr '\n' ' ')"
  echo "== go vet"
  go vet ./...
  echo "== go test"
  # Test builds carry the test-only hooks (the DSM tool stand-ins, the upgrade crash points);
  # releases (build_binary) never do.
  # (The newer-engine step below runs its package itself.)
  go test -count=1 -timeout 30m -tags forgebox_testhooks "$@" $(go list ./... | grep -v '/service/internal/newerengine$')
  # The engine and stack suites again, on a newer engine than this machine's (Debian trixie's
  # docker.io, Docker 26, API 1.45; DSM 7.2.2 and later ship Docker 24, API 1.43): once with the
  # client negotiating, once pinned to API 1.41 (DOCKER_API_VERSION), as a private dockerd.
  eval "$(bash testimages/newer-engine.sh)"
  echo "== newer engine: $FORGEBOX_NEWER_ENGINE"
  local started=$SECONDS
  go test -count=1 -timeout 40m -tags forgebox_testhooks -v -run '^TestSuitesOnTheNewerEngine$' ./service/internal/newerengine/
  echo "== newer engine: done in $((SECONDS - started)) s"
  # Short fuzzing runs (the seed corpora already ran above as plain tests); 40 s of fuzzing in all.
  echo "== fuzz"
  fuzz ./service/internal/config FuzzParse
  for target in FuzzLoginBody FuzzConfigJSON FuzzConfigTOML FuzzProfileBody; do
    fuzz ./service/internal/api "$target"
  done
}

# fuzz PKG TARGET: fuzz one target briefly; an input that fails is kept in PKG/testdata/fuzz/.
fuzz() {
  # New inputs are minimized for at most 2 s (default 60 s), so the run is spent fuzzing.
  go test -run '^$' -fuzz "^$2\$" -fuzztime "${FORGEBOX_FUZZTIME:-8s}" -fuzzminimizetime 2s "$1"
}

# Benchmarks against Docker Compose v2 (bench/README.md); never part of the test run.
cmd_bench() {
  bash bench/run.sh
}

cmd_demo() {
  bash testimages/ensure-engine.sh
  eval "$(bash testimages/build.sh)"
  mkdir -p dist .demo
  build_binary "$(go env GOARCH)" dist/forgebox
  # The embedded defaults, with two changes this machine needs: no registry answers here, so
  # the images are the locally built ones (GitLab and the runner are contract stand-ins, not the
  # real images), and the data goes to .demo/ in this checkout.
  dist/forgebox config default |
    sed -e "s#^data_dir = .*#data_dir = \"$PWD/.demo/data\"#" \
        -e "s#^image = \"postgres:17-alpine\"#image = \"${FORGEBOX_TEST_POSTGRES_IMAGE}\"#" \
        -e "s#^image = \"redis:7-alpine\"#image = \"${FORGEBOX_TEST_REDIS_IMAGE}\"#" \
        -e "s#^image = \"sameersbn/gitlab:.*\"#image = \"${FORGEBOX_TEST_GITLAB_IMAGE}\"#" \
        -e "s#^image = \"gitlab/gitlab-runner:.*\"#image = \"${FORGEBOX_TEST_RUNNER_IMAGE}\"#" \
        -e "s#^image = \"alpine:3.22\"#image = \"${FORGEBOX_TEST_REDIS_IMAGE}\"#" \
        -e "s#^pull_policy = .*#pull_policy = \"never\"#" > .demo/forgebox.toml
  dist/forgebox --config .demo/forgebox.toml config validate
  dist/forgebox --config .demo/forgebox.toml up
  dist/forgebox --config .demo/forgebox.toml status
  echo "Stop it with: dist/forgebox --config .demo/forgebox.toml down   (data stays in .demo/data)"
}

case "${1:-build}" in
  build) cmd_build ;;
  test) shift; cmd_test "$@" ;;
  demo) cmd_demo ;;
  images) cmd_images ;;
  bench) cmd_bench ;;
  version) echo "$VERSION" ;;
  dsm-build-number) dsm_build_number ;;
  *) echo "usage: $0 [build|test|demo|images|bench|version|dsm-build-number]" >&2; exit 2 ;;
esac
