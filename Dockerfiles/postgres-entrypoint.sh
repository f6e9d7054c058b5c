#!/bin/sh
# First start: a cluster in $PGDATA with $POSTGRES_USER (default postgres) whose password is
# read from $POSTGRES_PASSWORD_FILE, and database $POSTGRES_DB; then PostgreSQL in the
# foreground, listening on every address with password (SCRAM) authentication. Arguments are
# PostgreSQL's, as the upstream image takes them (`postgres -c name=value …`).
set -eu
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD_FILE:?set POSTGRES_PASSWORD_FILE to a file holding the password}"
  initdb --username="$user" --pwfile="$POSTGRES_PASSWORD_FILE" --auth-local=scram-sha-256 \
    --auth-host=scram-sha-256 --encoding=UTF8 -D "$PGDATA" >/dev/null
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "host all all ::/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    PGPASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")" postgres --single -D "$PGDATA" postgres \
      <<SQL >/dev/null
CREATE DATABASE "$db" OWNER "$user";
SQL
  fi
fi
[ "${1:-}" = postgres ] && shift
exec postgres -D "$PGDATA" -c listen_addresses='*' -c "port=${PGPORT:-5432}" "$@"
