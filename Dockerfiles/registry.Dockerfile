# CNCF distribution 2.8 from Debian's docker-registry package, on the base image: the stand-in
# the tests use for the central side's registry. Production takes the upstream image
# (`registry:2` from a mirror) under the same variable of the compose file. Runs as the
# package's docker-registry user; storage in the volume; configuration mounted.
ARG BASE=pht-local/debian:bookworm
FROM ${BASE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* \
 && install -d -o docker-registry -g docker-registry -m 0700 /var/lib/docker-registry
USER docker-registry
VOLUME /var/lib/docker-registry
EXPOSE 5000
ENTRYPOINT ["/usr/bin/docker-registry", "serve"]
CMD ["/etc/docker/registry/config.yml"]
