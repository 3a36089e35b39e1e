#!/usr/bin/env bash
# Builds tenantdb/postgres:15-local from Debian packages (no image registry needed) unless the
# engine already has it. Needs root, debootstrap and a running engine (infra/docker/engine.sh start).
#   infra/docker/build-postgres-image.sh            # build or reuse
#   TENANTDB_IMAGE_REBUILD=1 infra/docker/build-postgres-image.sh   # force a rebuild
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGE=tenantdb/postgres:15-local
SUITE=bookworm
BUILD_ROOT=/var/lib/tenantdb-docker-build
export DOCKER_HOST=${DOCKER_HOST:-unix:///run/tenantdb-docker/docker.sock}

die() { echo "build-postgres-image.sh: ERROR: $*" >&2; exit 1; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

# First "deb" URI apt uses for suite $SUITE (one-line .list files, then deb822 .sources files).
apt_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v s="$SUITE" '$1 == "deb" { i = 2
        if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
        if ($(i + 1) == s) { print $i; exit } }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v s="$SUITE" 'BEGIN { RS = ""; FS = "\n" } {
        types = uris = suites = ""; enabled = "yes"
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^[ \t]*#/) continue
          k = tolower($i); sub(/:.*/, "", k); v = $i; sub(/^[^:]*:[ \t]*/, "", v)
          if (k == "types") types = " " v " "; else if (k == "uris") uris = v
          else if (k == "suites") suites = " " v " "; else if (k == "enabled") enabled = tolower(v)
        }
        if (enabled != "no" && types ~ / deb / && suites ~ (" " s " ")) { split(uris, u, /[ \t]+/); print u[1]; exit }
      }' "$f"
  done
}

docker info >/dev/null 2>&1 || die "no Docker engine answers on $DOCKER_HOST (run infra/docker/engine.sh start)"
if [ -z "${TENANTDB_IMAGE_REBUILD:-}" ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "build-postgres-image.sh: reusing existing image $IMAGE"; exit 0
fi
command -v debootstrap >/dev/null || die "debootstrap missing (engine.sh start installs it; or apt-get install -y debootstrap)"
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap)"

MIRROR=$(apt_mirror | awk "NR == 1")
[ -n "$MIRROR" ] || die "no 'deb' source for suite $SUITE found in /etc/apt/sources.list{,.d/*}"
echo "build-postgres-image.sh: mirror from apt config: $MIRROR"

mkdir -p "$BUILD_ROOT"
DIR=$(mktemp -d "$BUILD_ROOT/rootfs.XXXXXX")
trap 'rm -rf "$DIR"' EXIT

t=$(now)
debootstrap --variant=minbase --include=postgresql-15 "$SUITE" "$DIR" "$MIRROR" >"$BUILD_ROOT/debootstrap.log" 2>&1 \
  || { tail -n 40 "$BUILD_ROOT/debootstrap.log" >&2; die "debootstrap failed (log: $BUILD_ROOT/debootstrap.log)"; }
echo "build-postgres-image.sh: debootstrap took $(secs "$t")s"
rm -f "$BUILD_ROOT/debootstrap.log"

[ -x "$DIR/usr/lib/postgresql/15/bin/postgres" ] || die "postgresql-15 not installed in the rootfs"
# Drop the package's default cluster (if any), apt caches, docs, man pages and translations.
rm -rf "$DIR/var/lib/postgresql/15" "$DIR/etc/postgresql/15/main" "$DIR/var/cache/apt/archives/"*.deb \
  "$DIR/var/lib/apt/lists/"* "$DIR/run/postgresql/"* "$DIR/usr/share/doc/"* "$DIR/usr/share/man/"* \
  "$DIR/usr/share/locale/"*/
install -m 0755 "$HERE/postgres-entrypoint.sh" "$DIR/usr/local/bin/docker-entrypoint.sh"
mkdir -p "$DIR/docker-entrypoint-initdb.d" "$DIR/var/lib/postgresql/data"
chroot "$DIR" chown postgres:postgres /var/lib/postgresql/data
chmod 700 "$DIR/var/lib/postgresql/data"

old_id=$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
t=$(now)
tar -C "$DIR" -c . | docker import \
  -c 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV PGDATA=/var/lib/postgresql/data' \
  -c 'ENV LANG=C.UTF-8' \
  -c 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
  -c 'CMD ["postgres"]' \
  - "$IMAGE" >/dev/null || die "docker import failed"
echo "build-postgres-image.sh: import took $(secs "$t")s"
[ -n "$old_id" ] && { docker image rm "$old_id" >/dev/null 2>&1 || echo "note: old image $old_id still in use"; }
echo "build-postgres-image.sh: built $IMAGE ($(docker image inspect "$IMAGE" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}'))"
