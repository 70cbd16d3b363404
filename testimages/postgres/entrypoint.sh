#!/usr/bin/env bash
# Entrypoint of forgebox-test/postgres: follows the contract of the official
# `postgres` image's docker-entrypoint.sh (a smaller reimplementation).
#
#   POSTGRES_USER              superuser name (default postgres)
#   POSTGRES_PASSWORD          its password; required unless
#                              POSTGRES_HOST_AUTH_METHOD=trust
#   POSTGRES_DB                database created on first start (default: user)
#   POSTGRES_INITDB_ARGS       extra initdb arguments
#   POSTGRES_HOST_AUTH_METHOD  auth for `host all all all` (default scram-sha-256)
#   PGDATA                     data dir (default /var/lib/postgresql/data)
#   *_FILE variants of POSTGRES_USER/PASSWORD/DB/INITDB_ARGS (Docker secrets)
#   /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz run on first start
#
# Started as root it creates/chowns PGDATA and re-runs itself as `postgres`
# (setpriv); the server is exec'ed, so it is PID 1 and gets the stop signal.
set -Eeo pipefail

log() { printf '%s [entrypoint] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*" >&2; }

# file_env VAR [DEFAULT]: VAR or VAR_FILE (contents of that file), not both.
file_env() {
  local var="$1" fileVar="${1}_FILE" def="${2:-}"
  if [ "${!var:-}" ] && [ "${!fileVar:-}" ]; then
    log "error: both $var and $fileVar are set (but are exclusive)"
    exit 1
  fi
  local val="$def"
  if [ "${!var:-}" ]; then
    val="${!var}"
  elif [ "${!fileVar:-}" ]; then
    val="$(<"${!fileVar}")"
  fi
  export "$var"="$val"
  unset "$fileVar"
}

setup_env() {
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "$POSTGRES_USER"
  file_env POSTGRES_INITDB_ARGS
  : "${POSTGRES_HOST_AUTH_METHOD:=}"
  export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
  DATABASE_ALREADY_EXISTS=
  if [ -s "$PGDATA/PG_VERSION" ]; then
    DATABASE_ALREADY_EXISTS=true
  fi
}

create_db_directories() {
  local user
  user="$(id -u)"
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA" || :
  mkdir -p /var/run/postgresql || :
  chmod 3777 /var/run/postgresql || :
  if [ "$user" = 0 ]; then
    # Fix ownership, e.g. of a host dir bind-mounted by root.
    find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
    find /var/run/postgresql \! -user postgres -exec chown postgres:postgres '{}' +
  fi
}

verify_minimum_env() {
  if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
    cat >&2 <<'EOM'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".

       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all
       connections without a password. This is *not* recommended.
EOM
    exit 1
  fi
  if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
    log "warning: POSTGRES_HOST_AUTH_METHOD=trust: every host connection is accepted without a password"
  fi
}

init_database_dir() {
  local uid
  uid="$(id -u)"
  if ! getent passwd "$uid" >/dev/null; then
    log "error: uid $uid has no passwd entry (initdb needs one)"
    exit 1
  fi
  # The password goes through a pipe (printf is a builtin): never on a
  # command line nor in the log. POSTGRES_INITDB_ARGS is eval'ed like the
  # official image does, so quoted arguments work.
  if [ -n "$POSTGRES_PASSWORD" ]; then
    eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") --auth-local=trust --auth-host=trust '"$POSTGRES_INITDB_ARGS"' "$@"'
  else
    eval 'initdb --username="$POSTGRES_USER" --auth-local=trust --auth-host=trust '"$POSTGRES_INITDB_ARGS"' "$@"'
  fi
}

setup_hba_conf() {
  local method="$POSTGRES_HOST_AUTH_METHOD"
  : "${method:=scram-sha-256}"
  {
    printf '\n'
    printf '# added by the forgebox test image entrypoint (as the official image does)\n'
    printf 'host all all all %s\n' "$method"
  } >>"$PGDATA/pg_hba.conf"
  # PostgreSQL 17 already defaults to scram-sha-256; make it explicit.
  printf "\npassword_encryption = 'scram-sha-256'\n" >>"$PGDATA/postgresql.conf"
  if ! grep -Eq "^listen_addresses\s*=\s*'\*'" "$PGDATA/postgresql.conf"; then
    printf "listen_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
  fi
}

temp_server_start() {
  # The server's own arguments (e.g. `-c hba_file=...`) apply to the temporary
  # server too, as in the official image's docker_temp_server_start
  # (docker-library/postgres, docker-entrypoint.sh); then unix socket only:
  # nothing can connect over TCP before init is done.
  if [ "${1:-}" = postgres ]; then
    shift
  fi
  set -- "$@" -c listen_addresses='' -p "${PGPORT:-5432}"
  PGUSER="${PGUSER:-$POSTGRES_USER}" \
    pg_ctl -D "$PGDATA" -o "$(printf '%q ' "$@")" -w start >&2
}

temp_server_stop() {
  PGUSER="${PGUSER:-$POSTGRES_USER}" pg_ctl -D "$PGDATA" -m fast -w stop >&2
}

# process_sql [psql args...] < sql
process_sql() {
  local query_runner=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
  if [ -n "$POSTGRES_DB" ]; then
    query_runner+=(--dbname "$POSTGRES_DB")
  fi
  PGHOST='' PGHOSTADDR='' "${query_runner[@]}" "$@"
}

# POSTGRES_DB is emptied for process_sql only; :'db' gets the real name.
# shellcheck disable=SC2097,SC2098
setup_db() {
  local exists
  exists="$(POSTGRES_DB='' process_sql --dbname postgres --set db="$POSTGRES_DB" --tuples-only <<-'EOSQL'
		SELECT 1 FROM pg_database WHERE datname = :'db' ;
	EOSQL
  )"
  if [ -z "$exists" ]; then
    POSTGRES_DB='' process_sql --dbname postgres --set db="$POSTGRES_DB" <<-'EOSQL'
		CREATE DATABASE :"db" ;
	EOSQL
    log "created database $POSTGRES_DB"
  fi
}

