#!/usr/bin/env python3
"""Throughput of `restdis migrate`, beside `redis-cli --pipe` loading the same data.

Usage: scripts/bench.d/migrate.py [--keys N] [--restdis PATH] [--concurrency N] [--batch N]

Starts private redis-servers on free loopback ports (no persistence), loads N small keys
(`SET bench:<i> <16-byte value>`) into a source with `redis-cli --pipe` (timed: the
baseline), then copies them with `restdis migrate` Redis -> Redis in dump and logical mode,
and Redis -> restdis (REST, the given binary, normally a release build) -> Redis in both
modes, and restdis (REST, in front of the source) -> Redis. For each run: keys/s (wall clock of the whole command, connection set-up included),
peak RSS of the migrate process (ru_maxrss from wait4), and a check that the destination
holds N keys. Prints a Markdown table. Standard library only; every wait is bounded.
"""

import argparse
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

DEADLINE_S = 10.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(tmp, name):
    port = free_port()
    d = os.path.join(tmp, name)
    os.makedirs(d)
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", d],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + DEADLINE_S
    while cli(port, "PING") != "PONG":
        if time.monotonic() > deadline:
            sys.exit(f"redis-server on {port} did not start")
        time.sleep(0.01)
    return proc, port


def cli(port, *args):
    out = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True)
    return out.stdout.strip()


def resp(*parts):
    out = [b"*%d\r\n" % len(parts)]
    for p in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(p), p))
    return b"".join(out)


def load(port, keys, path):
    """redis-cli --pipe of the prepared file; returns seconds."""
    t0 = time.monotonic()
    with open(path, "rb") as f:
        subprocess.run(["redis-cli", "-p", str(port), "--pipe"], stdin=f,
                       stdout=subprocess.DEVNULL, check=True)
    secs = time.monotonic() - t0
    assert int(cli(port, "DBSIZE")) == keys
    return secs


def timed(cmd):
    """Runs cmd; returns (seconds, peak RSS in KiB, stdout)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    secs = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed: {out.decode()} {err.decode()}")
    return secs, usage.ru_maxrss, out.decode().strip()


def wait_http(port, token):
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("POST", "/", body=b'["PING"]', headers={"Authorization": f"Bearer {token}"})
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.02)
    sys.exit("restdis did not answer")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--restdis", default="target/release/restdis")
    ap.add_argument("--concurrency", default="4")
    ap.add_argument("--batch", default="1000")
    a = ap.parse_args()
    for tool in ("redis-server", "redis-cli"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed (apt-get install redis-server)")
    tmp = tempfile.mkdtemp(prefix="restdis-migrate-bench.")
    procs = []
    try:
        data = os.path.join(tmp, "load.resp")
        with open(data, "wb") as f:
            for i in range(a.keys):
                f.write(resp(b"SET", b"bench:%d" % i, b"v%015d" % i))
        src, sport = start_redis(tmp, "src")
        dst, dport = start_redis(tmp, "dst")
        procs += [src, dst]
        rows = []
        secs = load(sport, a.keys, data)
        rows.append(("redis-cli --pipe (load the source)", secs, None))
        token = "bench-token"
        rport = free_port()
        gw = subprocess.Popen(
            [a.restdis, "--listen", f"127.0.0.1:{rport}", "--admin-listen", "off",
             "--redis-url", f"redis://127.0.0.1:{dport}", "--token", token],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(gw)
        wait_http(rport, token)
        sgport = free_port()
        sgw = subprocess.Popen(
            [a.restdis, "--listen", f"127.0.0.1:{sgport}", "--admin-listen", "off",
             "--redis-url", f"redis://127.0.0.1:{sport}", "--token", token],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(sgw)
        wait_http(sgport, token)
        src_url = f"redis://127.0.0.1:{sport}"
        rest_src = f"http://127.0.0.1:{sgport}"
        runs = [
            ("migrate Redis -> Redis, dump", f"redis://127.0.0.1:{dport}", "dump", []),
            ("migrate Redis -> Redis, logical", f"redis://127.0.0.1:{dport}", "logical", []),
            ("migrate Redis -> restdis (REST), dump", f"http://127.0.0.1:{rport}", "dump",
             ["--to-token", token]),
            ("migrate Redis -> restdis (REST), logical", f"http://127.0.0.1:{rport}", "logical",
             ["--to-token", token]),
            ("migrate restdis (REST) -> Redis, auto (dump)", f"redis://127.0.0.1:{dport}", "auto",
             ["--from", rest_src, "--from-token", token]),
        ]
        for name, to, mode, extra in runs:
            cli(dport, "FLUSHALL")
            if "--from" not in extra:
                extra = ["--from", src_url, *extra]
            cmd = [a.restdis, "migrate", "--to", to, "--mode", mode, "--progress", "off",
                   "--concurrency", a.concurrency, "--batch", a.batch, *extra]
            secs, rss, out = timed(cmd)
            got = int(cli(dport, "DBSIZE"))
            if got != a.keys:
                sys.exit(f"{name}: {got} keys at the destination, expected {a.keys}: {out}")
            rows.append((name, secs, rss))
        print(f"| Run ({a.keys:,} keys of 16 B, concurrency {a.concurrency}, batch {a.batch}) "
              "| Seconds | Keys/s | Peak RSS |")
        print("|---|---:|---:|---:|")
        for name, secs, rss in rows:
            rss_text = f"{rss / 1024:.0f} MiB" if rss is not None else "n/a"
            print(f"| {name} | {secs:.2f} | {a.keys / secs:,.0f} | {rss_text} |")
        print(f"\nCommand: scripts/bench.d/migrate.py --keys {a.keys} --restdis {a.restdis}")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
