#!/usr/bin/env bash
# Starts the allocator on its embedded default: a local PostgreSQL catalog, Azurite, LocalHost serving the
# Functions app on http://127.0.0.1:7071, and pool servers by the `process` driver. Installs what is missing.
# Data lives in .local/run (TENANTDB_HOME), so pools and tenants survive a restart. Ctrl-C stops all of it, and returns
# only once every process it started is gone. One run per TENANTDB_HOME: a second start refuses while one runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
home=${TENANTDB_HOME:-$root/.local/run}
port=${TENANTDB_PORT:-7071}
stop_wait=${TENANTDB_STOP_WAIT:-20}
cd "$root"

mkdir -p "$home"
exec 9>"$home/run.lock"
if ! flock -n 9; then
  echo "run.sh: already running for $home (pid $(cat "$home/run.pid" 2>/dev/null || echo '?')); stop it first (Ctrl-C), or set TENANTDB_HOME" >&2
  exit 1
fi
echo $$ >"$home/run.pid"
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "run.sh: port $port is already in use; stop what listens there or set TENANTDB_PORT" >&2
  exit 1
fi

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

infra/prerequisites.sh postgres azurite
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
mkdir -p "$home/pools"
if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$home/pools"
  runuser -u postgres -- test -x "$home" || {
    echo "run.sh: the postgres OS user cannot reach $home; set TENANTDB_HOME to a folder it can traverse" >&2; exit 1; }
fi

# Keys and passwords: made once from the OS CSPRNG, kept in $home/secrets.env (mode 600), reused on every start.
secrets="$home/secrets.env"
if [ ! -f "$secrets" ]; then
  umask 077
  rand() { head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c "$1"; }
  cat >"$secrets" <<SECRETS
TENANTDB_MASTER_KEY=$(rand 40)
TENANTDB_FUNCTION_KEY=$(rand 40)
TENANTDB_SYSTEM_KEY=$(rand 40)
TENANTDB_SECRETS_KEY=$(head -c 32 /dev/urandom | base64)
TENANTDB_CATALOG_PASSWORD=$(rand 40)
SECRETS
  umask 022
fi
# The Durable system key (status URLs carry it) came later: add it to a secrets file made before it.
if ! grep -q '^TENANTDB_SYSTEM_KEY=' "$secrets"; then
  printf 'TENANTDB_SYSTEM_KEY=%s\n' "$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 40)" >>"$secrets"
fi
# shellcheck disable=SC1090
. "$secrets"

# The platform catalog server.
catalog="$home/catalog"
if [ ! -f "$catalog/PG_VERSION" ]; then
  mkdir -p "$catalog"; [ "$(id -u)" = 0 ] && chown postgres:postgres "$catalog"
  pwfile=$(mktemp); printf '%s' "$TENANTDB_CATALOG_PASSWORD" >"$pwfile"; [ "$(id -u)" = 0 ] && chown postgres "$pwfile"
  as_pg "$bindir/initdb" -D "$catalog" -U postgres --pwfile="$pwfile" --auth-host=scram-sha-256 --auth-local=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 --no-instructions >/dev/null
  rm -f "$pwfile"
  catalog_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  printf "\nport = %s\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n" "$catalog_port" >>"$catalog/postgresql.conf"
fi
catalog_port=$(grep -E '^port = ' "$catalog/postgresql.conf" | tail -1 | awk '{print $3}')

start_pg() { as_pg "$bindir/pg_ctl" -D "$1" status >/dev/null 2>&1 || as_pg "$bindir/pg_ctl" -D "$1" -l "$1/server.log" -w -t 60 start >/dev/null 9>&-; }
stop_pg() { as_pg "$bindir/pg_ctl" -D "$1" status >/dev/null 2>&1 && as_pg "$bindir/pg_ctl" -D "$1" -m fast -w stop >/dev/null || true; }

host_pid=""
cleanup() {
  trap - INT TERM EXIT
  echo; echo "run.sh: stopping"
  if [ -n "$host_pid" ] && kill -0 "$host_pid" 2>/dev/null; then
    kill "$host_pid" 2>/dev/null || true
    deadline=$((SECONDS + stop_wait))
    while kill -0 "$host_pid" 2>/dev/null && [ $SECONDS -lt "$deadline" ]; do sleep 0.2; done
    kill -0 "$host_pid" 2>/dev/null && { echo "run.sh: LocalHost did not stop in ${stop_wait}s; killing it" >&2; kill -KILL "$host_pid" 2>/dev/null || true; }
    wait "$host_pid" 2>/dev/null || true
  fi
  for pool in "$home"/pools/*/; do [ -f "$pool/PG_VERSION" ] && stop_pg "$pool"; done
  stop_pg "$catalog"
  infra/azurite.sh stop "$home/azurite" || true
  rm -f "$home/run.pid"
}
trap cleanup INT TERM EXIT

start_pg "$catalog"
for pool in "$home"/pools/*/; do [ -f "$pool/PG_VERSION" ] && start_pg "$pool"; done   # pools made by earlier runs
infra/azurite.sh start "$home/azurite" 9>&-   # the lock is this script's, not its children's

echo "run.sh: building LocalHost"
dotnet build LocalHost/LocalHost.csproj -c Release -nologo -v q >"$home/build.log" 2>&1 || { tail -30 "$home/build.log"; exit 1; }

export ConnectionStrings__Catalog="Host=127.0.0.1;Port=$catalog_port;Username=postgres;Password=$TENANTDB_CATALOG_PASSWORD;Database=tenantdb_catalog"
export Secrets__Key="$TENANTDB_SECRETS_KEY"
export LocalHost__MasterKey="$TENANTDB_MASTER_KEY" LocalHost__FunctionKeys="$TENANTDB_FUNCTION_KEY" LocalHost__Port="$port"
export LocalHost__SystemKey="$TENANTDB_SYSTEM_KEY"
export AzureWebJobsStorage="UseDevelopmentStorage=true"
export Sweep__Schedule="${Sweep__Schedule:-0 */5 * * * *}" Sweep__CleanupSchedule="${Sweep__CleanupSchedule:-0 0 3 * * *}"
export Provisioning__Driver="${TENANTDB_DRIVER:-process}" Provisioning__Process__DataRoot="$home/pools"
dotnet LocalHost/bin/Release/net10.0/TenantDb.LocalHost.dll 9>&- &
host_pid=$!

base="http://127.0.0.1:$port"
for _ in $(seq 1 120); do
  curl -fsS -o /dev/null -H "x-functions-key: $TENANTDB_MASTER_KEY" "$base/api/database/admin/stats" 2>/dev/null && break
  kill -0 "$host_pid" 2>/dev/null || { echo "run.sh: LocalHost exited" >&2; exit 1; }
  sleep 1
done
cat <<BANNER

  Tenant database allocator: $base/api
  function key: $TENANTDB_FUNCTION_KEY
  admin key:    $TENANTDB_MASTER_KEY     (keys and data in $home)
  dashboard:    $base/api/database/admin/dashboard     (in a browser; it asks for the admin key)

  curl -s -H "x-functions-key: $TENANTDB_FUNCTION_KEY" -H 'content-type: application/json' \\
    -d '{"instance_id":"'\$(cat /proc/sys/kernel/random/uuid)'","customer_id":"'\$(cat /proc/sys/kernel/random/uuid)'","plan_tier":"standard"}' \\
    $base/api/database/allocate

  Ctrl-C stops everything; the next start reuses the data.
BANNER
wait "$host_pid"
