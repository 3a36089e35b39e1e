#!/bin/bash
# Entrypoint of tenantdb/postgres:15-local (copied to /usr/local/bin/docker-entrypoint.sh by
# build-postgres-image.sh). Follows the official `postgres` image contract:
#   POSTGRES_PASSWORD (required unless POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_USER (postgres),
#   POSTGRES_DB (= user), PGDATA, POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD (scram-sha-256),
#   /docker-entrypoint-initdb.d/*.sh|*.sql; extra args go to postgres: `postgres -c port=5433 ...`.
# Difference: host (TCP) connections, loopback included, always use the auth method - with
# --network host, 127.0.0.1 is the host's loopback, so it must not be `trust`.
set -Eeuo pipefail

err() { echo "docker-entrypoint: ERROR: $*" >&2; exit 1; }

# Run as the postgres OS user (the server refuses root). setpriv (util-linux) execs in place.
AS_PG=()
if [ "$(id -u)" = 0 ]; then
  command -v setpriv >/dev/null || err "setpriv not found"
  AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups)
fi
as_postgres() { "${AS_PG[@]}" "$@"; }

if [ "${1:-}" != "" ] && [ "${1:0:1}" = "-" ]; then set -- postgres "$@"; fi

if [ "${1:-}" = postgres ]; then
  export PGDATA=${PGDATA:-/var/lib/postgresql/data}
  POSTGRES_USER=${POSTGRES_USER:-postgres}
  POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
  AUTH=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}

  if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    # A bind mount or fresh named volume arrives owned by someone else: hand it to postgres.
    find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
    chmod 700 "$PGDATA"
    chown postgres:postgres /var/run/postgresql
    chmod 3777 /var/run/postgresql
  fi

  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$AUTH" != trust ]; then
      err "database is uninitialized and superuser password is not specified.
  Set POSTGRES_PASSWORD to a non-empty value (or POSTGRES_HOST_AUTH_METHOD=trust, not recommended)."
    fi
    pwfile=
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
      pwfile=$(mktemp /tmp/pgpw.XXXXXX)
      printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
      [ "$(id -u)" = 0 ] && chown postgres "$pwfile"
    fi
    # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a word list, as in the official image
    as_postgres initdb --username="$POSTGRES_USER" ${pwfile:+--pwfile="$pwfile"} \
      --auth-local=trust --auth-host="$AUTH" ${POSTGRES_INITDB_ARGS:-} >/dev/null \
      || err "initdb failed"
    [ -n "$pwfile" ] && rm -f "$pwfile"
    printf '\nhost all all all %s\n' "$AUTH" >>"$PGDATA/pg_hba.conf"
    printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"

    shopt -s nullglob
    scripts=(/docker-entrypoint-initdb.d/*.sh /docker-entrypoint-initdb.d/*.sql)
    if [ "$POSTGRES_DB" != postgres ] || [ ${#scripts[@]} -gt 0 ]; then
      # Temporary server on the container-private unix socket only (no TCP).
      as_postgres pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w -t 60 start >/dev/null \
        || err "temporary server did not start"
      psql_() { as_postgres psql -v ON_ERROR_STOP=1 --no-psqlrc -q -U "$POSTGRES_USER" "$@"; }
      if [ "$POSTGRES_DB" != postgres ]; then
        psql_ -d postgres -v db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";' || err "CREATE DATABASE failed"
      fi
      for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
          *.sh) echo "docker-entrypoint: running $f"; . "$f" ;;
          *.sql) echo "docker-entrypoint: running $f"; psql_ -d "$POSTGRES_DB" -f "$f" ;;
        esac
      done
      as_postgres pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null || err "temporary server did not stop"
    fi
    echo "docker-entrypoint: initialised $PGDATA (user $POSTGRES_USER, db $POSTGRES_DB)"
  fi

  # `docker import` cannot set STOPSIGNAL (the official image uses SIGINT = fast shutdown; SIGTERM
  # would wait for every client to disconnect), so stay PID 1 and turn TERM into INT.
  "${AS_PG[@]}" "$@" &
  pid=$!
  trap 'kill -INT "$pid" 2>/dev/null || true' TERM INT
  trap 'kill -QUIT "$pid" 2>/dev/null || true' QUIT
  while :; do
    wait "$pid" && rc=0 || rc=$?
    kill -0 "$pid" 2>/dev/null || exit "$rc"
  done
fi

exec "$@"
