#!/usr/bin/env bash
# What a test run left behind (infra/test.sh): PostgreSQL servers (`postgres -D`), Azurite and LocalHost processes, and
# Docker services, containers and volumes of this product.
#   infra/leftovers.sh snapshot FILE   before the run: records what runs and exists now
#   infra/leftovers.sh check FILE      after it: lists on stderr what is new since the snapshot and the run's own, removes
#                                      it, prints "proof cleanup: leftover_processes=N leftover_docker=N"; exit 1 if N > 0
# The run's own: a process new since the snapshot that carries TENANTDB_SUITE_RUN=<the value at the snapshot> in its
# environment (everything the suite starts inherits it; a process started by another session or before the run does not);
# a Docker object new since the snapshot that carries tenantdb.owner=$TENANTDB_DOCKER_OWNER, or a tenantdb-… one with no
# tenantdb.owner label at all (an object without labels is a defect whoever made it). Without TENANTDB_SUITE_RUN
# every new process counts. What existed before (a shared Azurite the run reused, the Docker engine) is never touched.
set -uo pipefail
pattern='postgres -D|azurite|TenantDb.LocalHost'
owner_label=tenantdb.owner

docker_ok() { command -v docker >/dev/null && timeout 10 docker info >/dev/null 2>&1; }

# "pid" lines: the processes matching the pattern, without this script and its callers.
processes() {
  local self=" $$ $PPID $(ps -o ppid= -p "$PPID" 2>/dev/null | tr -d ' ') "
  pgrep -f "$pattern" | while read -r pid; do
    [[ "$self" == *" $pid "* ]] || echo "pid $pid"
  done
}

# "docker KIND ID NAME OWNER" lines (OWNER "-" when the object has no owner label).
docker_objects() {
  docker_ok || return 0
  local ids
  ids=$(timeout 30 docker service ls -q 2>/dev/null)
  [ -n "$ids" ] && timeout 30 docker service inspect --format "{{.ID}} {{.Spec.Name}} {{index .Spec.Labels \"$owner_label\"}}" $ids 2>/dev/null \
    | awk '{ print "docker service", $1, $2, ($3 == "" ? "-" : $3) }'
  timeout 30 docker ps -aq --no-trunc 2>/dev/null | while read -r id; do
    timeout 30 docker inspect --format "{{.Id}} {{.Name}} {{index .Config.Labels \"$owner_label\"}}" "$id" 2>/dev/null
  done | awk '{ sub(/^\//, "", $2); print "docker container", $1, $2, ($3 == "" ? "-" : $3) }'
  timeout 30 docker volume ls --format "{{.Name}} {{.Label \"$owner_label\"}}" 2>/dev/null \
    | awk '{ print "docker volume", $1, $1, ($2 == "" ? "-" : $2) }'
}

ours_process() {
  local pid=$1 marker=$2
  [ -z "$marker" ] && return 0
  tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "TENANTDB_SUITE_RUN=$marker"
}

ours_docker() {
  local name=$1 owner=$2
  if [ "$owner" = - ]; then [[ "$name" == tenantdb-* ]]; else [ -n "${TENANTDB_DOCKER_OWNER:-}" ] && [ "$owner" = "$TENANTDB_DOCKER_OWNER" ]; fi
}

alive() { kill -0 "$1" 2>/dev/null; }

# A postmaster: pg_ctl stop -m immediate as its owner, then SIGKILL if it is still there.
stop_postgres() {
  local pid=$1 args=() user bin dir="" i
  mapfile -d '' args <"/proc/$pid/cmdline" 2>/dev/null
  for ((i = 0; i < ${#args[@]} - 1; i++)); do [ "${args[i]}" = -D ] && dir=${args[i + 1]}; done
  user=$(ps -o user= -p "$pid" | tr -d ' ')
  bin=$(dirname "$(readlink "/proc/$pid/exe" 2>/dev/null || echo "${args[0]:-postgres}")")
  if [ -n "$dir" ] && [ -x "$bin/pg_ctl" ]; then
    if [ "$(id -u)" = 0 ] && [ -n "$user" ] && [ "$user" != root ]; then
      (cd / && timeout 30 runuser -u "$user" -- "$bin/pg_ctl" -D "$dir" -m immediate -w -t 20 stop >/dev/null 2>&1)
    else
      (cd / && timeout 30 "$bin/pg_ctl" -D "$dir" -m immediate -w -t 20 stop >/dev/null 2>&1)
    fi
  fi
  alive "$pid" && kill -KILL "$pid" 2>/dev/null
}

kill_process() {
  local pid=$1
  if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'postgres -D'; then stop_postgres "$pid"; else kill -KILL "$pid" 2>/dev/null; fi
  for _ in $(seq 1 50); do alive "$pid" || return 0; sleep 0.1; done
  echo "leftovers: pid $pid did not go" >&2
}

remove_docker() {
  local kind=$1 id=$2
  local inspect=inspect
  [ "$kind" = container ] || inspect="$kind inspect"
  case "$kind" in
    service) timeout 60 docker service rm "$id" >/dev/null 2>&1 ;;
    container) timeout 60 docker rm -f -v "$id" >/dev/null 2>&1 ;;
    volume)
      # The engine may still hold it while a removed service's container goes.
      for _ in $(seq 1 60); do timeout 30 docker volume rm -f "$id" >/dev/null 2>&1 && break; sleep 1; done ;;
  esac
  # Gone is gone, also when removing its service took it first.
  if timeout 30 docker $inspect "$id" >/dev/null 2>&1; then echo "leftovers: could not remove docker $kind $id" >&2; fi
}

case "${1:-}" in
  snapshot)
    file=${2:?snapshot file}
    { echo "run ${TENANTDB_SUITE_RUN:-}"; processes; docker_objects; } >"$file"
    ;;
  check)
    file=${2:?snapshot file}
    [ -f "$file" ] || { echo "leftovers: no snapshot $file" >&2; exit 2; }
    marker=$(awk '$1 == "run" { print $2; exit }' "$file")
    left_processes=(); left_docker=()
    while read -r _ pid; do
      grep -qxF "pid $pid" "$file" && continue
      alive "$pid" && ours_process "$pid" "$marker" || continue
      left_processes+=("$pid")
      echo "leftovers: process $pid left running: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-200)" >&2
    done < <(processes)
    while read -r _ kind id name owner; do
      grep -q "^docker $kind $id " "$file" && continue
      ours_docker "$name" "$owner" || continue
      left_docker+=("$kind $id")
      echo "leftovers: docker $kind $name left behind (owner label: $owner)" >&2
    done < <(docker_objects)

    # LocalHost first (it would start pools again), then the servers, then the rest; services before their containers
    # and volumes.
    for pid in "${left_processes[@]}"; do grep -q TenantDb.LocalHost "/proc/$pid/cmdline" 2>/dev/null && kill_process "$pid"; done
    for pid in "${left_processes[@]}"; do alive "$pid" && kill_process "$pid"; done
    for kind in service container volume; do
      for object in "${left_docker[@]}"; do [ "${object%% *}" = "$kind" ] && remove_docker $object; done
    done

    echo "proof cleanup: leftover_processes=${#left_processes[@]} leftover_docker=${#left_docker[@]}"
    [ $((${#left_processes[@]} + ${#left_docker[@]})) = 0 ]
    ;;
  *) echo "usage: $0 snapshot FILE | check FILE" >&2; exit 2 ;;
esac
