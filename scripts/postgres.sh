#!/usr/bin/env bash
# Installs (Debian's postgresql) and starts, idempotently, a PostgreSQL cluster for the route
# service's tests and benchmark: cluster `pht` of the installed major version on 127.0.0.1:5433,
# trusting loopback connections (a throwaway test cluster; never use this setup in production).
#
#   scripts/postgres.sh        install if missing, start if not running, print the env
#   scripts/postgres.sh stop   stop the cluster
#
# PHT_POSTGRES_PORT and PHT_POSTGRES_CLUSTER choose another port and cluster name (the test
# suite makes a fresh cluster that way to check a first start's output).
#
# Tests create one database per test on it, named after the test, so runs never share state;
# a start drops those over 3 hours old.
set -euo pipefail
# The caller evaluates standard output (`eval "$(scripts/postgres.sh)"`): it carries the export
# lines and nothing else. Everything the PostgreSQL tools print (a first start prints cluster
# tables and "Cluster is not running.") goes to standard error, whatever the call.
exec 3>&1 1>&2
port="${PHT_POSTGRES_PORT:-5433}"
cluster="${PHT_POSTGRES_CLUSTER:-pht}"
url="postgres://postgres@127.0.0.1:$port/postgres"
print_env() { echo "export PHT_TEST_POSTGRES_URL=$url" >&3; }

if [ "$(id -u)" != 0 ]; then
  echo "postgres.sh: must run as root (it installs packages and manages a cluster)"
  exit 1
fi
if ! command -v pg_createcluster >/dev/null || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  "$(dirname "$0")/apt-install.sh" postgresql
fi
version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
if [ "${1:-start}" = stop ]; then
  pg_ctlcluster "$version" "$cluster" stop || true
  exit 0
fi
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version $cluster"; then
  echo "postgres.sh: creating cluster $version/$cluster on port $port"
  pg_createcluster --port "$port" "$version" "$cluster" -- --auth-local=trust --auth-host=trust
fi
# Tests open a pool per test (up to 16 connections each) and run in parallel.
if [ "$(pg_conftool -s "$version" "$cluster" show max_connections 2>/dev/null || true)" != 400 ]; then
  pg_conftool "$version" "$cluster" set max_connections 400
  pg_ctlcluster "$version" "$cluster" stop 2>/dev/null || true
fi
if ! pg_lsclusters -h | awk '$1=="'"$version"'" && $2=="'"$cluster"'" {print $4}' | grep -qx online; then
  # Without fd 3: the server it leaves running would hold the caller's `$(…)` open.
  pg_ctlcluster "$version" "$cluster" start 3>&-
fi
psql_q() { runuser -u postgres -- psql -h 127.0.0.1 -p "$port" -v ON_ERROR_STOP=1 -Atq -c "$1" postgres; }
# Each test run leaves a database per test (`e2e_*`, `state_*`, `bench_*`), which a failed
# test's reader may want. Those over 3 hours old (a CI run is capped at 90 minutes, so none is
# in use) are dropped here, so that the throwaway cluster does not grow run after run.
drop_old_test_databases() {
  local old
  old="$(psql_q "SELECT datname FROM pg_database WHERE datname ~ '^(e2e|state|bench)_[a-z0-9_]+$' AND (pg_stat_file('base/' || oid || '/PG_VERSION')).modification < now() - interval '3 hours'")"
  [ -n "$old" ] || return 0
  echo "postgres.sh: dropping $(echo "$old" | wc -l) test databases over 3 hours old"
  while read -r db; do
    psql_q "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
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
echo "postgres.sh: the cluster did not come up; see /var/log/postgresql/postgresql-$version-$cluster.log"
exit 1
