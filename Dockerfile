# overbook itself in a container, for CI: `docker run --rm -v "$PWD:/work" IMAGE run ...`
# with nothing else installed (the store lands in $PWD/store). The runtime holds redis-server,
# the Postgres 15 server binaries and overbook; every run starts its own throw-away
# servers inside the container (the local backend), so every fault works.
#
# With a registry:  docker build -t overbook/overbook:latest .
#                   (build stage rust:1-bookworm, runtime debian:bookworm-slim)
# Without one:      docker/build-overbook-image.sh  (builds overbook on this machine and
#                   the runtime on the offline server image; see docs/docker.md)
#
# Stage order matters for the offline build: the legacy builder builds every stage up to
# --target, so the `prebuilt` target comes before anything that needs a registry.

ARG RUNTIME_BASE=debian:bookworm-slim

# The servers: installed from Debian unless the base already has them (the offline
# image, debootstrapped with redis-server and postgresql-15, has).
FROM ${RUNTIME_BASE} AS runtime-base
RUN if ! command -v redis-server >/dev/null || [ ! -x /usr/lib/postgresql/15/bin/postgres ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends redis-server postgresql-15 ca-certificates \
        && rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man; \
    fi \
    && id postgres >/dev/null \
    && rm -rf /var/lib/postgresql/15 /etc/postgresql/15 \
    && mkdir -p /work
# overbook runs the servers itself: no server starts with the container.
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /work
LABEL org.opencontainers.image.title="overbook" \
      org.opencontainers.image.description="Jepsen-style correctness harness for booking systems" \
      org.opencontainers.image.source="https://github.com/overbook/overbook"

# Offline target: the binary built on the host (glibc of Debian bookworm), copied from
# the build context the script prepares.
FROM runtime-base AS prebuilt
COPY overbook /usr/local/bin/overbook
ENTRYPOINT ["/usr/local/bin/overbook"]
CMD ["--help"]

# With a registry: build in the official Rust image.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin overbook

FROM runtime-base AS runtime
COPY --from=build /src/target/release/overbook /usr/local/bin/overbook
ENTRYPOINT ["/usr/local/bin/overbook"]
CMD ["--help"]
