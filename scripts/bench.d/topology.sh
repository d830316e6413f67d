#!/usr/bin/env bash
# scripts/bench.d/topology.sh: restdis CPU per request against one Redis or a Redis Cluster
# (issue 10), and user-space instructions per GET with callgrind.
#
#   scripts/bench.d/topology.sh cpu BIN single|cluster|cluster-replicas [SCENARIO...]
#       restdis CPU µs per request (utime+stime of /proc/PID/stat, all threads) over a
#       `wrk -t1 -c32 -d${SECS:-5}s` run after a 1 s warm-up, for each scenario (get,
#       pipeline-spread, set1k; default get and pipeline-spread), RUNS (default 3) runs each;
#       prints one line per run.
#   scripts/bench.d/topology.sh callgrind BIN single|cluster
#       valgrind --tool=callgrind --instr-atstart=no; instrumentation on for a 5 s
#       `wrk -t1 -c32` run of `POST /` GETs after a 2 s warm-up; prints instructions per GET.
#
# "cluster" is 3 primaries (no replicas) made with redis-cli --cluster create; "cluster-replicas"
# 3 primaries and 3 replicas with restdis started with --read-from replicas (reads served by the
# replicas, writes followed by ROLE + CLUSTER MYID); "single" one redis-server. Everything runs
# on free loopback ports and is stopped on exit.
set -euo pipefail
MODE=$1 BIN=$2 TOPO=$3
shift 3
SCENARIOS=("$@")
[[ ${#SCENARIOS[@]} -gt 0 ]] || SCENARIOS=(get pipeline-spread)
D="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TMP=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
node() { # port [extra...]
	local port=$1
	shift
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" \
		--dbfilename "d$port.rdb" --logfile "$TMP/r$port.log" "$@" &
	PIDS+=($!)
	for _ in $(seq 200); do [[ $(redis-cli -p "$port" ping 2>/dev/null) == PONG ]] && return; sleep 0.05; done
	echo "redis-server on $port did not start" >&2
	exit 2
}
EXTRA=()
if [[ $TOPO == cluster* ]]; then
	ADDRS=()
	NODES=3 REPLICAS=0
	if [[ $TOPO == cluster-replicas ]]; then
		NODES=6 REPLICAS=1
		EXTRA=(--read-from replicas)
	fi
	for _ in $(seq $NODES); do
		p=$(free_port)
		while ((p > 55000)); do p=$(free_port); done
		node "$p" --cluster-enabled yes --cluster-config-file "n$p.conf" --cluster-node-timeout 1000
		ADDRS+=("127.0.0.1:$p")
	done
	redis-cli --cluster create "${ADDRS[@]}" --cluster-replicas $REPLICAS --cluster-yes >/dev/null
	for a in "${ADDRS[@]}"; do
		for _ in $(seq 600); do redis-cli -p "${a##*:}" cluster info | grep -q cluster_state:ok && break; sleep 0.05; done
	done
	for a in "${ADDRS[@]}"; do
		if redis-cli -p "${a##*:}" info replication | grep -q role:slave; then
			for _ in $(seq 600); do redis-cli -p "${a##*:}" info replication | grep -q master_link_status:up && break; sleep 0.05; done
		fi
	done
	URL="redis+cluster://${ADDRS[0]}"
	RC=(redis-cli -c -p "${ADDRS[0]##*:}")
else
	p=$(free_port)
	node "$p"
	URL="redis://127.0.0.1:$p"
	RC=(redis-cli -p "$p")
fi
VALUE=$(head -c 100 /dev/zero | tr '\0' x)
"${RC[@]}" set bench:k100 "$VALUE" >/dev/null
for i in $(seq 100); do "${RC[@]}" set "bench:spread:$i" "$VALUE" >/dev/null; done
PORT=$(free_port)
export BENCH_TOKEN=bench
ARGS=(--listen "127.0.0.1:$PORT" --admin-listen off --token bench --redis-url "$URL" "${EXTRA[@]}")
if [[ $MODE == callgrind ]]; then
	valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="${CG_OUT:-$TMP/cg.out}" "$BIN" "${ARGS[@]}" >"$TMP/out" 2>&1 &
else
	"$BIN" "${ARGS[@]}" >"$TMP/out" 2>&1 &
fi
RP=$!
PIDS+=("$RP")
for _ in $(seq 600); do
	curl -sf -H 'Authorization: Bearer bench' -d '["GET","bench:k100"]' "http://127.0.0.1:$PORT/" | grep -q xxxx && break
	sleep 0.1
done
ticks() { awk '{print $14 + $15}' "/proc/$RP/stat"; }
if [[ $MODE == callgrind ]]; then
	wrk -t1 -c32 -d2s -s "$D/get.lua" "http://127.0.0.1:$PORT/" >/dev/null
	callgrind_control -i on "$RP" >/dev/null
	wrk -t1 -c32 -d5s -s "$D/get.lua" "http://127.0.0.1:$PORT/" >"$TMP/wrk"
	callgrind_control -i off "$RP" >/dev/null
	kill -TERM "$RP"
	wait "$RP" 2>/dev/null || true
	REQ=$(awk '/requests in/ {print $1}' "$TMP/wrk")
	IR=$(callgrind_annotate "${CG_OUT:-$TMP/cg.out}" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
	echo "$TOPO callgrind: $IR instructions / $REQ GETs = $((IR / REQ)) per GET"
	exit 0
fi
TCK=$(getconf CLK_TCK)
for s in "${SCENARIOS[@]}"; do
	path=/
	[[ $s == pipeline* ]] && path=/pipeline
	for run in $(seq "${RUNS:-3}"); do
		wrk -t1 -c32 -d1s -s "$D/$s.lua" "http://127.0.0.1:$PORT$path" >/dev/null
		t0=$(ticks)
		wrk -t1 -c32 -d"${SECS:-5}"s -s "$D/$s.lua" "http://127.0.0.1:$PORT$path" >"$TMP/wrk"
		t1=$(ticks)
		REQ=$(awk '/requests in/ {print $1}' "$TMP/wrk")
		ERR=$(grep -c "Non-2xx" "$TMP/wrk" || true)
		python3 -c "import sys; t,r,k=int(sys.argv[1]),int(sys.argv[2]),int(sys.argv[3]); print(f'$TOPO $s run $run: {r} requests, restdis CPU {t*1e6/k/r:.2f} us/request' + (f', {t*1e6/k/r/100:.3f} us/command' if '$s'.startswith('pipeline') else '') + (' (non-2xx responses!)' if $ERR else ''))" "$((t1 - t0))" "$REQ" "$TCK"
	done
done
if [[ $TOPO == cluster-replicas ]]; then
	# Where the GETs went: each node's role and GET calls (INFO commandstats).
	for a in "${ADDRS[@]}"; do
		role=$(redis-cli -p "${a##*:}" info replication | awk -F: '/^role:/ {print $2}' | tr -d '\r')
		gets=$(redis-cli -p "${a##*:}" info commandstats | awk -F'[=,]' '/^cmdstat_get:/ {print $2}')
		echo "$a $role: ${gets:-0} GETs"
	done
fi
