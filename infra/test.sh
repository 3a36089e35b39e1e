#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing, starts what the tests need
# (Docker engine with a swarm, the local PostgreSQL image, Azurite), runs every test project, and
# ends with one totals line: "N passed, N failed, N skipped".
# Usage: infra/test.sh [FILTER]   FILTER goes to dotnet test --filter, e.g. Category=Database (README: test tiers).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
state="$root/.local/test"
mkdir -p "$state"
log="$state/dotnet-test.log"
filter=()
[ $# -gt 0 ] && filter=(--filter "$1")

azurite_started=""
# A failure after Azurite started stops it again (a no-op for a shared Azurite this script reused).
fail() {
  echo "test.sh: $*" >&2
  [ -n "$azurite_started" ] && infra/azurite.sh stop "$state/azurite" >/dev/null
  echo "0 passed, 1 failed, 0 skipped"; exit 1
}

infra/prerequisites.sh || fail "installing prerequisites failed"
infra/docker/engine.sh start || fail "the Docker engine could not start (see above); the Docker tests cannot run"
eval "$(infra/docker/engine.sh env)"
infra/docker/build-postgres-image.sh || fail "building the local PostgreSQL image failed"
# Everything the suite starts inherits TENANTDB_SUITE_RUN, and its Docker objects carry tenantdb.owner=$TENANTDB_DOCKER_OWNER:
# after the tests, infra/leftovers.sh finds what the run left behind (and only that) against this snapshot.
export TENANTDB_SUITE_RUN="$(date +%s)-$$"
export TENANTDB_DOCKER_OWNER="tenantdb-tests-$TENANTDB_SUITE_RUN"
infra/leftovers.sh snapshot "$state/before-run.txt"
# Interrupted (Ctrl-C, a CI timeout): the same cleanup, then a failed total.
on_signal() {
  trap - INT TERM
  echo "test.sh: interrupted; stopping what the run started" >&2
  infra/azurite.sh stop "$state/azurite" >/dev/null
  infra/leftovers.sh check "$state/before-run.txt" >&2
  echo "0 passed, 1 failed, 0 skipped"; exit 130
}
trap on_signal INT TERM
azurite_started=1
infra/azurite.sh start "$state/azurite" || fail "Azurite could not start"
export TENANTDB_DOCKER_IMAGE=tenantdb/postgres:15-local
export TENANTDB_REQUIRE_DOCKER=1

dotnet build Functions.sln -c Release -nologo -v q 2>&1 | tail -3
[ "${PIPESTATUS[0]}" = 0 ] || fail "the build failed"

# The proof suites write one summary line each here; they are printed before the totals.
export TENANTDB_PROOF_REPORT="$state/proof.txt"
: > "$TENANTDB_PROOF_REPORT"

results="$state/results"
rm -rf "$results"
dotnet test Functions.sln -c Release --no-build "${filter[@]}" --results-directory "$results" \
  --logger "console;verbosity=normal" --logger "trx" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

infra/azurite.sh stop "$state/azurite" || true

# Whatever the run left running or existing (a server, Azurite, LocalHost, a Docker object) is listed, removed, and counted
# as one failed test, so a leak fails the run but never outlives it.
leftovers=0
infra/leftovers.sh check "$state/before-run.txt" >>"$TENANTDB_PROOF_REPORT" || leftovers=1

# One TRX file per test assembly; sum their counters.
passed=0; failed=0; skipped=0; assemblies=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx")
  get() { echo "$counters" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*'; }
  passed=$((passed + $(get passed)))
  failed=$((failed + $(get failed) + $(get error) + $(get timeout) + $(get aborted)))
  skipped=$((skipped + $(get notExecuted)))
  assemblies=$((assemblies + 1))
done
failed=$((failed + leftovers))
if [ "$assemblies" = 0 ]; then
  echo "test.sh: no test assembly reported results" >&2
  failed=$((failed + 1)); status=1
fi
# Lines of one group ("proof faults: injected=1 survived=1 lost=0", one per test) merge into one line per group:
# counts add up, N/M fractions add up both sides, true/false must all be true, anything else keeps its last value.
if [ -s "$TENANTDB_PROOF_REPORT" ]; then
  merged=$(infra/proof-merge.awk "$TENANTDB_PROOF_REPORT")
  # A figure that says something was lost or leaked fails the run even when no test asserted it.
  broken=$(echo "$merged" | infra/proof-check.awk)
  if [ -n "$broken" ]; then
    echo "test.sh: proof figures that must not be:" >&2
    echo "$broken" >&2
    failed=$((failed + $(echo "$broken" | wc -l)))
  fi
  echo "$merged"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$status" = 0 ] && [ "$failed" = 0 ] && [ "$passed" -gt 0 ]
