#!/usr/bin/env bash
# Real-client compatibility suite: runs the official Upstash clients (@upstash/redis,
# @upstash/ratelimit, @upstash/lock, upstash-redis, upstash-ratelimit) against restdis, which
# forwards to a private, throwaway redis-server. With the Node suite it also runs the tests of the
# example project in examples/ (`node --test examples/test/`) against the same restdis.
#
#   bash tests/clients/run.sh                   # everything
#   CLIENTS=node bash tests/clients/run.sh      # only the Node suite (or CLIENTS=python)
#   NODE_TEST_ARGS='--test-name-pattern=lock' PYTEST_ARGS='-k ratelimit' bash tests/clients/run.sh
#
# Environment:
#   RESTDIS_BIN     restdis binary (default: $CARGO_TARGET_DIR or target, then release/restdis, relative to the repo root;
#                   built with `cargo build --release` when missing)
#   CLIENTS         all (default) | node | python
#   NODE_TEST_ARGS  extra arguments for `node --test`
#   PYTEST_ARGS     extra arguments for pytest
#   KEEP_LOGS=1     keep the temp dir with the redis and restdis logs
#   SUITE_TIMEOUT   seconds each runner may take before it is killed (default 240)
#   TENANCY         single (default): the tokens' tenant has the Redis to itself;
#                   shared: the tokens belong to tenant "app" on database 1, beside a tenant
#                   "neighbour" on database 2 of the same Redis, so every command runs as
#                   app's restricted ACL user (docs/security.md)
#   TOPOLOGY        single (default): one redis-server;
#                   cluster: a Redis Cluster of 3 primaries and 3 replicas (6 redis-server
#                   --cluster-enabled yes, made with redis-cli --cluster create) behind
#                   --redis-url redis+cluster://... (docs/scale-out.md lists what cannot pass);
#                   sentinel: a primary, a replica and 3 sentinels (redis-server --sentinel)
#                   behind --redis-url redis+sentinel://.../mymaster
#   READ_FROM       primary (default) or replicas: restdis's --read-from (with TOPOLOGY=cluster
#                   or sentinel: reads from the replicas, read-your-writes by sync tokens)
#
# Exits non-zero when any test failed, when a runner ran no test, or when setup failed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CLIENTS="${CLIENTS:-all}"
START_TS=$(date +%s)

log() { printf '[clients] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

case "$CLIENTS" in all | node | python) ;; *) die "CLIENTS must be all, node or python (got '$CLIENTS')" ;; esac
TENANCY="${TENANCY:-single}"
case "$TENANCY" in single | shared) ;; *) die "TENANCY must be single or shared (got '$TENANCY')" ;; esac
TOPOLOGY="${TOPOLOGY:-single}"
case "$TOPOLOGY" in single | cluster | sentinel) ;; *) die "TOPOLOGY must be single, cluster or sentinel (got '$TOPOLOGY')" ;; esac
[[ "$TOPOLOGY" == single || "$TENANCY" == single ]] || die "TOPOLOGY=$TOPOLOGY needs TENANCY=single"
READ_FROM="${READ_FROM:-primary}"
case "$READ_FROM" in primary | replicas) ;; *) die "READ_FROM must be primary or replicas (got '$READ_FROM')" ;; esac
[[ "$READ_FROM" == primary || "$TOPOLOGY" != single ]] || die "READ_FROM=replicas needs TOPOLOGY=cluster or sentinel"
want() { [[ "$CLIENTS" == all || "$CLIENTS" == "$1" ]]; }

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

# ---------------------------------------------------------------------------------------------
# 1. Client dependencies (skipped when already installed from the same lockfile)
# ---------------------------------------------------------------------------------------------
PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
    if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi
command -v "$PYTHON" >/dev/null 2>&1 || die "python3 not found"

install_node_deps() {
    command -v node >/dev/null 2>&1 || die "node not found (node >= 20 required)"
    command -v npm >/dev/null 2>&1 || die "npm not found"
    local dir="$HERE/node" stamp="$HERE/node/node_modules/.restdis-lock-sha256" want
    want="$(hash_of "$dir/package-lock.json")-$(node --version)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        log "node deps up to date"
        return
    fi
    log "installing node deps (npm ci)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error --omit=peer >&2)
    echo "$want" >"$stamp"
}

