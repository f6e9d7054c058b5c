# The route service's runtime image, built here with no image registry (scripts/images.sh):
# the stripped binary built on the host, on nothing but the C library it links and the CA
# certificates, taken from the base image (scripts/base-image.sh, or an upstream Debian from
# a mirror: --build-arg BASE=mirror.example.org/library/debian:bookworm-slim). No shell, no
# package manager; uid 10001; runs with a read-only root (state in the volume). The builder
# variant for sites with a Rust image: route-service.Dockerfile.
#
#   docker build -f Dockerfiles/route-service.runtime.Dockerfile -t pht-local/route-service CONTEXT
#   (CONTEXT holds the binary as `route-service`; scripts/images.sh prepares it)
ARG BASE=pht-local/debian:bookworm
FROM ${BASE} AS base
COPY route-service /rootfs/usr/local/bin/route-service
# The libraries the binary links, by ldd: glibc, libm, libgcc_s and the loader (four files).
RUN set -e; mkdir -p /rootfs/etc/ssl/certs /rootfs/var/lib/route-service /rootfs/etc/pht /rootfs/tmp; \
    for lib in $(ldd /rootfs/usr/local/bin/route-service | grep -o '/[^ ]*'); do \
      mkdir -p "/rootfs$(dirname "$lib")"; cp -L "$lib" "/rootfs$lib"; \
    done; \
    cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/; \
    echo 'route-service:x:10001:10001:PHT route service:/var/lib/route-service:/nonexistent' > /rootfs/etc/passwd; \
    echo 'route-service:x:10001:' > /rootfs/etc/group; \
    chown 10001:10001 /rootfs/var/lib/route-service; chmod 0700 /rootfs/var/lib/route-service; \
    chmod 1777 /rootfs/tmp

FROM scratch
COPY --from=base /rootfs/ /
USER 10001:10001
# State (SQLite) and the scratch space where submissions are read and checked (a train can be
# gigabytes: a volume, not a tmpfs in memory). Both are writable under a read-only root.
VOLUME /var/lib/route-service /tmp
# The configuration's `database` decides (an environment default would override it); without
# one, SQLite's file lands in the state volume.
WORKDIR /var/lib/route-service
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/route-service"]
CMD ["serve", "--config", "/etc/pht/route-service.toml"]
