#!/usr/bin/env bash
# Azurite (Azure Storage emulator) from npm, installed into the project's .local folder.
# Usage: infra/azurite.sh install | start DATA_DIR | stop DATA_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prefix="$root/.local/azurite"
bin="$prefix/node_modules/.bin/azurite"
version=3.37.0

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
    if (exec 3<>/dev/tcp/127.0.0.1/10000) 2>/dev/null; then
      echo "azurite: already listening on 127.0.0.1:10000"
      exit 0
    fi
    "$0" install
    setsid nohup "$bin" --silent --location "$data" --blobHost 127.0.0.1 --queueHost 127.0.0.1 --tableHost 127.0.0.1 \
      --skipApiVersionCheck --loose >"$data/azurite.log" 2>&1 < /dev/null &
    echo $! >"$data/azurite.pid"
    for _ in $(seq 1 60); do
      if (exec 3<>/dev/tcp/127.0.0.1/10002) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/10001) 2>/dev/null; then
        echo "azurite: listening on 127.0.0.1:10000-10002 (data in $data)"
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
    if [ -f "$data/azurite.pid" ]; then
      kill "$(cat "$data/azurite.pid")" 2>/dev/null || true
      rm -f "$data/azurite.pid"
    fi
    ;;
  *) echo "usage: $0 install | start DATA_DIR | stop DATA_DIR" >&2; exit 2 ;;
esac