install_python_deps() {
    local dir="$HERE/python" venv="$HERE/python/.venv" want
    want="$(hash_of "$dir/requirements.txt")-$("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"
    if [[ -x "$venv/bin/python" && -f "$venv/.restdis-req-sha256" && "$(cat "$venv/.restdis-req-sha256")" == "$want" ]]; then
        log "python deps up to date"
        return
    fi
    log "creating venv and installing python deps"
    rm -rf "$venv"
    if ! "$PYTHON" -m venv "$venv" >&2; then
        # Debian ships ensurepip separately.
        rm -rf "$venv"
        local pyver
        pyver="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        apt_install "python${pyver}-venv" || apt_install python3-venv
        "$PYTHON" -m venv "$venv" >&2
    fi
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$dir/requirements.txt" >&2
    echo "$want" >"$venv/.restdis-req-sha256"
}

install_example_deps() {
    local dir="$ROOT/examples" stamp="$ROOT/examples/node_modules/.restdis-lock-sha256" want
    want="$(hash_of "$dir/package-lock.json")-$(node --version)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        log "examples deps up to date"
        return
    fi
    log "installing examples deps (npm ci)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error --omit=peer >&2)
    echo "$want" >"$stamp"
}

want node && install_node_deps
want node && install_example_deps
want python && install_python_deps

# ---------------------------------------------------------------------------------------------
# 2. redis-server and 3. the restdis binary
# ---------------------------------------------------------------------------------------------
if ! command -v redis-server >/dev/null 2>&1; then
    log "redis-server not found; installing it"
    apt_install redis-server
fi
if ! command -v redis-cli >/dev/null 2>&1; then
    log "redis-cli not found; installing it"
    apt_install redis-tools
fi
log "$(redis-server --version)"

