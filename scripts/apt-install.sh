#!/usr/bin/env bash
# Installs Debian packages that are missing, for the other scripts: `scripts/apt-install.sh PKG…`.
# Everything apt prints goes to standard error (callers' standard output may be evaluated).
# Debian's postinst scripts try to start services through init, which these machines lack:
# a policy-rc.d denies that for the duration of the install and is removed however it ends.
set -euo pipefail
exec 1>&2
need=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
done
[ "${#need[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "apt-install.sh: ${need[*]} missing; install them (apt-get install ${need[*]}) or run as root"
  exit 1
fi
echo "apt-install.sh: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  trap 'rm -f "$policy"' EXIT
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy"
fi
apt-get update -qq || true
apt-get install -y -qq --no-install-recommends "${need[@]}"
