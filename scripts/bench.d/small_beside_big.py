#!/usr/bin/env python3
"""Latency of small GETs while other clients keep fetching a large value.

Usage:
    small_beside_big.py --url URL [--token TOKEN] [--target restdis|webdis]
        [--big-key K] [--big-bytes N] [--small-key K] [--big-clients 2]
        [--seconds 5] [--big-encoding plain|base64] [--pid PID] [--redis-pid PID]
        [--small-redis HOST:PORT]

One loop (this process) sends small GETs one after the other on a keep-alive
connection and records each one's latency; --big-clients other processes each
fetch the large value in a loop on their own keep-alive connection. Every
answer is checked (status 200 and the expected length or value), so a wrong
or truncated reply counts as an error, not as a fast request. --big-clients 0
measures the small loop alone. With --small-redis the small GETs go straight to
that Redis (RESP, the big clients still use --url): what Redis itself adds to a
small request while the large values are read, the floor for any gateway.

For restdis (--target restdis) requests are `POST /` with a JSON command body
and a bearer token, as the SDKs send them; for webdis they are `GET /GET/key`.
--pid and --redis-pid (processes on this machine) add CPU seconds used during
the run, from /proc/PID/stat. Prints one `small_beside_big_result` line of
key=value pairs (latencies in ms, big-value throughput in MB/s). Exits 1 on
any error. Standard library only.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import socket
import statistics
import sys
import time
from urllib.parse import urlsplit

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    if not pid:
        return 0
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


class Client:
    """One keep-alive connection that sends GET key and returns the body."""

    def __init__(self, args, encoding="plain", redis=None):
        if redis:
            host, _, port = redis.rpartition(":")
            self.sock = socket.create_connection((host, int(port)), timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.target = "redis"
            return
        u = urlsplit(args.url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        self.target = args.target
        self.headers = {}
        if args.target == "restdis":
            self.headers["Authorization"] = f"Bearer {args.token}"
            self.headers["Content-Type"] = "application/json"
            if encoding == "base64":
                self.headers["Upstash-Encoding"] = "base64"

    def get(self, key):
        if self.target == "redis":
            k = key.encode()
            self.sock.sendall(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k))
            data = b""
            while not data.endswith(b"\r\n") or data.count(b"\r\n") < 2:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise OSError("Redis closed the connection")
                data += chunk
            return 200, data
        if self.target == "restdis":
            body = json.dumps(["GET", key])
            self.conn.request("POST", "/", body=body, headers=self.headers)
        else:
            self.conn.request("GET", f"/GET/{key}")
        resp = self.conn.getresponse()
        data = resp.read()
        return resp.status, data


def expected_len(args):
    """Length of a correct JSON answer for the big value (plain or base64)."""
    n = args.big_bytes
    if args.big_encoding == "base64":
        n = (n + 2) // 3 * 4
    envelope = '{"result":""}' if args.target == "restdis" else '{"GET":""}'
    return n + len(envelope)


def big_loop(args, stop_at, queue):
    client = Client(args, args.big_encoding)
    want = expected_len(args)
    done = errors = 0
    nbytes = 0
    while time.monotonic() < stop_at:
        try:
            status, data = client.get(args.big_key)
        except (OSError, http.client.HTTPException):
            errors += 1
            client = Client(args, args.big_encoding)
            continue
        if status != 200 or len(data) != want:
            errors += 1
        else:
            done += 1
            nbytes += len(data)
    queue.put((done, errors, nbytes))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--token", default="")
    p.add_argument("--target", choices=["restdis", "webdis"], default="restdis")
    p.add_argument("--big-key", default="bench:k8m")
    p.add_argument("--big-bytes", type=int, default=8 * 1024 * 1024)
    p.add_argument("--big-encoding", choices=["plain", "base64"], default="plain")
    p.add_argument("--small-key", default="bench:k100")
    p.add_argument("--small-value", default="x" * 100)
    p.add_argument("--big-clients", type=int, default=2)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--pid", type=int, default=0)
    p.add_argument("--redis-pid", type=int, default=0)
    p.add_argument("--small-redis", metavar="HOST:PORT")
    args = p.parse_args()
    if args.target == "webdis" and args.big_encoding == "base64":
        p.error("webdis has no base64 form")

    small = Client(args, redis=args.small_redis)
    if args.small_redis:
        want_small = b"$%d\r\n%s\r\n" % (len(args.small_value), args.small_value.encode())
    elif args.target == "restdis":
        want_small = json.dumps({"result": args.small_value}, separators=(",", ":")).encode()
    else:
        want_small = json.dumps({"GET": args.small_value}, separators=(",", ":")).encode()
    # Warm up the small connection (and check the answer) before the big clients start.
    status, data = small.get(args.small_key)
    if status != 200 or data != want_small:
        print(f"small GET answered {status}: {data[:200]!r}", file=sys.stderr)
        return 1

    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    start = time.monotonic() + 0.5 * (args.big_clients > 0)
    stop_at = start + args.seconds
    procs = [ctx.Process(target=big_loop, args=(args, stop_at, queue)) for _ in range(args.big_clients)]
    for proc in procs:
        proc.start()
    while time.monotonic() < start:  # let the big clients get going
        time.sleep(0.01)
    g0, r0, t0 = cpu_ticks(args.pid), cpu_ticks(args.redis_pid), time.monotonic()
    lat = []
    errors = 0
    while time.monotonic() < stop_at:
        t = time.perf_counter()
        status, data = small.get(args.small_key)
        lat.append(time.perf_counter() - t)
        if status != 200 or data != want_small:
            errors += 1
    elapsed = time.monotonic() - t0
    g1, r1 = cpu_ticks(args.pid), cpu_ticks(args.redis_pid)
    big_done = big_errors = big_bytes = 0
    for _ in procs:
        d, e, b = queue.get(timeout=60)
        big_done, big_errors, big_bytes = big_done + d, big_errors + e, big_bytes + b
    for proc in procs:
        proc.join(timeout=10)

    lat.sort()
    ms = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
    result = {
        "target": args.target,
        "small_via": "redis" if args.small_redis else args.target,
        "big_clients": args.big_clients,
        "big_encoding": args.big_encoding,
        "small_requests": len(lat),
        "small_p50_ms": round(statistics.median(lat) * 1000, 3),
        "small_p99_ms": round(ms(0.99), 3),
        "small_max_ms": round(lat[-1] * 1000, 3),
        "big_replies": big_done,
        "big_mb_per_s": round(big_bytes / 1e6 / elapsed, 1),
        "target_cpu_s": round((g1 - g0) / CLK_TCK, 2),
        "redis_cpu_s": round((r1 - r0) / CLK_TCK, 2),
        "seconds": round(elapsed, 2),
        "errors": errors + big_errors,
    }
    print("small_beside_big_result " + " ".join(f"{k}={v}" for k, v in result.items()))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
