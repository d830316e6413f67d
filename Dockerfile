# restdis: the Upstash Redis REST protocol in front of your own Redis.
#
#   docker build -t restdis .
#   docker run --rm -p 8079:8079 restdis                       # local stand-in: a private Redis inside
#   docker run --rm -p 8079:8079 -e RESTDIS_TOKEN=... \
#     -e RESTDIS_REDIS_URL=redis://redis:6379 restdis          # a pure gateway
#
# Base images are build arguments so that machines without a registry can build from images
# made locally (tests/container/run.sh does that with debootstrap). OFFLINE=1 builds from
# crates vendored into .docker-vendor/ (`cargo vendor .docker-vendor`) instead of crates.io.
ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
ARG OFFLINE=0
RUN if [ "$OFFLINE" = 1 ]; then \
        mkdir -p .cargo && printf '%s\n' \
            '[source.crates-io]' 'replace-with = "vendored"' \
            '[source.vendored]' 'directory = ".docker-vendor"' > .cargo/config.toml; \
    fi \
    && cargo build --release --locked --bin restdis \
    && objcopy --strip-all target/release/restdis /restdis

FROM ${RUNTIME_IMAGE} AS runtime
# redis-server for the local stand-in (used only when no Redis URL is given): the base's own
# when it has one (RUNTIME_IMAGE=redis:8 brings Redis 8), else Debian's; no shell tools beyond
# what the base has.
RUN if ! command -v redis-server >/dev/null; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && useradd --system --uid 10079 --home-dir /var/lib/restdis --create-home restdis
COPY --from=build /restdis /usr/local/bin/restdis
USER 10079
WORKDIR /var/lib/restdis
# Listen on every interface inside the container. Without RESTDIS_TOKEN (or tenants) a token is
# generated and printed: restdis never serves without one.
ENV RESTDIS_LISTEN=0.0.0.0:8079 \
    RESTDIS_ADMIN_LISTEN=0.0.0.0:9079 \
    RESTDIS_GENERATE_TOKEN=true
EXPOSE 8079 9079
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 CMD ["restdis", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["restdis"]
