#!/usr/bin/env bash
# Build the local test images for Forgebox from Debian packages:
#   forgebox-test/postgres:17-<h>   (Debian trixie, postgresql-17)
#   forgebox-test/postgres:15-<h>   (Debian bookworm, postgresql-15; the older
#                                   major for PostgreSQL upgrade tests)
#   forgebox-test/redis:<h>         (Debian trixie, redis-server + redis-tools)
#   forgebox-test/gitlab-standin:<h>, forgebox-test/runner-standin:<h>
#                                   (contract stand-ins: static Go binaries from
#                                   service/standins; see standins.sh)
# <h> = first 12 hex chars of a sha256 over this script and the image's own
# files, so editing either rebuilds. An image whose tag already exists in the
# engine is not rebuilt.
#
# stdout carries only the result, for `eval "$(testimages/build.sh)"`:
#   export FORGEBOX_TEST_POSTGRES_IMAGE=forgebox-test/postgres:17-<h>
#   export FORGEBOX_TEST_POSTGRES15_IMAGE=forgebox-test/postgres:15-<h>
#   export FORGEBOX_TEST_REDIS_IMAGE=forgebox-test/redis:<h>
#   export FORGEBOX_TEST_GITLAB_IMAGE=forgebox-test/gitlab-standin:<h>
#   export FORGEBOX_TEST_RUNNER_IMAGE=forgebox-test/runner-standin:<h>
# Everything else goes to stderr. Needs root (debootstrap, chroot) only when
# the PostgreSQL or Redis image has to be built, go when a stand-in image has
# to be built, and a Docker Engine (see ensure-engine.sh).
#
# Environment:
#   FORGEBOX_CACHE   cache dir for the base rootfs tarball and the build
#                    work dirs (default /var/cache/forgebox-testimages)
#   FORGEBOX_MIRROR  Debian mirror (default http://deb.debian.org/debian)
set -euo pipefail

# Keep stdout for the final export lines; everything else goes to stderr.
exec 3>&1 1>&2

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${FORGEBOX_CACHE:-/var/cache/forgebox-testimages}"
MIRROR="${FORGEBOX_MIRROR:-http://deb.debian.org/debian}"
SUITE=trixie
VARIANT=minbase
PG_MAJOR=17
# The older PostgreSQL major comes from the Debian release that ships it.
PG_OLD_MAJOR=15
PG_OLD_SUITE=bookworm

REDIS_PACKAGES=(util-linux redis-server redis-tools)