process_init_files() {
  local f
  for f in "$@"; do
    case "$f" in
      *.sh)
        if [ -x "$f" ]; then log "running $f"; "$f"
        else
          log "sourcing $f"
          # shellcheck disable=SC1090
          . "$f"
        fi ;;
      *.sql) log "running $f"; process_sql -f "$f" ;;
      *.sql.gz) log "running $f"; gunzip -c "$f" | process_sql ;;
      *.sql.xz) log "running $f"; xzcat "$f" | process_sql ;;
      *.sql.zst) log "running $f"; zstd -dc "$f" | process_sql ;;
      *) log "ignoring $f" ;;
    esac
  done
}

main() {
  # `docker run IMAGE -c foo=bar` means `postgres -c foo=bar`.
  if [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
  fi

  if [ "$1" = postgres ]; then
    setup_env
    create_db_directories
    if [ "$(id -u)" = 0 ]; then
      # Drop privileges and run this script again as postgres.
      HOME="$(getent passwd postgres | cut -d: -f6)"
      export HOME
      exec setpriv --reuid=postgres --regid=postgres --init-groups -- "${BASH_SOURCE[0]}" "$@"
    fi

    if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
      verify_minimum_env
      # Fail early if the init scripts cannot be read.
      ls /docker-entrypoint-initdb.d/ >/dev/null
      log "initializing database in $PGDATA (superuser $POSTGRES_USER)"
      init_database_dir
      setup_hba_conf
      export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
      temp_server_start "$@"
      setup_db
      shopt -s nullglob
      process_init_files /docker-entrypoint-initdb.d/*
      shopt -u nullglob
      temp_server_stop
      unset PGPASSWORD
      log "PostgreSQL init process complete; ready for start up"
    else
      log "PostgreSQL database directory appears to contain a database; skipping initialization"
    fi
  fi

  exec "$@"
}

main "$@"
