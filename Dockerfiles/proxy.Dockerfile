# nginx from Debian's package, on the base image: the stand-in the tests use for the reverse
# proxy that terminates TLS in front of the route service. Production takes the upstream image
# (`nginx:1.26` from a mirror, or the site's own proxy) under the same variable of the compose
# file; both read /etc/nginx/nginx.conf (deploy/compose/nginx.conf.example). Runs as www-data
# with a read-only root: the configuration puts its pid and temporary files in /tmp (a tmpfs),
# and it listens on a port above 1024 (no capability needed).
ARG BASE=pht-local/debian:bookworm
FROM ${BASE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light curl \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /etc/nginx/sites-enabled/*
USER www-data
EXPOSE 8443
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/usr/sbin/nginx", "-e", "stderr", "-g", "daemon off;"]
