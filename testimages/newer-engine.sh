#!/usr/bin/env bash
# A newer real Docker Engine than the machine's (Debian 12's docker.io 20.10, API 1.41): Debian
# trixie's docker.io with trixie's containerd, runc and tini, for the suites that must also pass
# on the Docker 24+ engines DSM 7.2.2 and later ship (API 1.43 and up). The packages come from a
# trixie root (testimages/build.sh's cached base rootfs when there is one, else debootstrap),
# unpacked with dpkg -x, never installed on this machine. A binary that needs a newer glibc than
# the machine's (trixie's runc, on bookworm) is pointed (patchelf) at the dynamic loader and
# libraries of that trixie root, so it runs with the libraries it was built against.
# Done once per version, cached under ~/.cache/forgebox-tools/. Prints, for `eval`:
#   export FORGEBOX_NEWER_ENGINE=<dir with dockerd, containerd, runc, docker-proxy, docker-init>
# Needs root (chroot) only when the cache is cold.
#
# Environment:
#   FORGEBOX_TOOLS_CACHE   cache dir (default ~/.cache/forgebox-tools)
#   FORGEBOX_CACHE         testimages/build.sh's cache, whose trixie base rootfs is reused
#   FORGEBOX_MIRROR        Debian mirror (default http://deb.debian.org/debian)
set -euo pipefail

# The docker.io upstream version trixie ships (Docker 26.1, Engine API 1.45). When Debian
# replaces it, this script says so instead of caching another version under this name.
VERSION=26.1.5
SUITE=trixie
CACHE="${FORGEBOX_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/forgebox-tools}"
DIR="$CACHE/docker-$SUITE-$VERSION"
MIRROR="${FORGEBOX_MIRROR:-http://deb.debian.org/debian}"
BINARIES=(dockerd docker-proxy containerd containerd-shim-runc-v2 runc)

# runs BIN: it loads and says its version (Go's flag package knows -v, not --version).
runs() { "$1" --version >/dev/null 2>&1 || "$1" -v >/dev/null 2>&1; }
log() { printf 'newer-engine: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [ ! -x "$DIR/bin/dockerd" ]; then
  [ "$(id -u)" -eq 0 ] || die "unpacking Debian $SUITE's docker.io needs root (chroot) once; run as root"
  mkdir -p "$CACHE"
  exec 9>"$CACHE/docker-$SUITE.lock"
  flock 9
fi
if [ ! -x "$DIR/bin/dockerd" ]; then
  log "unpacking Debian $SUITE's docker.io $VERSION with its containerd, runc and tini (once; cached in $DIR)"
  work="$(mktemp -d "$CACHE/docker-$SUITE.XXXXXX")"
  root="$work/root"
  cleanup() {
    local mp
    for mp in proc dev; do umount "$root/$mp" 2>/dev/null || umount -l "$root/$mp" 2>/dev/null || true; done
    rm -rf --one-file-system "$work"
  }
  trap cleanup EXIT
  mkdir -p "$root"
  # build.sh's base rootfs key (base_tar there): reuse it when the test images were built here.
  key="$(printf '%s\n' "$SUITE" minbase "$MIRROR" base-v1 | sha256sum | cut -c1-12)"
  base="${FORGEBOX_CACHE:-/var/cache/forgebox-testimages}/base-$SUITE-minbase-$key.tar"
  if [ -f "$base" ]; then
    log "using base rootfs $base"
    tar -C "$root" --numeric-owner -xf "$base"
  else
    command -v debootstrap >/dev/null 2>&1 ||
      { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2; }
    log "debootstrap --variant=minbase $SUITE from $MIRROR"
    debootstrap --variant=minbase --components=main "$SUITE" "$root" "$MIRROR" >&2
    printf 'deb %s %s main\ndeb %s-security %s-security main\n' \
      "$MIRROR" "$SUITE" "${MIRROR%/debian}/debian-security" "$SUITE" >"$root/etc/apt/sources.list"
  fi
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  mount -t proc proc "$root/proc"
  in_root() {
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
      chroot "$root" "$@"
  }
  in_root apt-get update -q >&2
  # The libraries the binaries load (libc, libseccomp for runc, libsystemd for dockerd), and the tool
  # that points them at this root.
  in_root apt-get install -y -q --no-install-recommends libc6 libseccomp2 libsystemd0 patchelf >&2
  candidate="$(in_root apt-cache policy docker.io | sed -n 's/^ *Candidate: //p')"
  case "$candidate" in
    "$VERSION"+*) ;;
    *) die "Debian $SUITE's docker.io is now '$candidate', not $VERSION: update VERSION in $0" ;;
  esac
  mkdir -p "$root/fb/deb" "$root/fb/pkg" "$root/fb/bin"
  in_root sh -c 'cd /fb/deb && apt-get -o APT::Sandbox::User=root download -q docker.io containerd runc tini' >&2
  for deb in "$root"/fb/deb/*.deb; do dpkg-deb -x "$deb" "$root/fb/pkg"; done
  ls "$root"/fb/deb >"$root/fb/VERSIONS"
  for b in "${BINARIES[@]}"; do
    src=""
    for d in sbin bin libexec/docker; do
      [ -f "$root/fb/pkg/usr/$d/$b" ] && src="$root/fb/pkg/usr/$d/$b" && break
    done
    [ -n "$src" ] || die "no $b in $SUITE's packages"
    cp "$src" "$root/fb/bin/$b"
    # A binary that runs with this machine's libraries stays as built (patchelf breaks some
    # non-PIE Go binaries, e.g. containerd's); one that needs a newer glibc (runc: 2.38) is
    # pointed at the trixie root's loader and libraries, at their final paths ($DIR, below).
    # RPATH, not RUNPATH: it also holds for the libraries' own dependencies.
    if ! runs "$root/fb/bin/$b"; then
      log "$b needs $SUITE's libraries: patchelf"
      in_root patchelf --force-rpath --set-interpreter "$DIR/root/lib64/ld-linux-x86-64.so.2" \
        --set-rpath "$DIR/root/usr/lib/x86_64-linux-gnu" "/fb/bin/$b"
    fi
  done
  # docker-init is tini, static.
  cp "$root/fb/pkg/usr/bin/tini-static" "$root/fb/bin/docker-init"
  umount "$root/proc"
  rm -rf "$root/fb/deb" "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
  : >"$root/etc/resolv.conf"
  mv "$root/fb/bin" "$work/bin"
  mv "$root/fb/VERSIONS" "$work/VERSIONS"
  rm -rf "$root/fb"
  mv "$work" "$DIR"
  trap - EXIT
  for b in "${BINARIES[@]}"; do
    # Each one loads (a Go binary answers --version before it needs anything else); one that
    # does not is not cached.
    runs "$DIR/bin/$b" || { "$DIR/bin/$b" --version >&2 || true; rm -rf --one-file-system "$DIR"; die "$b from $SUITE does not run here"; }
  done
fi
# Say which engine this is.
"$DIR/bin/dockerd" --version >&2 || die "$DIR/bin/dockerd does not run here"
echo "export FORGEBOX_NEWER_ENGINE=$DIR/bin"
