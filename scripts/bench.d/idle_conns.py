#!/usr/bin/env python3
"""Memory of restdis while it holds many idle keep-alive HTTP connections.

Usage:
    idle_conns.py --url URL --token TOKEN --pid PID [--conns 5000] [--hold 5]

URL is the restdis base URL (plain http, host and port), PID the restdis
process, which must run on this machine: its VmRSS / VmHWM and open file
descriptors are read from /proc/PID.

Steps: read restdis's memory; open --conns TCP connections (in batches, at
most 60 s in all) and send one keep-alive `POST / ["PING"]` on each, expecting
200 {"result":"PONG"}; leave them all idle for --hold seconds and read memory
and fds again; send a second PING on every connection to prove they were still
alive, not dropped; close them all, poll (at most 5 s) until restdis's fd count
is back down and read memory a last time. Prints a Markdown summary and exits
1 if any connect or request failed.

restdis must accept more than --conns connections (limits.max_connections,
default 10000) and have an open-file limit above it. Keep --hold below its
limits.header_read_timeout (10 s by default): restdis closes connections idle
for that long. This script raises its own RLIMIT_NOFILE soft limit to the hard
limit. Standard library only.
"""

import argparse
import collections
import errno
import json
import os
import resource
import selectors
import socket
import sys
import time
from urllib.parse import urlsplit

BATCH = 100  # connections opened at once: below the accept backlog (restdis: 1024; std's 128), or SYNs get retried
ROUND_DEADLINE_S = 60.0  # for opening all connections, and again for the second round
CLOSE_WAIT_S = 5.0
EXPECTED = {"result": "PONG"}


class Conn:
    """One client socket and the state of its current request."""

    def __init__(self, sock):
        self.sock, self.error = sock, None
        self.out, self.buf = memoryview(b""), bytearray()  # set per request by exchange()


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def snapshot(pid):
    """(VmRSS kB, VmHWM kB, open fds) of a process."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        vm = dict(line.split()[:2] for line in f if line.startswith(("VmRSS:", "VmHWM:")))
    return int(vm["VmRSS:"]), int(vm["VmHWM:"]), fd_count(pid)


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        sys.exit(f"RLIMIT_NOFILE hard limit is {hard}, need at least {need}: "
                 f"raise it (e.g. `ulimit -Hn {need}` as root) or use fewer --conns")
    if hard != resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    elif soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def parse_response(buf):
    """(done, error) for the bytes of one response read so far."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return False, None
    lines = bytes(buf[:head_end]).decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    if not headers.get("content-length", "").isdigit():
        return True, "response without a Content-Length"
    start, length = head_end + 4, int(headers["content-length"])
    if len(buf) < start + length:
        return False, None
    body = bytes(buf[start:start + length])
    if lines[0].split(" ")[1:2] != ["200"]:
        return True, f"{lines[0]} {body[:80]!r}"
    if headers.get("connection", "").lower() == "close":
        return True, "response says Connection: close"
    try:
        ok = json.loads(body) == EXPECTED and len(buf) == start + length
    except ValueError:
        ok = False
    return True, None if ok else f"unexpected body {bytes(buf[start:])[:80]!r}"


def exchange(conns, request, deadline):
    """One request and response on every connection (which may still be
    connecting); sets conn.error on failure. Returns by `deadline` at the latest."""
    sel = selectors.DefaultSelector()
    for c in conns:
        c.out, c.buf = memoryview(request), bytearray()
        sel.register(c.sock, selectors.EVENT_WRITE, c)
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(deadline - time.monotonic()):
            c, done = key.data, False
            try:
                if key.events == selectors.EVENT_WRITE:
                    err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise OSError(err, os.strerror(err))
                    c.out = c.out[c.sock.send(c.out):]
                    if not c.out:
                        sel.modify(c.sock, selectors.EVENT_READ, c)
                    continue
                chunk = c.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("connection closed by restdis")
                c.buf += chunk
                done, c.error = parse_response(c.buf)
            except BlockingIOError:
                continue
            except OSError as e:
                done, c.error = True, e.strerror or str(e)
            if done:
                sel.unregister(c.sock)
    for key in sel.get_map().values():
        key.data.error = "timed out"
    sel.close()


