#!/usr/bin/env bash
# Make sure a Docker Engine answers on this machine.
#  - if `docker info` already works: do nothing;
#  - else install Debian's docker.io if dockerd is missing, start dockerd in
#    the background (log: /tmp/dockerd.log) and wait up to 60 s for it.
# Must be run as root when it has to install or start anything.
set -euo pipefail

log() { echo "ensure-engine: $*" >&2; }

engine_ok() { docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_ok; then
  log "Docker Engine already answers; nothing to do"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  log "no Docker Engine answers and this is not root: cannot install/start one" >&2
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1 \
   || ! command -v iptables >/dev/null 2>&1; then
  log "installing Debian packages docker.io and iptables"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  apt-get install -y --no-install-recommends docker.io iptables >&2
fi

LOGFILE=/tmp/dockerd.log

wait_engine() { # $1 = pid of dockerd
  local _
  for _ in $(seq 1 60); do
    if engine_ok; then return 0; fi
    if ! kill -0 "$1" 2>/dev/null; then return 1; fi
    sleep 1
  done
  return 1
}

start_dockerd() { # args: extra dockerd flags
  log "starting: dockerd${*:+ $*} (log: $LOGFILE)"
  # setsid + nohup: the engine must outlive this script and its shell.
  setsid nohup dockerd "$@" >>"$LOGFILE" 2>&1 </dev/null &
  local pid=$!
  if wait_engine "$pid"; then
    log "Docker Engine is up (dockerd pid $pid)"
    return 0
  fi
  log "dockerd $* did not come up within 60 s; last log lines:"
  tail -n 20 "$LOGFILE" >&2 || true
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 15); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  fi
  rm -f /var/run/docker.pid
  return 1
}

# A stale pid file from a dead engine makes dockerd refuse to start.
if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid 2>/dev/null)" 2>/dev/null; then
  log "removing stale /var/run/docker.pid"
  rm -f /var/run/docker.pid
fi

# An engine process that exists but does not answer yet: give it the time.
if pid=$(pgrep -x dockerd | head -n1) && [ -n "$pid" ]; then
  log "dockerd (pid $pid) already running; waiting for it to answer"
  if wait_engine "$pid"; then log "Docker Engine is up"; exit 0; fi
  log "the running dockerd does not answer; see $LOGFILE" >&2
  exit 1
fi

# Plain first (iptables on, the default); then without iptables for
# kernels/sandboxes where the netfilter tables cannot be set up.
start_dockerd && exit 0
start_dockerd --iptables=false && exit 0

log "could not start a Docker Engine; see $LOGFILE" >&2
exit 1
