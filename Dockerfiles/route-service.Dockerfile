# The route service. Build where a registry mirror serves the base images:
#   docker build -f Dockerfiles/route-service.Dockerfile \
#     --build-arg BUILDER=mirror.example.org/library/rust:1.89-bookworm \
#     --build-arg BASE=mirror.example.org/library/debian:bookworm-slim -t route-service .
# Nothing is fetched at run time; state lives in the volume (SQLite) or PostgreSQL.
ARG BUILDER=rust:1.89-bookworm
ARG BASE=debian:bookworm-slim

FROM ${BUILDER} AS build
WORKDIR /src
COPY . .
RUN apt-get update && apt-get install -y --no-install-recommends libssl-dev pkg-config \
 && cargo build --release --locked -p route-service-cli

FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 --home /var/lib/route-service route-service \
 && mkdir -p /var/lib/route-service && chown route-service /var/lib/route-service
COPY --from=build /src/target/release/route-service /usr/local/bin/route-service
USER route-service
VOLUME /var/lib/route-service
ENV ROUTE_SERVICE_DATABASE=sqlite:/var/lib/route-service/state.db ROUTE_SERVICE_LISTEN=0.0.0.0:8080
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["route-service"]
CMD ["serve", "--config", "/etc/pht/route-service.toml"]