log() { printf 'testimages: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# sha256 over build.sh and every file under testimages/<dir>, first 12 hex.
image_hash() {
  (
    cd "$HERE"
    { printf '%s\0' build.sh; find "$1" -type f -print0 | LC_ALL=C sort -z; } |
      xargs -0 sha256sum
  ) | sha256sum | cut -c1-12
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

PG_HASH="$(image_hash postgres)"
REDIS_HASH="$(image_hash redis)"
PG_IMAGE="forgebox-test/postgres:${PG_MAJOR}-${PG_HASH}"
# Same <h>: the same entrypoint, so postgres:15-<h> -> postgres:17-<h> is a plain major change.
PG_OLD_IMAGE="forgebox-test/postgres:${PG_OLD_MAJOR}-${PG_HASH}"
REDIS_IMAGE="forgebox-test/redis:${REDIS_HASH}"
# shellcheck source=testimages/standins.sh
. "$HERE/standins.sh"

print_result() {
  printf 'export FORGEBOX_TEST_POSTGRES_IMAGE=%s\n' "$PG_IMAGE" >&3
  printf 'export FORGEBOX_TEST_POSTGRES15_IMAGE=%s\n' "$PG_OLD_IMAGE" >&3
  printf 'export FORGEBOX_TEST_REDIS_IMAGE=%s\n' "$REDIS_IMAGE" >&3
  printf 'export FORGEBOX_TEST_GITLAB_IMAGE=%s\n' "$GITLAB_STANDIN_IMAGE" >&3
  printf 'export FORGEBOX_TEST_RUNNER_IMAGE=%s\n' "$RUNNER_STANDIN_IMAGE" >&3
}

docker info >/dev/null 2>&1 ||
  die "no Docker Engine answers (run testimages/ensure-engine.sh as root first)"

# Fast path: all tags are there already.
if image_exists "$PG_IMAGE" && image_exists "$PG_OLD_IMAGE" && image_exists "$REDIS_IMAGE" &&
  image_exists "$GITLAB_STANDIN_IMAGE" && image_exists "$RUNNER_STANDIN_IMAGE"; then
  log "cached: $PG_IMAGE, $PG_OLD_IMAGE, $REDIS_IMAGE, $GITLAB_STANDIN_IMAGE, $RUNNER_STANDIN_IMAGE"
  print_result
  exit 0
fi

if ! image_exists "$PG_IMAGE" || ! image_exists "$PG_OLD_IMAGE" || ! image_exists "$REDIS_IMAGE"; then
  [ "$(id -u)" -eq 0 ] || die "building the images needs root (debootstrap, chroot)"
fi

# Only the stand-ins (no root needed) may be missing when the cache dir is not ours.
if ! mkdir -p "$CACHE" 2>/dev/null || [ ! -w "$CACHE" ]; then
  CACHE="${TMPDIR:-/tmp}/forgebox-testimages-$(id -u)"
  mkdir -p "$CACHE"
fi
# One build at a time (parallel test runs may all call this script).
exec 9>"$CACHE/build.lock"
flock 9

WORK=""

# Unmount everything below $WORK, deepest first; lazily if busy.
unmount_below() {
  local root="$1" mp
  [ -n "$root" ] && [ -d "$root" ] || return 0
  # Field 5 of mountinfo is the mount point (octal escapes for spaces: none here).
  awk -v r="$root/" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo |
    sort -r | while read -r mp; do
      umount "$mp" 2>/dev/null || umount -l "$mp" || true
    done
}

cleanup() {
  local rc=$?
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    unmount_below "$WORK"
    if awk -v r="$WORK/" 'index($5, r) == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; then
      log "warning: mounts remain below $WORK; not removing it"
    else
      rm -rf --one-file-system "$WORK"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -n "$(find "$CACHE" -maxdepth 1 -name 'work.*' -print -quit)" ]; then
  # Left by a build that was killed with SIGKILL; we hold the lock, so no
  # other build is using them.
  for old in "$CACHE"/work.*; do
    unmount_below "$old"
    rm -rf --one-file-system "$old" || true
  done
fi
WORK="$(mktemp -d "$CACHE/work.XXXXXX")"

# Run a command inside a rootfs with a clean environment.
in_root() {
  local root="$1"; shift
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
    chroot "$root" "$@"
}

# Shrink a rootfs: apt lists and caches, docs, man pages, logs.
slim_rootfs() {
  local root="$1"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* \
    "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old \
    "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/lintian "$root"/usr/share/linda \
    "$root"/var/log/apt/* "$root"/var/log/*.log "$root"/tmp/* "$root"/var/tmp/*
  # Docs go; the copyright files (small) stay.
  find "$root/usr/share/doc" -mindepth 1 \( -type f -o -type l \) ! -name copyright -delete 2>/dev/null || true
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  # Message catalogues; the servers log in English anyway.
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
}

# ---------------------------------------------------------------------------
# Base rootfs: one debootstrap per Debian release, cached as a tarball.
base_tar() {
  local key
  key="$(printf '%s\n' "$1" "$VARIANT" "$MIRROR" base-v1 | sha256sum | cut -c1-12)"
  printf '%s/base-%s-%s-%s.tar' "$CACHE" "$1" "$VARIANT" "$key"
}

# build_base <suite>
build_base() {
  local SUITE="$1" BASE_TAR root
  BASE_TAR="$(base_tar "$1")"
  root="$WORK/base-$1"
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap
  fi
  [ -e "/usr/share/debootstrap/scripts/$SUITE" ] ||
    die "this debootstrap does not know $SUITE"
  log "debootstrap --variant=$VARIANT $SUITE from $MIRROR"
  mkdir -p "$root"
  debootstrap --variant="$VARIANT" --components=main "$SUITE" "$root" "$MIRROR"

  # Base configuration shared by both images.
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE ${SUITE}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: ${SUITE}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/apt.conf.d/90forgebox" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Dpkg::Options { "--force-confdef"; "--force-confold"; };
EOF
  cat >"$root/etc/dpkg/dpkg.cfg.d/90forgebox-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/lintian/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF
  # No service may start inside the chroot during package installation.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  : >"$root/etc/resolv.conf"
  slim_rootfs "$root"

  unmount_below "$root"   # debootstrap unmounts /proc and /sys itself; be sure
  log "caching base rootfs as $BASE_TAR"
  tar -C "$root" --numeric-owner --xattrs -cf "$BASE_TAR.tmp" .
  mv "$BASE_TAR.tmp" "$BASE_TAR"
  rm -rf --one-file-system "$root"
}

# extract_base <dir> <suite>: the cached base rootfs of <suite> into a new dir.
extract_base() {
  local tarball
  tarball="$(base_tar "$2")"
  [ -f "$tarball" ] || build_base "$2"
  log "using base rootfs $tarball"
  mkdir -p "$1"
  tar -C "$1" --numeric-owner --xattrs -xf "$tarball"
}

# Install packages with apt-get in a chroot: install_packages <root> <pkg>...
install_packages() {
  local root="$1"; shift
  # Working DNS for apt inside the chroot (the engine bind-mounts its own
  # resolv.conf into containers, so the image keeps an empty one).
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  log "${root##*/}: apt-get install $*"
  in_root "$root" apt-get update -q
  in_root "$root" apt-get install -y -q "$@"
}

finish_rootfs() {
  local root="$1"
  in_root "$root" apt-get clean
  rm -f "$root/usr/sbin/policy-rc.d"
  : >"$root/etc/resolv.conf"
  slim_rootfs "$root"
}

tar_rootfs() {
  tar -C "$1" --numeric-owner --xattrs \
    --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -cf - .
}

# Import a rootfs as an image: docker_import <root> <tag> <change>...
# Older engines (Debian 12's docker.io 20.10) refuse STOPSIGNAL in
# `docker import --change` ("stopsignal is not a valid change command"); then
# the image is imported without it and STOPSIGNAL is added by a one-line
# `docker build` on top (classic builder; no context, no registry access).
docker_import() {
  local root="$1" tag="$2"; shift 2
  local changes=() others=() c stopsignal="" err id
  for c in "$@"; do
    changes+=(--change "$c")
    case "$c" in
      STOPSIGNAL\ *) stopsignal="${c#STOPSIGNAL }" ;;
      *) others+=(--change "$c") ;;
    esac
  done
  log "importing $tag"
  if err="$(tar_rootfs "$root" | docker import "${changes[@]}" - "$tag" 2>&1 >/dev/null)"; then
    return 0
  fi
  if [ -z "$stopsignal" ] || ! grep -qi 'stopsignal' <<<"$err"; then
    printf '%s\n' "$err" >&2
    die "docker import of $tag failed"
  fi
  log "this engine's import takes no STOPSIGNAL; adding it with docker build"
  id="$(tar_rootfs "$root" | docker import "${others[@]}" -)"
  printf 'FROM %s\nSTOPSIGNAL %s\n' "$id" "$stopsignal" |
    DOCKER_BUILDKIT=0 docker build -q -t "$tag" - >/dev/null
}

