# CNCF distribution 2.8 from Debian's docker-registry package, on the base image: the stand-in
# the tests use for the central side's registry. Production takes the upstream image
# (`registry:2` from a mirror) under the same variable of the compose file: same storage path
# (/var/lib/registry), same configuration path, and wget for the health check as upstream's
# has. Runs as the package's docker-registry user.
ARG BASE=pht-local/debian:bookworm
FROM ${BASE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry wget \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* \
 && install -d -o docker-registry -g docker-registry -m 0700 /var/lib/registry
USER docker-registry
VOLUME /var/lib/registry
EXPOSE 5000
ENTRYPOINT ["/usr/bin/docker-registry", "serve"]
CMD ["/etc/docker/registry/config.yml"]
