#!/usr/bin/env python3
"""restdis under stalled stream readers: memory, and the latency of other clients.

Usage:
    stalled_streams.py [--restdis BIN] [--subscribers 50] [--rate-mb 10] [--seconds 30]
                       [--payload 1024] [--after 10] [--no-direct] [-- RESTDIS_ARGS...]

Starts a private redis-server and restdis (BIN, default target/release/restdis or
$CARGO_TARGET_DIR/release/restdis) on free loopback ports, then:

1. opens --subscribers `POST /subscribe/flood` streams on raw sockets with a 4 KiB receive
   buffer that never read a byte;
2. publishes --rate-mb MB/s (10^6 bytes) of --payload-byte messages to `flood` for --seconds,
   straight to Redis (pipelined PUBLISH, paced every 10 ms), while a normal client sends
   `GET /get/bench:k` to restdis one after another on a keep-alive connection, and restdis's
   RSS is sampled from /proc every 100 ms;
3. closes the subscribers and reads RSS again after --after seconds;
4. unless --no-direct, repeats step 2 against Redis alone (50 never-reading SUBSCRIBE
   connections on Redis itself, GETs sent to Redis directly) for the baseline p99.

Prints a Markdown summary. Standard library only; everything it starts is stopped on exit.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

TOKEN = "bench-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def resp_cmd(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Redis:
    """A tiny blocking RESP client (replies as raw lines, enough for integers and bulk)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.sock.makefile("rb")

    def call(self, *args):
        self.sock.sendall(resp_cmd(*args))
        return self.read()

    def read(self):
        line = self.f.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if kind == b"*":
            return [self.read() for _ in range(int(rest))]
        if kind == b":":
            return int(rest)
        if kind == b"-":
            raise RuntimeError(rest.decode())
        return rest

    def close(self):
        self.sock.close()


def wait_for(pred, what, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.02)


def http_ok(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /get/x HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer %s\r\n"
                      b"Connection: close\r\n\r\n" % TOKEN.encode())
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def metric(admin_port, name):
    with socket.create_connection(("127.0.0.1", admin_port), timeout=5) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    for line in data.decode().splitlines():
        if line.startswith(name):
            return float(line.split()[-1])
    return None


def numsub(r, channel):
    return r.call("PUBSUB", "NUMSUB", channel)[1]


def stalled_socket(port, request):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(request)
    return s


