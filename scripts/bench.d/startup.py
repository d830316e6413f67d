#!/usr/bin/env python3
"""Time from process start to first successful answer, for scripts/bench.

Usage: startup.py ATTEMPTS TOKEN -- RESTDIS_COMMAND...

For each attempt: start the command, read UPSTASH_REDIS_REST_URL from its
stdout, then send `POST / ["GET","bench:k100"]` in a tight (bounded) loop
until one answers 200 with a "result". Prints one line per attempt:

    startup_ms <milliseconds> rss_kb <VmRSS right after the first answer>

The clock starts immediately before the process is spawned and stops when the
first 200 is read, so it includes exec, config parsing, binding, connecting to
Redis and serving one request. Standard library only; every loop is bounded.
"""

import http.client
import os
import select
import signal
import subprocess
import sys
import time

DEADLINE_S = 10.0  # per attempt: give up (and report failure) after this
BODY = b'["GET","bench:k100"]'


def vm_kb(pid, field):
    """VmRSS / VmHWM of a process in kB, or -1 if unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def read_url(proc, deadline):
    """Read stdout lines until UPSTASH_REDIS_REST_URL=... appears."""
    buf = b""
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if not ready:
            if proc.poll() is not None:
                raise RuntimeError(f"restdis exited with {proc.returncode}")
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            raise RuntimeError("restdis closed stdout before printing its URL")
        buf += chunk
        for line in buf.decode("utf-8", "replace").splitlines():
            if line.startswith("UPSTASH_REDIS_REST_URL="):
                return line.split("=", 1)[1].strip()
    raise RuntimeError("timed out waiting for UPSTASH_REDIS_REST_URL")


def first_answer(url, token, deadline):
    """Poll POST / until it answers 200 with a result; bounded by deadline."""
    hostport = url.split("://", 1)[1].rstrip("/")
    host, port = hostport.rsplit(":", 1)
    headers = {
        "Authorization": "Bearer " + token,
        "Content-Type": "application/json",
    }
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection(host, int(port), timeout=1.0)
        try:
            conn.request("POST", "/", body=BODY, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status == 200 and b'"result"' in body:
                return
        except OSError:
            pass  # not listening yet / reset: retry immediately
        finally:
            conn.close()
        time.sleep(0.0005)
    raise RuntimeError("no successful answer before the deadline")


def attempt(cmd, token):
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )
    try:
        deadline = t0 + DEADLINE_S
        url = read_url(proc, deadline)
        first_answer(url, token, deadline)
        ms = (time.monotonic() - t0) * 1000.0
        return ms, vm_kb(proc.pid, "VmRSS")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def main():
    # Turn SIGTERM (e.g. from `timeout`) into an exception so that the
    # `finally` in attempt() still stops the restdis child.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if len(sys.argv) < 5 or sys.argv[3] != "--":
        sys.exit(__doc__)
    attempts, token, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[4:]
    for _ in range(attempts):
        try:
            ms, rss = attempt(cmd, token)
            print(f"startup_ms {ms:.1f} rss_kb {rss}", flush=True)
        except RuntimeError as e:
            print(f"startup_failed {e}", flush=True)
        time.sleep(0.3)


if __name__ == "__main__":
    main()