def open_conns(addrinfo, n, request):
    """Opens n connections, one request each, BATCH at a time."""
    family, socktype, proto, _, addr = addrinfo
    deadline = time.monotonic() + ROUND_DEADLINE_S
    conns = []
    for start in range(0, n, BATCH):
        batch = []
        for _ in range(min(BATCH, n - start)):
            c = Conn(socket.socket(family, socktype, proto))
            c.sock.setblocking(False)
            rc = c.sock.connect_ex(addr)
            if rc not in (0, errno.EINPROGRESS):
                c.error = os.strerror(rc)
            batch.append(c)
        exchange([c for c in batch if c.error is None], request, deadline)
        conns += batch
    return conns


def failed(conns, what):
    errors = collections.Counter(c.error for c in conns if c.error is not None)
    for error, count in errors.most_common(5):
        print(f"{what}: {count} x {error}", file=sys.stderr)
    return sum(errors.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="restdis base URL (plain http)")
    ap.add_argument("--token", required=True)
    ap.add_argument("--pid", required=True, type=int, help="restdis process id")
    ap.add_argument("--conns", type=int, default=5000)
    ap.add_argument("--hold", type=float, default=5.0, help="idle seconds before measuring")
    args = ap.parse_args()

    url = urlsplit(args.url)
    if url.scheme != "http" or not url.hostname:
        sys.exit(f"--url must be a plain http URL, got {args.url!r}")
    raise_nofile(args.conns + 100)
    with open(f"/proc/{args.pid}/limits", encoding="ascii") as f:
        limit = next(line.split()[3] for line in f if line.startswith("Max open files"))
    if limit.isdigit() and int(limit) < args.conns + 100:
        print(f"warning: restdis's open-file limit is only {limit}", file=sys.stderr)
    addrinfo = socket.getaddrinfo(url.hostname, url.port or 80, type=socket.SOCK_STREAM)[0]
    body = b'["PING"]'
    request = (f"POST / HTTP/1.1\r\nHost: {url.netloc}\r\n"
               f"Authorization: Bearer {args.token}\r\nConnection: keep-alive\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
               ).encode() + body

    before = snapshot(args.pid)
    t0 = time.monotonic()
    conns = open_conns(addrinfo, args.conns, request)
    open_s = time.monotonic() - t0
    open_failures = failed(conns, "open")
    alive = [c for c in conns if c.error is None]
    for c in set(conns) - set(alive):
        c.sock.close()
    time.sleep(args.hold)
    held = snapshot(args.pid)

    exchange(alive, request, time.monotonic() + ROUND_DEADLINE_S)
    second_failures = failed(alive, "second request")
    answered = snapshot(args.pid)
    for c in conns:
        c.sock.close()
    t1 = time.monotonic()
    while fd_count(args.pid) > before[2] and time.monotonic() - t1 < CLOSE_WAIT_S:
        time.sleep(0.02)
    close_s = time.monotonic() - t1
    after = snapshot(args.pid)

    per_conn = (held[0] - before[0]) / len(alive) if alive else float("nan")
    print(f"### restdis with {args.conns} idle keep-alive connections\n")
    print(f"- opened: {len(alive)} of {args.conns} in {open_s:.2f} s, "
          f"{open_failures} failed")
    print(f"- second request after {args.hold:g} s idle: "
          f"{len(alive) - second_failures} ok, {second_failures} failed")
    print(f"- per connection: {per_conn:.1f} KiB RSS")
    back = "back down" if after[2] <= before[2] else "still up"
    print(f"- restdis's fds {back} {close_s:.2f} s after closing\n")
    print("| | VmRSS MiB | VmHWM MiB | open fds |")
    print("|---|---:|---:|---:|")
    rows = (("before", before), (f"{len(alive)} idle", held),
            ("after 2nd request", answered), ("after close", after))
    for label, (rss, hwm, fds) in rows:
        print(f"| {label} | {rss / 1024:.1f} | {hwm / 1024:.1f} | {fds} |")
    # One machine-readable line for scripts/bench (RSS in kB).
    print(f"\nidle_conns_result conns={len(alive)} failed={open_failures + second_failures} "
          f"rss_before_kb={before[0]} rss_idle_kb={held[0]} rss_after_request_kb={answered[0]} "
          f"rss_closed_kb={after[0]}")
    return 1 if open_failures or second_failures or not alive else 0


if __name__ == "__main__":
    sys.exit(main())