def publisher(port, channel, payload, rate, stop, sent):
    """Pipelined PUBLISH at `rate` payload bytes per second, paced every 10 ms."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)

    def drain():
        try:
            while sock.recv(1 << 16):
                pass
        except OSError:
            pass

    threading.Thread(target=drain, daemon=True).start()
    one = resp_cmd("PUBLISH", channel, payload)
    start = time.monotonic()
    while not stop.is_set():
        due = int((time.monotonic() - start) * rate / len(payload)) - sent[0]
        if due > 0:
            sock.sendall(one * due)
            sent[0] += due
        time.sleep(0.01)
    sock.close()


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def getter(send_get, stop, lat):
    while not stop.is_set():
        t = time.perf_counter()
        send_get()
        lat.append(time.perf_counter() - t)


def http_getter(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    req = b"GET /get/bench:k HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer %s\r\n\r\n" % TOKEN.encode()
    f = s.makefile("rb")

    def one():
        s.sendall(req)
        length = 0
        while (line := f.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = f.read(length)
        if b'"result"' not in body:
            raise SystemExit(f"unexpected GET answer: {body!r}")

    return one


def redis_getter(port):
    r = Redis(port)
    return lambda: r.call("GET", "bench:k")


def load(args, redis_port, channel, get, pid=None):
    """Publishes for args.seconds while `get` runs in a loop; returns (latencies, peak RSS kB, sent)."""
    stop, lat, sent, peak = threading.Event(), [], [0], [0]
    rate = args.rate_mb * 1_000_000
    threads = [
        threading.Thread(target=publisher, args=(redis_port, channel, b"x" * args.payload, rate, stop, sent)),
        threading.Thread(target=getter, args=(get, stop, lat)),
    ]
    for t in threads:
        t.start()
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        if pid:
            peak[0] = max(peak[0], rss_kb(pid))
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    return lat, peak[0], sent[0]


def ms(x):
    return f"{x * 1000:.2f} ms"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    ap.add_argument("--restdis", default=os.path.join(target, "release", "restdis"))
    ap.add_argument("--redis-server", default="redis-server")
    ap.add_argument("--subscribers", type=int, default=50)
    ap.add_argument("--rate-mb", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--payload", type=int, default=1024)
    ap.add_argument("--after", type=float, default=10.0)
    ap.add_argument("--no-direct", action="store_true")
    ap.add_argument("restdis_args", nargs="*")
    args = ap.parse_args()

    procs = []
    tmp = tempfile.TemporaryDirectory()
    try:
        rport, hport, aport = free_port(), free_port(), free_port()
        procs.append(subprocess.Popen(
            [args.redis_server, "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", tmp.name],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for(lambda: _pings(rport), "redis-server")
        restdis = subprocess.Popen(
            [args.restdis, "--listen", f"127.0.0.1:{hport}", "--admin-listen", f"127.0.0.1:{aport}",
             "--redis-url", f"redis://127.0.0.1:{rport}", "--token", TOKEN, "--log", "warn",
             *args.restdis_args],
            stdout=subprocess.DEVNULL)
        procs.append(restdis)
        wait_for(lambda: http_ok(hport), "restdis")
        r = Redis(rport)
        r.call("SET", "bench:k", "v" * 100)
        rss_start = rss_kb(restdis.pid)

        req = (b"POST /subscribe/flood HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer %s\r\n"
               b"Accept: text/event-stream\r\nContent-Length: 2\r\n\r\n[]" % TOKEN.encode())
        subs = [stalled_socket(hport, req) for _ in range(args.subscribers)]
        wait_for(lambda: numsub(r, "flood") >= args.subscribers, "the subscriptions")

        lat, peak, sent = load(args, rport, "flood", http_getter(hport), restdis.pid)
        rss_end_load = rss_kb(restdis.pid)
        dropped = metric(aport, 'restdis_streams_dropped_total{reason="slow_consumer"}')
        for s in subs:
            s.close()
        closed_at = time.monotonic()
        while time.monotonic() - closed_at < args.after:
            time.sleep(0.1)
        rss_after = rss_kb(restdis.pid)
        open_after = metric(aport, "restdis_streams_open")

        print(f"## stalled streams: {args.subscribers} subscribers that never read, "
              f"{args.rate_mb:g} MB/s of {args.payload}-byte messages for {args.seconds:g} s\n")
        print(f"command: `{' '.join(sys.argv)}`\n")
        print("| figure | value |\n|---|---|")
        print(f"| published | {sent} messages, {sent * args.payload / 1e6:.0f} MB |")
        print(f"| restdis RSS before | {rss_start / 1024:.1f} MiB |")
        print(f"| restdis RSS peak while publishing | {peak / 1024:.1f} MiB |")
        print(f"| restdis RSS at the end of publishing | {rss_end_load / 1024:.1f} MiB |")
        print(f"| restdis RSS {args.after:g} s after the subscribers closed | {rss_after / 1024:.1f} MiB |")
        print(f"| streams dropped as slow consumers | {dropped} |")
        print(f"| streams open {args.after:g} s after | {open_after} |")
        print(f"| GETs via restdis | {len(lat)}, p50 {ms(percentile(lat, .5))}, "
              f"p99 {ms(percentile(lat, .99))}, max {ms(max(lat))} |")
        if not args.no_direct:
            direct_subs = [stalled_socket(rport, resp_cmd("SUBSCRIBE", "flood2")) for _ in range(args.subscribers)]
            wait_for(lambda: numsub(r, "flood2") >= args.subscribers, "direct subscriptions")
            # Same load shape, straight at Redis: publish to flood2, GET from Redis.
            dlat, _, _ = load(args, rport, "flood2", redis_getter(rport))
            for s in direct_subs:
                s.close()
            print(f"| GETs straight to Redis, same load | {len(dlat)}, p50 {ms(percentile(dlat, .5))}, "
                  f"p99 {ms(percentile(dlat, .99))}, max {ms(max(dlat))} |")
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        tmp.cleanup()


def _pings(port):
    try:
        r = Redis(port)
        ok = r.call("PING") == b"PONG"
        r.close()
        return ok
    except OSError:
        return False


if __name__ == "__main__":
    main()
