# PostgreSQL 15 from Debian's packages, on the base image: the stand-in the tests use for the
# route service's database. Production takes the upstream image (`postgres:15` from a mirror)
# under the same variable of the compose file; this one reads the same settings
# (POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD_FILE, PGDATA), so the two are exchangeable.
ARG BASE=pht-local/debian:bookworm
FROM ${BASE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* \
 && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data /run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
USER postgres
ENV PGDATA=/var/lib/postgresql/data PATH=/usr/lib/postgresql/15/bin:/usr/sbin:/usr/bin:/sbin:/bin
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
