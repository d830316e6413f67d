#!/usr/bin/env bash
# Browser suite of the web console (docs/console.md): headless Chromium from the OS package
# (never a downloaded browser) driven by playwright-core, against a real restdis (release
# binary) in front of a private, throwaway redis-server, both on free loopback ports.
# Mirrors tests/clients/run.sh: dependencies from the lockfile with `npm ci` (skipped when up to
# date), readiness polled, `node --test`, a summary line.
#
#   bash tests/console/run.sh
#   NODE_TEST_ARGS='--test-name-pattern=hostile' bash tests/console/run.sh
#
# Environment:
#   RESTDIS_BIN     restdis binary (default: $CARGO_TARGET_DIR or target, then release/restdis;
#                   built with `cargo build --release` when missing)
#   CHROMIUM        browser executable (default /usr/bin/chromium; apt-get installs it when missing)
#   SCREENSHOTS     where the screenshots go (default target/console-screenshots under the repo root)
#   NODE_TEST_ARGS  extra arguments for `node --test`
#   KEEP_LOGS=1     keep the temp dir with the redis and restdis logs
#   SUITE_TIMEOUT   seconds the runner may take before it is killed (default 400)
#
# Exits non-zero when a test failed, when no test ran, or when setup failed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
START_TS=$(date +%s)

log() { printf '[console] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

SUDO=""
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "need to install $* but apt-get is not available"
    if [[ $APT_UPDATED -eq 0 ]]; then
        $SUDO apt-get update -qq >&2
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >&2
}
hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# 1. Dependencies: playwright-core from the lockfile, Chromium and redis from the OS.
command -v node >/dev/null 2>&1 || die "node not found (node >= 20 required)"
command -v npm >/dev/null 2>&1 || die "npm not found"
stamp="$HERE/node_modules/.restdis-lock-sha256"
want="$(hash_of "$HERE/package-lock.json")-$(node --version)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "node deps up to date"
else
    log "installing node deps (npm ci)"
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >&2)
    echo "$want" >"$stamp"
fi
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$CHROMIUM" ]]; then
    log "$CHROMIUM not found; installing chromium"
    apt_install chromium
    [[ -x "$CHROMIUM" ]] || die "no browser at $CHROMIUM after installing chromium"
fi
log "$("$CHROMIUM" --version 2>/dev/null | tail -n1)"
command -v redis-server >/dev/null 2>&1 || apt_install redis-server
command -v redis-cli >/dev/null 2>&1 || apt_install redis-tools
command -v curl >/dev/null 2>&1 || apt_install curl

