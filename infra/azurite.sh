#!/usr/bin/env bash
# Azurite (Azure Storage emulator) from npm, installed into the project's .local folder.
# Usage: infra/azurite.sh install | start DATA_DIR | stop DATA_DIR
# Ports: TENANTDB_AZURITE_PORT (blob; queue and table are the next two), default 10000.
# stop returns only once the process is gone and its ports are free (bounded; SIGKILL after TENANTDB_STOP_WAIT seconds).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prefix="$root/.local/azurite"
bin="$prefix/node_modules/.bin/azurite"
version=3.37.0
blob=${TENANTDB_AZURITE_PORT:-10000}; queue=$((blob + 1)); table=$((blob + 2))
wait_s=${TENANTDB_STOP_WAIT:-20}
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
alive() { kill -0 "$1" 2>/dev/null; }

case "${1:-}" in
  install)
    if [ ! -x "$bin" ]; then
      echo "azurite: npm install azurite@$version into $prefix"
      mkdir -p "$prefix"
      npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "azurite@$version" >/dev/null
    fi
    ;;
  start)
    data=${2:?data folder}
    mkdir -p "$data"
    if [ -f "$data/azurite.pid" ] && alive "$(cat "$data/azurite.pid")"; then
      echo "azurite: already running on this data folder (pid $(cat "$data/azurite.pid")); reusing it"
      exit 0
    fi
    if listening "$blob"; then
      echo "azurite: already listening on 127.0.0.1:$blob (not ours: reused, never stopped by us)"
      exit 0
    fi
    "$0" install
    setsid nohup "$bin" --silent --location "$data" --blobHost 127.0.0.1 --queueHost 127.0.0.1 --tableHost 127.0.0.1 \
      --blobPort "$blob" --queuePort "$queue" --tablePort "$table" \
      --skipApiVersionCheck --loose >"$data/azurite.log" 2>&1 < /dev/null &
    echo $! >"$data/azurite.pid"
    for _ in $(seq 1 60); do
      if listening "$blob" && listening "$queue" && listening "$table"; then
        echo "azurite: listening on 127.0.0.1:$blob-$table (data in $data)"
        exit 0
      fi
      sleep 0.5
    done
    echo "azurite: did not start; log:" >&2
    tail -20 "$data/azurite.log" >&2
    exit 1
    ;;
  stop)
    data=${2:?data folder}
    [ -f "$data/azurite.pid" ] || exit 0
    pid=$(cat "$data/azurite.pid")
    # setsid made it a process group leader: signal the group, so no child outlives it.
    # Azurite shuts down on SIGINT (it ignores SIGTERM for a long while).
    kill -INT -- "-$pid" 2>/dev/null || kill -INT "$pid" 2>/dev/null || true
    deadline=$((SECONDS + wait_s))
    while alive "$pid" && [ $SECONDS -lt "$deadline" ]; do sleep 0.2; done
    if alive "$pid"; then
      echo "azurite: pid $pid still running after ${wait_s}s; killing it" >&2
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
    fi
    if alive "$pid"; then echo "azurite: pid $pid did not stop" >&2; exit 1; fi
    for port in "$blob" "$queue" "$table"; do
      for _ in $(seq 1 50); do listening "$port" || break; sleep 0.1; done
      if listening "$port"; then echo "azurite: port $port still in use after stop" >&2; exit 1; fi
    done
    rm -f "$data/azurite.pid"
    echo "azurite: stopped"
    ;;
  *) echo "usage: $0 install | start DATA_DIR | stop DATA_DIR" >&2; exit 2 ;;
esac
