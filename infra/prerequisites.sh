#!/usr/bin/env bash
# Installs what the service and its tests need on a fresh Debian machine of this kind, and nothing that is already there.
# Usage: infra/prerequisites.sh [postgres] [azurite] [chromium]   (no argument: all; the Docker engine: infra/docker/engine.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
want=${*:-postgres azurite chromium}
apt_updated=0

apt_install() {
  if [ "$apt_updated" = 0 ]; then
    echo "prerequisites: apt-get update"
    apt-get update -qq
    apt_updated=1
  fi
  echo "prerequisites: apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

command -v dotnet >/dev/null || { echo "prerequisites: the .NET 10 SDK is required (dotnet not on PATH)" >&2; exit 1; }

for item in $want; do
  case "$item" in
    postgres)
      ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
      id postgres >/dev/null 2>&1 || { echo "prerequisites: no 'postgres' OS user after installing postgresql" >&2; exit 1; }
      ;;
    azurite)
      command -v npm >/dev/null || apt_install nodejs npm
      "$here/azurite.sh" install
      ;;
    chromium)
      # Debian's browser for the dashboard's end-to-end test (Playwright drives it; it downloads no browser of its own).
      command -v chromium >/dev/null || apt_install chromium
      ;;
    *) echo "prerequisites: unknown item '$item'" >&2; exit 2 ;;
  esac
done
