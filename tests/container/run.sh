#!/usr/bin/env bash
# Container tests: builds the top-level Dockerfile and exercises the image the way users run it.
#
#   bash tests/container/run.sh
#
# This machine (and CI) reaches Debian's packages but no container registry, so the base images
# the Dockerfile names by build argument are made here: a Debian root file system from
# debootstrap, loaded with `docker import`; a Rust build image with the host's own toolchain; a
# Redis image with Debian's redis-server. Crates come from `cargo vendor` (the build cannot reach
# crates.io). Everything is cached between runs on the same machine (images by name, the
# debootstrap tree under $CACHE), so a second run only rebuilds what changed.
#
# Then, each bounded in time:
#   1. `docker run` of the image alone: the printed token works, PING through @upstash/redis
#      answers PONG, the health check turns healthy;
#   2. the image as a gateway to a Redis container on a user-defined network;
#   3. compose.yaml: up, healthy, a client request through it, down, nothing left running.
# Also `systemd-analyze verify` of deploy/restdis.service when systemd-analyze is there.
#
# Installs docker.io and docker-compose with apt-get when missing, starts dockerd when none runs
# (and stops it at the end only if it started it). Environment: CACHE (default
# ${CARGO_TARGET_DIR:-target}/container-cache), KEEP=1 keeps containers and images for a look.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-target}"
[[ "$TARGET" == /* ]] || TARGET="$ROOT/$TARGET"
CACHE="${CACHE:-$TARGET/container-cache}"
mkdir -p "$CACHE"
START_TS=$(date +%s)

log() { printf '[container] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

SUDO=""
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "need $* but apt-get is not available"
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >&2
}

# ---------------------------------------------------------------------------------------------
# Docker: the client, compose, and a daemon
# ---------------------------------------------------------------------------------------------
command -v docker >/dev/null 2>&1 || { log "installing docker.io"; apt_install docker.io; }
command -v docker-compose >/dev/null 2>&1 || { log "installing docker-compose"; apt_install docker-compose; }
command -v debootstrap >/dev/null 2>&1 || { log "installing debootstrap"; apt_install debootstrap; }
STARTED_DOCKERD=""
if ! docker info >/dev/null 2>&1; then
    log "starting dockerd"
    $SUDO dockerd >"$CACHE/dockerd.log" 2>&1 &
    STARTED_DOCKERD=$!
    for _ in $(seq 1 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
    docker info >/dev/null 2>&1 || die "dockerd did not start (see $CACHE/dockerd.log)"
fi

RUN_ID="restdis-test-$$"
cleanup() {
    local rc=$?
    set +e
    if [[ "${KEEP:-0}" != 1 ]]; then
        docker ps -aq --filter "label=$RUN_ID" | xargs -r docker rm -f >/dev/null 2>&1
        docker network rm "$RUN_ID" >/dev/null 2>&1
        (cd "$ROOT" && COMPOSE_PROJECT_NAME="$RUN_ID" docker-compose down -v --remove-orphans >/dev/null 2>&1)
    fi
    if [[ -n "$STARTED_DOCKERD" ]]; then
        log "stopping the dockerd this run started"
        $SUDO kill "$STARTED_DOCKERD" 2>/dev/null
        wait "$STARTED_DOCKERD" 2>/dev/null
    fi
    exit $rc
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
# Base images, made locally and cached
# ---------------------------------------------------------------------------------------------
if ! docker image inspect restdis-local/debian:bookworm >/dev/null 2>&1; then
    if [[ ! -f "$CACHE/debroot/etc/debian_version" ]]; then
        log "debootstrap (minbase bookworm) into $CACHE/debroot"
        rm -rf "$CACHE/debroot"
        $SUDO debootstrap --variant=minbase bookworm "$CACHE/debroot" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1 \
            || die "debootstrap failed (see $CACHE/debootstrap.log)"
    fi
    log "docker import restdis-local/debian:bookworm"
    $SUDO tar -C "$CACHE/debroot" -c . | docker import - restdis-local/debian:bookworm >/dev/null
fi

TOOLCHAIN="$(rustc --print sysroot)"
RUST_TAG="restdis-local/rust:$(rustc --version | awk '{print $2}')"
if ! docker image inspect "$RUST_TAG" >/dev/null 2>&1; then
    log "building $RUST_TAG from the host toolchain ($TOOLCHAIN)"
    ctx="$CACHE/rust-context"
    rm -rf "$ctx" && mkdir -p "$ctx"
    cp -al "$TOOLCHAIN" "$ctx/toolchain" 2>/dev/null || cp -a "$TOOLCHAIN" "$ctx/toolchain"
    rm -rf "$ctx/toolchain/share/doc"
    docker build -q -f "$HERE/rust.Dockerfile" -t "$RUST_TAG" "$ctx" >/dev/null
    rm -rf "$ctx"
fi

if ! docker image inspect restdis-local/redis:bookworm >/dev/null 2>&1; then
    log "building restdis-local/redis:bookworm (Debian's redis-server)"
    printf '%s\n' 'FROM restdis-local/debian:bookworm' \
        'RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server && rm -rf /var/lib/apt/lists/*' \
        'CMD ["redis-server", "--protected-mode", "no"]' |
        docker build -q -t restdis-local/redis:bookworm - >/dev/null
fi

# ---------------------------------------------------------------------------------------------
# The image itself, from the real Dockerfile
# ---------------------------------------------------------------------------------------------
log "cargo vendor (the build inside docker has no crates.io)"
cargo vendor --locked --quiet .docker-vendor >/dev/null
IMAGE="restdis:test"
log "docker build -t $IMAGE . (first build compiles restdis: several minutes)"
if ! docker build -q \
    --build-arg RUST_IMAGE="$RUST_TAG" \
    --build-arg RUNTIME_IMAGE=restdis-local/debian:bookworm \
    --build-arg OFFLINE=1 \
    -t "$IMAGE" . >"$CACHE/build.log" 2>&1; then
    tail -n 40 "$CACHE/build.log" >&2
    die "docker build failed (log: $CACHE/build.log)"
fi
SIZE=$(docker image inspect -f '{{.Size}}' "$IMAGE")
log "image size: $((SIZE / 1024 / 1024)) MiB ($SIZE bytes)"

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_healthy() { # container, seconds
    local c=$1 deadline=$((SECONDS + $2)) state
    while ((SECONDS < deadline)); do
        state=$(docker inspect -f '{{.State.Health.Status}}' "$c" 2>/dev/null || echo gone)
        [[ $state == healthy ]] && return 0
        [[ $state == gone || $state == unhealthy ]] && break
        sleep 0.3
    done
    log "$c is $state after $2 s; its log:"
    docker logs "$c" 2>&1 | tail -20 >&2
    return 1
}
# PING with the official client (the Node suite's node_modules, installed by tests/clients).
ping_with_client() { # url token
    local mods="$ROOT/tests/clients/node/node_modules"
    [[ -d "$mods/@upstash/redis" ]] || (cd "$ROOT/tests/clients/node" && npm ci --no-audit --no-fund --loglevel=error --omit=peer >&2)
    (cd "$ROOT/tests/clients/node" && URL="$1" TOKEN="$2" node --input-type=module -e '
        import { Redis } from "@upstash/redis";
        const r = new Redis({ url: process.env.URL, token: process.env.TOKEN, retry: false });
        const pong = await r.ping();
        await r.set("container-test", "ok");
        const back = await r.get("container-test");
        if (pong !== "PONG" || back !== "ok") { console.error(pong, back); process.exit(1); }
        console.log("PONG through @upstash/redis");')
}

# ---------------------------------------------------------------------------------------------
# 1. The image alone: private Redis inside, printed token, health check
# ---------------------------------------------------------------------------------------------
log "1. docker run $IMAGE alone"
P1=$(free_port)
C1=$(docker run -d --label "$RUN_ID" -p "127.0.0.1:$P1:8079" "$IMAGE")
TOKEN=""
for _ in $(seq 1 100); do
    TOKEN=$(docker logs "$C1" 2>/dev/null | sed -n 's/^UPSTASH_REDIS_REST_TOKEN=//p' | head -n1)
    [[ -n $TOKEN ]] && break
    sleep 0.1
done
[[ -n $TOKEN ]] || { docker logs "$C1" >&2; die "the image printed no token"; }
wait_healthy "$C1" 30 || die "the image alone never became healthy"
ping_with_client "http://127.0.0.1:$P1" "$TOKEN"
code=$(python3 - "$P1" <<'EOF'
import sys, urllib.request, urllib.error
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/ping", headers={"Authorization": "Bearer wrong"})
try:
    urllib.request.urlopen(req, timeout=5)
    print(200)
except urllib.error.HTTPError as e:
    print(e.code)
EOF
)
[[ $code == 401 ]] || die "a wrong token got $code, not 401"
[[ $(docker exec "$C1" id -u) == 10079 ]] || die "the image does not run as its non-root user"
docker stop -t 15 "$C1" >/dev/null
[[ $(docker inspect -f '{{.State.ExitCode}}' "$C1") == 0 ]] || die "SIGTERM did not end restdis cleanly"

# ---------------------------------------------------------------------------------------------
# 2. A gateway to a Redis container on a user-defined network
# ---------------------------------------------------------------------------------------------
log "2. $IMAGE as a gateway to a Redis container"
docker network create --label "$RUN_ID" "$RUN_ID" >/dev/null
docker run -d --label "$RUN_ID" --network "$RUN_ID" --name "$RUN_ID-redis" restdis-local/redis:bookworm >/dev/null
P2=$(free_port)
C2=$(docker run -d --label "$RUN_ID" --network "$RUN_ID" -p "127.0.0.1:$P2:8079" \
    -e RESTDIS_REDIS_URL="redis://$RUN_ID-redis:6379" -e RESTDIS_TOKEN=gateway-token "$IMAGE")
wait_healthy "$C2" 30 || die "the gateway never became healthy"
ping_with_client "http://127.0.0.1:$P2" gateway-token
[[ $(docker exec "$RUN_ID-redis" redis-cli get container-test) == ok ]] || die "the write did not reach the Redis container"

# ---------------------------------------------------------------------------------------------
# 3. compose.yaml
# ---------------------------------------------------------------------------------------------
log "3. docker-compose up (compose.yaml)"
export COMPOSE_PROJECT_NAME="$RUN_ID" REDIS_IMAGE=restdis-local/redis:bookworm RESTDIS_IMAGE="$IMAGE" RESTDIS_TOKEN=compose-token
P3=$(free_port)
sed "s/\"8079:8079\"/\"127.0.0.1:$P3:8079\"/" compose.yaml >"$CACHE/compose.yaml"
compose() { docker-compose -f "$CACHE/compose.yaml" --project-directory "$ROOT" "$@"; }
compose up -d --no-build >"$CACHE/compose.log" 2>&1 || { cat "$CACHE/compose.log" >&2; die "compose up failed"; }
C3=$(compose ps -q restdis)
wait_healthy "$C3" 60 || { compose logs >&2; die "compose: restdis never became healthy"; }
ping_with_client "http://127.0.0.1:$P3" compose-token
compose down -v --remove-orphans >>"$CACHE/compose.log" 2>&1
left=$(docker ps -q --filter "label=com.docker.compose.project=$RUN_ID" | wc -l)
[[ $left == 0 ]] || die "compose down left $left containers running"

# ---------------------------------------------------------------------------------------------
# deploy/: the systemd unit
# ---------------------------------------------------------------------------------------------
if command -v systemd-analyze >/dev/null 2>&1; then
    BIN="$TARGET/release/restdis"
    [[ -x $BIN ]] || cargo build --release --locked --quiet
    sed "s|/usr/local/bin/restdis|$BIN|" deploy/restdis.service >"$CACHE/restdis.service"
    out=$(systemd-analyze verify "$CACHE/restdis.service" 2>&1 || true)
    [[ -z $out ]] || die "systemd-analyze verify deploy/restdis.service: $out"
    log "systemd-analyze verify deploy/restdis.service: clean"
fi

echo "==== container tests passed ($(($(date +%s) - START_TS)) s; image $((SIZE / 1024 / 1024)) MiB) ===="