BIN="${RESTDIS_BIN:-${CARGO_TARGET_DIR:-target}/release/restdis}"
[[ "$BIN" == /* ]] || BIN="$ROOT/$BIN"
if [[ ! -x "$BIN" ]]; then
    log "$BIN missing; running cargo build --release"
    (cd "$ROOT" && cargo build --release >&2)
    [[ -x "$BIN" ]] || die "no restdis binary at $BIN after the build"
fi

# ---------------------------------------------------------------------------------------------
# 4./5. Start a private redis-server and restdis on free loopback ports
# ---------------------------------------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/restdis-clients.XXXXXX")"
REDIS_PID=""
CLUSTER_PIDS=""
RESTDIS_PID=""
SUITES_STARTED=0
cleanup() {
    local rc=$?
    set +e
    if [[ -n "$RESTDIS_PID" ]] && kill -0 "$RESTDIS_PID" 2>/dev/null; then
        kill -TERM "$RESTDIS_PID" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$RESTDIS_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$RESTDIS_PID" 2>/dev/null
    fi
    local pid
    for pid in $REDIS_PID $CLUSTER_PIDS; do
        kill -0 "$pid" 2>/dev/null || continue
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    if [[ $rc -ne 0 || "${KEEP_LOGS:-0}" == 1 ]]; then
        if [[ "${KEEP_LOGS:-0}" == 1 ]]; then
            log "logs kept in $WORK"
        else
            local files=("$WORK/restdis.err")
            # before the suites ran, the start-up logs explain the failure
            [[ $SUITES_STARTED -eq 1 ]] || files=("$WORK/redis.log" "$WORK/restdis.out" "$WORK/restdis.err")
            for f in "${files[@]}"; do
                [[ -s "$f" ]] || continue
                log "---- last lines of $(basename "$f") ----"
                tail -n 20 "$f" >&2
            done
            rm -rf "$WORK"
        fi
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
random_token() {
    "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(24))'
}

start_redis() {
    local attempt
    for attempt in 1 2 3; do
        REDIS_PORT="$(free_port)"
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
            --daemonize no --dir "$WORK" --logfile "$WORK/redis.log" &
        REDIS_PID=$!
        local deadline=$((SECONDS + 10))
        while ((SECONDS < deadline)); do
            if ! kill -0 "$REDIS_PID" 2>/dev/null; then break; fi
            if [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; then
                log "redis-server ready on 127.0.0.1:$REDIS_PORT (pid $REDIS_PID)"
                return 0
            fi
            sleep 0.05
        done
        log "redis-server did not come up on port $REDIS_PORT (attempt $attempt)"
        kill -KILL "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
        REDIS_PID=""
    done
    die "could not start redis-server"
}
# Waits (at most 10 s) until the redis-server on port $1 answers PING.
wait_pong() {
    local deadline=$((SECONDS + 10))
    until [[ "$(redis-cli -p "$1" ping 2>/dev/null)" == PONG ]]; do
        ((SECONDS < deadline)) || die "redis-server on port $1 did not start"
        sleep 0.05
    done
}
# TOPOLOGY=cluster: six cluster nodes on free ports (whose bus port, +10000, is free too),
# joined by redis-cli, ready once every node says cluster_state:ok.
start_cluster() {
    local addrs=() port i
    for i in 1 2 3 4 5 6; do
        port=""
        for _ in $(seq 1 50); do
            port="$(free_port)"
            ((port < 55000)) && "$PYTHON" -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.close()' \
                $((port + 10000)) 2>/dev/null && break
            port=""
        done
        [[ -n "$port" ]] || die "no free port pair for a cluster node"
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
            --cluster-enabled yes --cluster-node-timeout 1000 --cluster-config-file "nodes-$port.conf" \
            --dir "$WORK" --logfile "$WORK/redis-$port.log" &
        CLUSTER_PIDS="$CLUSTER_PIDS $!"
        addrs+=("127.0.0.1:$port")
        wait_pong "$port"
    done
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$WORK/cluster-create.log" 2>&1 \
        || die "redis-cli --cluster create failed (see $WORK/cluster-create.log)"
    local deadline=$((SECONDS + 30)) a
    for a in "${addrs[@]}"; do
        until redis-cli -p "${a##*:}" cluster info 2>/dev/null | grep -q cluster_state:ok; do
            ((SECONDS < deadline)) || die "the cluster did not reach cluster_state:ok"
            sleep 0.05
        done
    done
    REDIS_PORT="${addrs[0]##*:}"
    REDIS_URL="redis+cluster://${addrs[0]},${addrs[1]}"
    log "redis cluster ready: ${addrs[*]}"
}

# TOPOLOGY=sentinel: a primary, a replica of it, and three sentinels watching "mymaster"; ready
# once the replica's link is up and every sentinel knows the replica.
start_sentinel() {
    local primary replica port i conf
    primary="$(free_port)"
    replica="$(free_port)"
    for port in "$primary" "$replica"; do
        local extra=()
        [[ "$port" == "$replica" ]] && extra=(--replicaof 127.0.0.1 "$primary")
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
            --dir "$WORK" --logfile "$WORK/redis-$port.log" "${extra[@]}" &
        CLUSTER_PIDS="$CLUSTER_PIDS $!"
        wait_pong "$port"
    done
    local sentinels=()
    for i in 1 2 3; do
        port="$(free_port)"
        conf="$WORK/sentinel-$port.conf"
        printf 'port %s\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 %s 2\nsentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 5000\n' \
            "$port" "$primary" >"$conf"
        redis-server "$conf" --sentinel --logfile "$WORK/sentinel-$port.log" &
        CLUSTER_PIDS="$CLUSTER_PIDS $!"
        sentinels+=("127.0.0.1:$port")
    done
    local deadline=$((SECONDS + 30)) s
    until redis-cli -p "$replica" info replication 2>/dev/null | grep -q master_link_status:up; do
        ((SECONDS < deadline)) || die "the replica's link to the primary did not come up"
        sleep 0.05
    done
    for s in "${sentinels[@]}"; do
        until redis-cli -p "${s##*:}" sentinel replicas mymaster 2>/dev/null | grep -q "$replica"; do
            ((SECONDS < deadline)) || die "sentinel $s did not learn of the replica"
            sleep 0.05
        done
    done
    REDIS_PORT="$primary"
    REDIS_URL="redis+sentinel://$(IFS=,; echo "${sentinels[*]}")/mymaster"
    log "sentinel group ready: primary $primary, replica $replica, sentinels ${sentinels[*]}"
}

if [[ "$TOPOLOGY" == cluster ]]; then
    start_cluster
elif [[ "$TOPOLOGY" == sentinel ]]; then
    start_sentinel
else
    start_redis
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
fi

TOKEN="$(random_token)"
ROTOKEN="$(random_token)"
# Create the output files first: the background job opens them in its own time, and the
# polling below must not read a file that does not exist yet.
: >"$WORK/restdis.out"
: >"$WORK/restdis.err"
if [[ "$TENANCY" == shared ]]; then
    cat >"$WORK/tenants.toml" <<EOF
[tenants.app]
tokens = ["$TOKEN"]
read_only_tokens = ["$ROTOKEN"]
redis_url = "redis://127.0.0.1:$REDIS_PORT"
db = 1

[tenants.neighbour]
tokens = ["$(random_token)"]
redis_url = "redis://127.0.0.1:$REDIS_PORT"
db = 2
EOF
    log "shared tenancy: the suites run as tenant 'app' (db 1) beside 'neighbour' (db 2)"
    "$BIN" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --config "$WORK/tenants.toml" \
        >"$WORK/restdis.out" 2>"$WORK/restdis.err" &
else
    "$BIN" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
        --redis-url "$REDIS_URL" --read-from "$READ_FROM" --token="$TOKEN" --read-only-token="$ROTOKEN" \
        >"$WORK/restdis.out" 2>"$WORK/restdis.err" &
fi
RESTDIS_PID=$!

URL=""
ADMIN_URL=""
deadline=$((SECONDS + 20))
while ((SECONDS < deadline)); do
    kill -0 "$RESTDIS_PID" 2>/dev/null || die "restdis exited during start-up"
    URL="$(sed -n 's/^UPSTASH_REDIS_REST_URL=//p' "$WORK/restdis.out" | head -n1 | tr -d '\r')"
    ADMIN_URL="$(sed -n 's/^RESTDIS_ADMIN_URL=//p' "$WORK/restdis.out" | head -n1 | tr -d '\r')"
    [[ -n "$URL" && -n "$ADMIN_URL" ]] && break
    sleep 0.05
done
[[ -n "$URL" ]] || die "restdis printed no UPSTASH_REDIS_REST_URL line within 20 s"
[[ -n "$ADMIN_URL" ]] || die "restdis printed no RESTDIS_ADMIN_URL line within 20 s"
PRINTED_TOKEN="$(sed -n 's/^UPSTASH_REDIS_REST_TOKEN=//p' "$WORK/restdis.out" | head -n1 | tr -d '\r')"
if [[ -n "$PRINTED_TOKEN" && "$PRINTED_TOKEN" != "$TOKEN" ]]; then
    log "warning: restdis printed a token that differs from --token"
fi

"$PYTHON" - "$ADMIN_URL/readyz" <<'EOF' || die "restdis never became ready ($ADMIN_URL/readyz)"
import sys, time, urllib.request, urllib.error
url, deadline = sys.argv[1], time.monotonic() + 20
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except (urllib.error.URLError, OSError):
        pass
    time.sleep(0.05)
sys.exit(1)
EOF
log "restdis ready at $URL (admin $ADMIN_URL, pid $RESTDIS_PID)"

export UPSTASH_REDIS_REST_URL="$URL"
export UPSTASH_REDIS_REST_TOKEN="$TOKEN"
export RESTDIS_READONLY_TOKEN="$ROTOKEN"
export RESTDIS_ADMIN_URL="$ADMIN_URL"
export RESTDIS_REDIS_PORT="$REDIS_PORT"
export RESTDIS_TENANCY="$TENANCY"
export RESTDIS_TOPOLOGY="$TOPOLOGY"
unset KV_REST_API_URL KV_REST_API_TOKEN

# ---------------------------------------------------------------------------------------------
# 6. Run the suites
# ---------------------------------------------------------------------------------------------
SUITES_STARTED=1
NODE_RC=0 PY_RC=0 EX_RC=0
NODE_SUMMARY="not run" PY_SUMMARY="not run" EX_SUMMARY="not run"
TOTAL_PASS=0 TOTAL_FAIL=0

# Tallies a `node --test` TAP report: tally_tap FILE EXIT_CODE sets TAP_RC and TAP_SUMMARY and adds
# to the totals. Cancelled tests count as failed; a run of no test at all fails; a failing exit
# with no failed test counts as one failure.
tally_tap() {
    local file=$1 n
    local -A c=()
    [[ -f $file ]] || : >"$file" # node died before its reporter opened it
    for n in pass fail skipped cancelled; do
        c[$n]="$(sed -n "s/^# $n \([0-9]*\)\$/\1/p" "$file" | tail -n1)"
        c[$n]=${c[$n]:-0}
    done
    local pass=${c[pass]} fail=$((c[fail] + c[cancelled]))
    TAP_RC=$2
    TAP_SUMMARY="$pass passed, $fail failed, ${c[skipped]} skipped"
    if [[ $pass -eq 0 && $TAP_RC -eq 0 ]]; then TAP_RC=1; TAP_SUMMARY="$TAP_SUMMARY (ran no test)"; fi
    if [[ $TAP_RC -ne 0 && $fail -eq 0 ]]; then fail=1; fi
    TOTAL_PASS=$((TOTAL_PASS + pass)) TOTAL_FAIL=$((TOTAL_FAIL + fail))
}

if want node; then
    log "running the Node suite"
    set +e
    # shellcheck disable=SC2086
    (cd "$HERE/node" && timeout --kill-after=10 "${SUITE_TIMEOUT:-240}" \
        node --test --test-concurrency=1 --test-timeout=60000 \
        --test-reporter=spec --test-reporter-destination=stdout \
        --test-reporter=tap --test-reporter-destination="$WORK/node.tap" \
        ${NODE_TEST_ARGS:-} test/*.test.mjs)
    NODE_RC=$?
    set -e
    tally_tap "$WORK/node.tap" "$NODE_RC"
    NODE_RC=$TAP_RC NODE_SUMMARY=$TAP_SUMMARY
fi

if want node; then
    log "running the examples' tests (examples/test/)"
    set +e
    (cd "$ROOT" && timeout --kill-after=10 "${SUITE_TIMEOUT:-240}" \
        node --test --test-timeout=60000 \
        --test-reporter=spec --test-reporter-destination=stdout \
        --test-reporter=tap --test-reporter-destination="$WORK/examples.tap" \
        examples/test/)
    EX_RC=$?
    set -e
    tally_tap "$WORK/examples.tap" "$EX_RC"
    EX_RC=$TAP_RC EX_SUMMARY=$TAP_SUMMARY
fi

if want python; then
    log "running the Python suite"
    set +e
    # shellcheck disable=SC2086
    (cd "$HERE/python" && timeout --kill-after=10 "${SUITE_TIMEOUT:-240}" \
        .venv/bin/python -m pytest -p no:cacheprovider -ra \
        --junitxml="$WORK/pytest.xml" ${PYTEST_ARGS:-} tests)
    PY_RC=$?
    set -e
    if [[ -f "$WORK/pytest.xml" ]]; then
        counts="$("$PYTHON" - "$WORK/pytest.xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = f = e = s = 0
for su in suites:
    t += int(su.get("tests", 0)); f += int(su.get("failures", 0))
    e += int(su.get("errors", 0)); s += int(su.get("skipped", 0))
print(t - f - e - s, f + e, s)
EOF
        )"
        read -r pp pf ps <<<"$counts"
    else
        pp=0 pf=0 ps=0
    fi
    PY_SUMMARY="$pp passed, $pf failed, $ps skipped"
    if [[ $PY_RC -eq 5 ]]; then PY_SUMMARY="$PY_SUMMARY (pytest collected no tests: exit 5)"; fi
    if [[ $PY_RC -ne 0 && $pf -eq 0 ]]; then pf=1; fi
    TOTAL_PASS=$((TOTAL_PASS + pp)) TOTAL_FAIL=$((TOTAL_FAIL + pf))
fi

echo
echo "==== restdis real-client compatibility suite, $TENANCY tenancy, $TOPOLOGY topology, reads from $READ_FROM ($(( $(date +%s) - START_TS )) s) ===="
want node && echo "node   (@upstash/redis, ratelimit, lock): $NODE_SUMMARY (exit $NODE_RC)"
want node && echo "examples (examples/test/, node --test): $EX_SUMMARY (exit $EX_RC)"
want python && echo "python (upstash-redis, upstash-ratelimit): $PY_SUMMARY (exit $PY_RC)"
echo "clients: $TOTAL_PASS passed, $TOTAL_FAIL failed"
if [[ "$READ_FROM" == replicas ]]; then
    # Where the clients' reads went (restdis_redis_reads_total, docs/monitoring.md).
    "$PYTHON" - "$ADMIN_URL/metrics" <<'EOF' || log "could not read $ADMIN_URL/metrics"
import sys, urllib.request
text = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
reads = {l.split('served_by="')[1].split('"')[0]: float(l.split()[-1])
         for l in text.splitlines() if l.startswith("restdis_redis_reads_total{")}
print("reads served by replicas: %d, by primaries: %d" % (reads.get("replica", 0), reads.get("primary", 0)))
EOF
fi

if [[ $NODE_RC -ne 0 || $EX_RC -ne 0 || $PY_RC -ne 0 || $TOTAL_FAIL -ne 0 ]]; then
    exit 1
fi