# ---------------------------------------------------------------------------
# build_postgres <major> <suite> <image>
build_postgres() {
  local PG_MAJOR="$1" suite="$2" PG_IMAGE="$3"
  local root="$WORK/postgres-$1"
  local bindir="/usr/lib/postgresql/${PG_MAJOR}/bin"
  extract_base "$root" "$suite"
  # Same ids as the official image (999:999), created before the packages so
  # that postgresql-common's adduser finds the user.
  in_root "$root" groupadd -r -g 999 postgres
  in_root "$root" useradd -r -g postgres -u 999 -d /var/lib/postgresql -s /bin/bash \
    -c 'PostgreSQL administrator' postgres
  # No Debian-style cluster (/etc/postgresql/17/main) on install.
  mkdir -p "$root/etc/postgresql-common/createcluster.d"
  echo 'create_main_cluster = false' >"$root/etc/postgresql-common/createcluster.d/forgebox.conf"
  install_packages "$root" util-linux "postgresql-${PG_MAJOR}"

  [ -x "$root$bindir/postgres" ] || die "postgres not found in $bindir"
  # Like the official image: initdb's sample config listens on all addresses.
  sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '*'!" \
    "$root/usr/share/postgresql/${PG_MAJOR}/postgresql.conf.sample"
  grep -q "^listen_addresses = '\*'" "$root/usr/share/postgresql/${PG_MAJOR}/postgresql.conf.sample" ||
    die "could not set listen_addresses in postgresql.conf.sample"
  # In case a cluster was created anyway.
  rm -rf "$root/etc/postgresql/${PG_MAJOR}" "$root/var/lib/postgresql/${PG_MAJOR}"
  install -d -o 999 -g 999 -m 0700 "$root/var/lib/postgresql/data"
  install -d -o 999 -g 999 -m 3777 "$root/run/postgresql"
  install -d -m 0755 "$root/docker-entrypoint-initdb.d"
  install -m 0755 "$HERE/postgres/entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
  for tool in setpriv pg_isready psql initdb pg_ctl; do
    [ -x "$root$bindir/$tool" ] || [ -x "$root/usr/bin/$tool" ] || die "$tool missing in postgres image"
  done
  finish_rootfs "$root"

  docker_import "$root" "$PG_IMAGE" \
    "ENV PATH=${bindir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    "ENV PG_MAJOR=${PG_MAJOR}" \
    "ENV LANG=C.UTF-8" \
    "ENV PGDATA=/var/lib/postgresql/data" \
    "LABEL org.forgebox.testimage=postgres org.forgebox.testimage.hash=${PG_HASH}" \
    'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
    'CMD ["postgres"]' \
    'EXPOSE 5432' \
    'STOPSIGNAL SIGINT'
  rm -rf --one-file-system "$root"
}