BIN="${RESTDIS_BIN:-${CARGO_TARGET_DIR:-target}/release/restdis}"
[[ "$BIN" == /* ]] || BIN="$ROOT/$BIN"
if [[ ! -x "$BIN" ]]; then
    log "$BIN missing; running cargo build --release"
    (cd "$ROOT" && cargo build --release >&2)
    [[ -x "$BIN" ]] || die "no restdis binary at $BIN after the build"
fi

# 2. redis-server and restdis on free loopback ports.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/restdis-console.XXXXXX")"
REDIS_PID=""
RESTDIS_PID=""
stop() {
    local pid=$1
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    set +e
    stop "$RESTDIS_PID"
    stop "$REDIS_PID"
    wait 2>/dev/null
    if [[ "${KEEP_LOGS:-0}" == 1 ]]; then
        log "logs kept in $WORK"
    else
        if [[ $rc -ne 0 ]]; then
            for f in "$WORK/redis.log" "$WORK/restdis.err"; do
                [[ -s "$f" ]] || continue
                log "---- last lines of $(basename "$f") ----"
                tail -n 20 "$f" >&2
            done
        fi
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
random_token() { node -e 'console.log(require("crypto").randomBytes(18).toString("base64url"))'; }

for attempt in 1 2 3; do
    REDIS_PORT="$(free_port)"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --dir "$WORK" --logfile "$WORK/redis.log" &
    REDIS_PID=$!
    up=0
    for _ in $(seq 1 200); do
        kill -0 "$REDIS_PID" 2>/dev/null || break
        if [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; then up=1; break; fi
        sleep 0.05
    done
    [[ $up -eq 1 ]] && break
    log "redis-server did not come up on port $REDIS_PORT (attempt $attempt)"
    stop "$REDIS_PID"
    REDIS_PID=""
done
[[ -n "$REDIS_PID" ]] || die "could not start redis-server"
log "redis-server ready on 127.0.0.1:$REDIS_PORT"

TOKEN="$(random_token)"
ROTOKEN="$(random_token)"
ADMINTOKEN="$(random_token)"
: >"$WORK/restdis.out"
: >"$WORK/restdis.err"
# Quotas, so the usage screen has bars to fill (usage is kept in db 15; the tests use db 0).
cat >"$WORK/restdis.toml" <<EOF2
[quota]
daily_commands = 10000
monthly_commands = 1000000
daily_bandwidth = "20MiB"
EOF2
env -u RESTDIS_BIN "$BIN" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --console on \
    --config "$WORK/restdis.toml" --redis-url "redis://127.0.0.1:$REDIS_PORT" --token="$TOKEN" --read-only-token="$ROTOKEN" \
    --admin-token="$ADMINTOKEN" >"$WORK/restdis.out" 2>"$WORK/restdis.err" &
RESTDIS_PID=$!
URL=""
ADMIN_URL=""
for _ in $(seq 1 400); do
    kill -0 "$RESTDIS_PID" 2>/dev/null || die "restdis exited during start-up"
    URL="$(sed -n 's/^UPSTASH_REDIS_REST_URL=//p' "$WORK/restdis.out" | head -n1 | tr -d '\r')"
    ADMIN_URL="$(sed -n 's/^RESTDIS_ADMIN_URL=//p' "$WORK/restdis.out" | head -n1 | tr -d '\r')"
    [[ -n "$URL" && -n "$ADMIN_URL" ]] && break
    sleep 0.05
done
[[ -n "$URL" && -n "$ADMIN_URL" ]] || die "restdis printed no URL lines within 20 s"
ready=0
for _ in $(seq 1 400); do
    if [[ "$(curl -s -o /dev/null -w '%{http_code}' "$ADMIN_URL/readyz")" == 200 ]]; then ready=1; break; fi
    sleep 0.05
done
[[ $ready -eq 1 ]] || die "restdis never became ready ($ADMIN_URL/readyz)"
log "restdis ready at $URL"

export RESTDIS_URL="$URL" RESTDIS_TOKEN="$TOKEN" RESTDIS_READONLY_TOKEN="$ROTOKEN" RESTDIS_ADMIN_TOKEN="$ADMINTOKEN"
export SCREENSHOTS="${SCREENSHOTS:-$ROOT/target/console-screenshots}"
mkdir -p "$SCREENSHOTS"

# 3. The tests.
set +e
# shellcheck disable=SC2086
(cd "$HERE" && timeout --kill-after=10 "${SUITE_TIMEOUT:-400}" \
    node --test --test-concurrency=1 --test-timeout=240000 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$WORK/console.tap" \
    ${NODE_TEST_ARGS:-} test/*.test.mjs)
RC=$?
set -e
[[ -f "$WORK/console.tap" ]] || : >"$WORK/console.tap"
count() { sed -n "s/^# $1 \([0-9]*\)\$/\1/p" "$WORK/console.tap" | tail -n1; }
PASS=$(count pass); FAIL=$(count fail); CANCELLED=$(count cancelled); SKIPPED=$(count skipped)
PASS=${PASS:-0}; FAIL=$(( ${FAIL:-0} + ${CANCELLED:-0} )); SKIPPED=${SKIPPED:-0}
if [[ $PASS -eq 0 && $RC -eq 0 ]]; then RC=1; log "ran no test"; fi
if [[ $RC -ne 0 && $FAIL -eq 0 ]]; then FAIL=1; fi
echo
echo "==== restdis console browser suite ($(( $(date +%s) - START_TS )) s); screenshots in $SCREENSHOTS ===="
echo "console: $PASS passed, $FAIL failed, $SKIPPED skipped"
exit $RC
