# A Rust build image made locally (no registry): the Debian base that run.sh imported, a C
# toolchain for the crates that build C (mimalloc, ring), and the host's own Rust toolchain
# (copied into the build context by run.sh as ./toolchain).
ARG BASE=restdis-local/debian:bookworm
FROM ${BASE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev binutils ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY toolchain /opt/rust
ENV PATH=/opt/rust/bin:$PATH
