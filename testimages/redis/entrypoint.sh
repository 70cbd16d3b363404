#!/bin/sh
# Entrypoint of forgebox-test/redis: follows the contract of the official
# `redis` image's docker-entrypoint.sh.
#  - `docker run IMAGE --appendonly yes` or `IMAGE /path/redis.conf` means
#    `redis-server ...`;
#  - redis-server started as root: /data is chowned to redis and the script
#    re-runs itself as redis (setpriv); the server is exec'ed (PID 1);
#  - Debian's /etc/redis/redis.conf is never used: plain `redis-server` listens
#    on all interfaces. The official image builds Redis with protected mode
#    off; here `--protected-mode no` is appended unless the arguments or the
#    given config file set protected-mode themselves.
set -e

# first arg is `-f` or `--some-option`, or first arg is `something.conf`
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

# allow the container to be started with `--user`
if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
	find /data \! -user redis -exec chown redis:redis '{}' +
	HOME=/data
	export HOME
	exec setpriv --reuid=redis --regid=redis --init-groups -- "$0" "$@"
fi

if [ "$1" = 'redis-server' ]; then
	want_pm=yes
	for arg in "$@"; do
		case "$arg" in
			--protected-mode|--protected-mode=*) want_pm=no ;;
		esac
	done
	case "${2:-}" in
		*.conf)
			if [ -r "$2" ] && grep -Eqi '^[[:space:]]*protected-mode[[:space:]]' "$2"; then
				want_pm=no
			fi
			;;
	esac
	if [ "$want_pm" = yes ]; then
		set -- "$@" --protected-mode no
	fi
fi

# set an appropriate umask (if one isn't set already)
um="$(umask)"
if [ "$um" = '0022' ]; then
	umask 0077
fi

exec "$@"
