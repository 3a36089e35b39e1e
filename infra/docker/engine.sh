#!/usr/bin/env bash
# Private Docker engine (single-node Swarm) for local tests and benchmarks.
#   infra/docker/engine.sh start   # install docker.io if needed, start dockerd, init swarm, label node
#   infra/docker/engine.sh stop    # stop that dockerd
#   eval "$(infra/docker/engine.sh env)"   # point the docker client / Docker.DotNet at it
# Idempotent: start reuses a running engine. Needs root.
set -euo pipefail

RUN_DIR=/run/tenantdb-docker
SOCK="unix://$RUN_DIR/docker.sock"
PIDFILE="$RUN_DIR/dockerd.pid"
DATA_ROOT=/var/lib/tenantdb-docker
LOG=/var/log/tenantdb-dockerd.log
START_TIMEOUT=${TENANTDB_DOCKER_START_TIMEOUT:-60}

die() { echo "engine.sh: ERROR: $*" >&2; exit 1; }
dk() { docker -H "$SOCK" "$@"; }
answering() { timeout 10 docker -H "$SOCK" info >/dev/null 2>&1; }

install_packages() {
  local need=()
  command -v dockerd >/dev/null || need+=(docker.io)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  [ ${#need[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "need root to install ${need[*]}"
  echo "engine.sh: installing ${need[*]} ..."
  # Never let package scripts start the distro's own dockerd/containerd services.
  local policy_added=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_added=1
  fi
  local rc=0 apt_log=/var/log/tenantdb-docker-apt.log
  { DEBIAN_FRONTEND=noninteractive apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"; } \
    >"$apt_log" 2>&1 || rc=$?
  [ $policy_added -eq 1 ] && rm -f /usr/sbin/policy-rc.d
  [ $rc -eq 0 ] || { tail -n 40 "$apt_log" >&2; die "apt-get install ${need[*]} failed (rc=$rc, log: $apt_log)"; }
  command -v dockerd >/dev/null || die "dockerd still missing after installing docker.io"
}

start_daemon() {
  mkdir -p "$RUN_DIR" "$DATA_ROOT"
  if answering; then echo "engine.sh: reusing dockerd on $SOCK"; return 0; fi
  # Stale pid file / socket from a crashed or killed daemon.
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "engine.sh: dockerd pid $(cat "$PIDFILE") exists but does not answer yet; waiting"
  else
    rm -f "$PIDFILE" "$RUN_DIR/docker.sock"
    echo "engine.sh: starting dockerd on $SOCK (log: $LOG)"
    # setsid + nohup: fully detached, survives this script and its session.
    setsid nohup dockerd --host "$SOCK" --data-root "$DATA_ROOT" --exec-root "$RUN_DIR/exec" \
      --pidfile "$PIDFILE" --bridge=none --iptables=false --ip-masq=false \
      >>"$LOG" 2>&1 </dev/null &
  fi
  local deadline=$((SECONDS + START_TIMEOUT))
  until answering; do
    if [ $SECONDS -ge $deadline ]; then
      echo "---- last 40 lines of $LOG ----" >&2; tail -n 40 "$LOG" >&2 || true
      die "dockerd did not answer on $SOCK within ${START_TIMEOUT}s"
    fi
    sleep 0.5
  done
}

ensure_swarm() {
  local state
  state=$(dk info --format '{{.Swarm.LocalNodeState}}')
  if [ "$state" != active ]; then
    echo "engine.sh: swarm state '$state'; initialising"
    dk swarm init --advertise-addr 127.0.0.1 >/dev/null || die "docker swarm init failed"
  fi
  local self
  self=$(dk info --format '{{.Swarm.NodeID}}')
  [ -n "$self" ] || die "no swarm node id"
  if [ "$(dk node inspect "$self" --format '{{index .Spec.Labels "role"}}')" != database ]; then
    dk node update --label-add role=database "$self" >/dev/null || die "labelling node failed"
  fi
}

stop_daemon() {
  if [ ! -f "$PIDFILE" ]; then echo "engine.sh: no pid file; dockerd not running"; return 0; fi
  local pid; pid=$(cat "$PIDFILE")
  if ! kill -0 "$pid" 2>/dev/null; then rm -f "$PIDFILE"; echo "engine.sh: dockerd not running"; return 0; fi
  kill -TERM "$pid"
  local i
  for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "engine.sh: dockerd $pid did not exit in 30s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
  echo "engine.sh: dockerd stopped"
}

case "${1:-}" in
  start)
    t0=$(date +%s.%N)
    install_packages
    start_daemon
    ensure_swarm
    echo "engine.sh: engine ready on $SOCK ($(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s); run: eval \"\$($0 env)\""
    ;;
  stop) stop_daemon ;;
  env) echo "export DOCKER_HOST=$SOCK" ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
