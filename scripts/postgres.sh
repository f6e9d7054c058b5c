#!/usr/bin/env bash
# Installs (Debian's postgresql) and starts, idempotently, a PostgreSQL cluster for the route
# service's tests and benchmark: cluster `pht` of the installed major version on 127.0.0.1:5433,
# trusting loopback connections (a throwaway test cluster; never use this setup in production).
#
#   scripts/postgres.sh        install if missing, start if not running, print the env
#   scripts/postgres.sh stop   stop the cluster
#
# Tests create one database per test on it, named after the test, so runs never share state;
# a start drops those over 3 hours old.
set -euo pipefail
port="${PHT_POSTGRES_PORT:-5433}"
url="postgres://postgres@127.0.0.1:$port/postgres"
print_env() { echo "export PHT_TEST_POSTGRES_URL=$url"; }

if [ "$(id -u)" != 0 ]; then
  echo "postgres.sh: must run as root (it installs packages and manages a cluster)" >&2
  exit 1
fi
if ! command -v pg_createcluster >/dev/null || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  echo "postgres.sh: installing postgresql" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || true
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends postgresql >&2
  rm -f /usr/sbin/policy-rc.d
fi
version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
if [ "${1:-start}" = stop ]; then
  pg_ctlcluster "$version" pht stop 2>/dev/null || true
  exit 0
fi
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version pht"; then
  echo "postgres.sh: creating cluster $version/pht on port $port" >&2
  pg_createcluster --port "$port" "$version" pht -- --auth-local=trust --auth-host=trust >&2
fi
# Tests open a pool per test (up to 16 connections each) and run in parallel.
if [ "$(pg_conftool -s "$version" pht show max_connections 2>/dev/null || true)" != 400 ]; then
  pg_conftool "$version" pht set max_connections 400
  pg_ctlcluster "$version" pht stop 2>/dev/null || true
fi
if ! pg_lsclusters -h | awk '$1=="'"$version"'" && $2=="pht" {print $4}' | grep -qx online; then
  pg_ctlcluster "$version" pht start >&2
fi
psql_q() { runuser -u postgres -- psql -h 127.0.0.1 -p "$port" -v ON_ERROR_STOP=1 -Atq -c "$1" postgres; }
# Each test run leaves a database per test (`e2e_*`, `state_*`, `bench_*`), which a failed
# test's reader may want. Those over 3 hours old (a CI run is capped at 90 minutes, so none is
# in use) are dropped here, so that the throwaway cluster does not grow run after run.
drop_old_test_databases() {
  local old
  old="$(psql_q "SELECT datname FROM pg_database WHERE datname ~ '^(e2e|state|bench)_[a-z0-9_]+$' AND (pg_stat_file('base/' || oid || '/PG_VERSION')).modification < now() - interval '3 hours'")"
  [ -n "$old" ] || return 0
  echo "postgres.sh: dropping $(echo "$old" | wc -l) test databases over 3 hours old" >&2
  while read -r db; do
    psql_q "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >&2
  done <<<"$old"
}
for _ in $(seq 1 50); do
  if psql_q 'SELECT 1' >/dev/null 2>&1; then
    drop_old_test_databases
    print_env
    exit 0
  fi
  sleep 0.2
done
echo "postgres.sh: the cluster did not come up; see /var/log/postgresql/postgresql-$version-pht.log" >&2
exit 1