build_redis() {
  local root="$WORK/redis"
  extract_base "$root" "$SUITE"
  # Same ids as the official image (999:999).
  in_root "$root" groupadd -r -g 999 redis
  in_root "$root" useradd -r -g redis -u 999 -d /var/lib/redis -s /usr/sbin/nologin \
    -c 'Redis' redis
  install_packages "$root" "${REDIS_PACKAGES[@]}"

  for tool in setpriv redis-server redis-cli; do
    [ -x "$root/usr/bin/$tool" ] || die "$tool missing in redis image"
  done
  install -d -o 999 -g 999 -m 0755 "$root/data"
  install -m 0755 "$HERE/redis/entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
  finish_rootfs "$root"

  docker_import "$root" "$REDIS_IMAGE" \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "LABEL org.forgebox.testimage=redis org.forgebox.testimage.hash=${REDIS_HASH}" \
    'WORKDIR /data' \
    'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
    'CMD ["redis-server"]' \
    'EXPOSE 6379'
  rm -rf --one-file-system "$root"
}

# ---------------------------------------------------------------------------
need_pg=1; need_pg_old=1; need_redis=1
image_exists "$PG_IMAGE" && need_pg=0      # another build may have made them
image_exists "$PG_OLD_IMAGE" && need_pg_old=0
image_exists "$REDIS_IMAGE" && need_redis=0

if [ $need_pg = 1 ]; then build_postgres "$PG_MAJOR" "$SUITE" "$PG_IMAGE"; else log "cached: $PG_IMAGE"; fi
if [ $need_pg_old = 1 ]; then
  build_postgres "$PG_OLD_MAJOR" "$PG_OLD_SUITE" "$PG_OLD_IMAGE"
else
  log "cached: $PG_OLD_IMAGE"
fi
if [ $need_redis = 1 ]; then build_redis; else log "cached: $REDIS_IMAGE"; fi
build_standins "$WORK"

print_result
