# shellcheck shell=bash
# Sourced by build.sh: the contract stand-in images for GitLab and GitLab Runner.
#   forgebox-test/gitlab-standin:<h>   (service/standins/gitlab)
#   forgebox-test/runner-standin:<h>   (service/standins/runner)
# They are test doubles, not GitLab: see service/standins/README.md. Each is one static Go
# binary (CGO_ENABLED=0, -trimpath) on a minimal rootfs made here (passwd/group, the directories
# the real image has, symlinks for the commands forgebox execs), imported with `docker import`.
# No debootstrap, no root and no network are needed: only go and a Docker Engine.
# <h> = first 12 hex chars of a sha256 over build.sh, this file, go.mod, go.sum and the
# non-test Go sources under service/standins.
#
# Uses from build.sh: HERE, log, die.

STANDIN_REPO="$(cd "$HERE/.." && pwd)"

standin_hash() {
  (
    cd "$STANDIN_REPO" || exit 1
    {
      printf '%s\0' testimages/build.sh testimages/standins.sh go.mod go.sum
      find service/standins -type f -name '*.go' ! -name '*_test.go' -print0 | LC_ALL=C sort -z
    } | xargs -0 sha256sum
  ) | sha256sum | cut -c1-12
}

STANDIN_HASH="$(standin_hash)"
GITLAB_STANDIN_IMAGE="forgebox-test/gitlab-standin:${STANDIN_HASH}"
RUNNER_STANDIN_IMAGE="forgebox-test/runner-standin:${STANDIN_HASH}"

standin_go() {
  if command -v go >/dev/null 2>&1; then
    command -v go
  elif [ -x /usr/local/go/bin/go ]; then
    echo /usr/local/go/bin/go
  else
    die "go is needed to build the stand-in images"
  fi
}

# standin_build_binary <package dir> <output>
standin_build_binary() {
  local gobin
  gobin="$(standin_go)"
  log "go build $1 (static)"
  (cd "$STANDIN_REPO" &&
    CGO_ENABLED=0 "$gobin" build -trimpath -buildvcs=false -ldflags='-s -w' -o "$2" "./$1")
}

# standin_tar <root> <tarfile> [<dir owned by 1000:1000>]: a rootfs tarball, root-owned except
# the given dir, without needing root to chown.
standin_tar() {
  local root="$1" out="$2" gitdir="${3:-}"
  local excl=()
  [ -n "$gitdir" ] && excl=(--exclude="./$gitdir")
  tar -C "$root" --numeric-owner --owner=0 --group=0 --sort=name "${excl[@]}" -cf "$out" .
  if [ -n "$gitdir" ]; then
    tar -C "$root" --numeric-owner --owner=1000 --group=1000 --sort=name -rf "$out" "./$gitdir"
  fi
}

# standin_rootfs_base <root>: the directories and files every stand-in image has.
standin_rootfs_base() {
  local root="$1"
  mkdir -p "$root"/{etc,root,run,usr/local/bin,usr/bin,var/log}
  install -d -m 1777 "$root/tmp"
  chmod 0700 "$root/root"
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
}

build_gitlab_standin() {
  local dir="$1/gitlab-standin" root
  root="$dir/root"
  standin_rootfs_base "$root"
  standin_build_binary service/standins/gitlab "$root/usr/local/bin/forgebox-gitlab-standin"
  # sameersbn: user git is uid/gid 1000, WORKDIR /home/git/gitlab, `bundle` in PATH.
  # Omnibus: `gitlab-rails`, `gitlab-ctl`, `gitlab-backup` in PATH (and /opt/gitlab/bin), as root.
  cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
git:x:1000:1000:GitLab (stand-in):/home/git:/sbin/nologin
PASSWD
  printf 'root:x:0:\ngit:x:1000:\n' >"$root/etc/group"
  mkdir -p "$root/home/git/gitlab" "$root/home/git/data" "$root/opt/gitlab/bin" \
    "$root/etc/gitlab" "$root/var/opt/gitlab" "$root/var/log/gitlab"
  ln -s forgebox-gitlab-standin "$root/usr/local/bin/bundle"
  # sameersbn runs its services under supervisord; Omnibus has gitlab-ctl and gitlab-backup.
  # The entrypoint execs supervisord after the migrations (restart.go); forgebox reads
  # /proc/1/comm and the data's VERSION with cat.
  ln -s ../local/bin/forgebox-gitlab-standin "$root/usr/bin/supervisorctl"
  ln -s ../local/bin/forgebox-gitlab-standin "$root/usr/bin/supervisord"
  ln -s ../local/bin/forgebox-gitlab-standin "$root/usr/bin/cat"
  local cmd
  for cmd in gitlab-rails gitlab-ctl gitlab-backup; do
    ln -s ../local/bin/forgebox-gitlab-standin "$root/usr/bin/$cmd"
    ln -s /usr/local/bin/forgebox-gitlab-standin "$root/opt/gitlab/bin/$cmd"
  done
  standin_tar "$root" "$dir/rootfs.tar" home/git
  log "importing $GITLAB_STANDIN_IMAGE"
  docker import \
    --change 'ENV PATH=/opt/gitlab/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV GITLAB_VERSION=18.5.1' \
    --change "LABEL org.forgebox.testimage=gitlab-standin org.forgebox.testimage.hash=${STANDIN_HASH} org.forgebox.standin=gitlab" \
    --change 'WORKDIR /home/git/gitlab' \
    --change 'ENTRYPOINT ["/usr/local/bin/forgebox-gitlab-standin"]' \
    --change 'CMD ["app:start"]' \
    --change 'EXPOSE 22/tcp 80/tcp 443/tcp' \
    "$dir/rootfs.tar" "$GITLAB_STANDIN_IMAGE" >/dev/null
}

build_runner_standin() {
  local dir="$1/runner-standin" root
  root="$dir/root"
  standin_rootfs_base "$root"
  standin_build_binary service/standins/runner "$root/usr/local/bin/forgebox-runner-standin"
  cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
gitlab-runner:x:999:999:GitLab Runner (stand-in):/home/gitlab-runner:/sbin/nologin
PASSWD
  printf 'root:x:0:\ngitlab-runner:x:999:\n' >"$root/etc/group"
  mkdir -p "$root/home/gitlab-runner"
  install -d -m 0700 "$root/etc/gitlab-runner"
  ln -s ../local/bin/forgebox-runner-standin "$root/usr/bin/gitlab-runner"
  standin_tar "$root" "$dir/rootfs.tar"
  log "importing $RUNNER_STANDIN_IMAGE"
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL org.forgebox.testimage=runner-standin org.forgebox.testimage.hash=${STANDIN_HASH} org.forgebox.standin=runner" \
    --change 'ENTRYPOINT ["/usr/local/bin/forgebox-runner-standin"]' \
    --change 'CMD ["run", "--user=gitlab-runner", "--working-directory=/home/gitlab-runner"]' \
    "$dir/rootfs.tar" "$RUNNER_STANDIN_IMAGE" >/dev/null
}

# build_standins <work dir>: builds whichever stand-in image is missing.
build_standins() {
  if image_exists "$GITLAB_STANDIN_IMAGE"; then log "cached: $GITLAB_STANDIN_IMAGE"; else build_gitlab_standin "$1"; fi
  if image_exists "$RUNNER_STANDIN_IMAGE"; then log "cached: $RUNNER_STANDIN_IMAGE"; else build_runner_standin "$1"; fi
}
