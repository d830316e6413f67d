#!/usr/bin/env python3
"""Turn the raw per-run results of scripts/bench into a Markdown report.

Usage: report.py RAW_TSV META_TSV > results.md

RAW_TSV has one line per measured run (header line first):
  target scenario conns run requests seconds rps p50_us p99_us
  gw_ticks redis_ticks cmds peak_rss_kb errors busy_ticks gw_sys_ticks
  redis_cmds redis_reads
("-" where a value does not apply, e.g. gateway CPU for redis-benchmark).
META_TSV has "key<TAB>value" lines (machine, versions, settings, startup...).

Each table cell is the MEDIAN over runs with the [min–max] range. CPU µs per
request = CPU ticks (utime+stime) * 1e6 / CLK_TCK / completed requests.
Standard library only.
"""

import csv
import statistics
import sys

# Display order and labels: (target, scenario) -> label
ORDER = [
    ("restdis", "get", "GET 100 B, `POST /` JSON body"),
    ("webdis", "get", "GET 100 B, `GET /GET/bench:k100`"),
    ("redis-benchmark", "get-P1", "GET 100 B, `-P 1`"),
    ("redis-benchmark", "get-P16", "GET 100 B, `-P 16`"),
    ("restdis", "get-path", "GET 100 B, path `GET /get/bench:k100`"),
    ("restdis", "get-b64", "GET 100 B, `Upstash-Encoding: base64`"),
    ("restdis", "set1k", "SET 1 KiB, `POST /`"),
    ("restdis", "pipeline", "`/pipeline`, 100 GETs"),
    ("restdis", "multi-exec", "`/multi-exec`, 5 commands"),
    ("restdis", "get-1m", "GET 1 MiB, `POST /` JSON body"),
    ("restdis", "get-1m-b64", "GET 1 MiB, `Upstash-Encoding: base64`"),
    ("webdis", "get-1m", "GET 1 MiB, `GET /GET/bench:k1m`"),
]
LABEL = {(t, s): label for t, s, label in ORDER}
RANK = {(t, s): i for i, (t, s, _) in enumerate(ORDER)}


def num(v):
    return None if v in ("-", "", None) else float(v)


def fmt_lat(us):
    if us is None:
        return "—"
    if us < 1000:
        return f"{us:.0f} µs"
    return f"{us / 1000:.2f} ms"


def fmt_cpu(us):
    if us is None:
        return "—"
    return f"{us:.2f}" if us < 10 else f"{us:.1f}"


def fmt_rps(v):
    return f"{v:,.0f}".replace(",", "\u202f")


def fmt_mb(kb):
    return "—" if kb is None else f"{kb / 1024:.1f}"


def cell(values, fmt):
    """'median [min–max]' (just the value when there is one run)."""
    vals = [v for v in values if v is not None]
    if not vals:
        return "—"
    med = statistics.median(vals)
    if len(vals) == 1 or min(vals) == max(vals):
        return fmt(med)
    return f"{fmt(med)} [{fmt(min(vals))}–{fmt(max(vals))}]"


def load_meta(path):
    meta = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if "\t" in line:
                k, v = line.split("\t", 1)
                meta[k] = v
    return meta


def load_rows(path, clk_tck):
    groups = {}
    with open(path, encoding="utf-8") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            req = float(r["requests"])
            cmds = float(r["cmds"])
            tick_us = 1e6 / clk_tck
            gw = num(r["gw_ticks"])
            rd = num(r["redis_ticks"])
            busy = num(r.get("busy_ticks"))
            secs = num(r["seconds"])
            other = None
            if busy is not None and secs:
                # clamp: per-process and machine-wide tick counts are sampled
                # separately, so a quiet run can come out slightly negative
                other = max(0.0, (busy - (gw or 0) - (rd or 0)) / clk_tck / secs)
            row = {
                "rps": float(r["rps"]),
                "p50": num(r["p50_us"]),
                "p99": num(r["p99_us"]),
                "gw": gw * tick_us / req if gw is not None and req else None,
                "redis": rd * tick_us / req if rd is not None and req else None,
                "cmds": cmds,
                "rss": num(r["peak_rss_kb"]),
                "errors": int(r["errors"]),
                "requests": req,
                "other": other,
                "sys": (100.0 * num(r.get("gw_sys_ticks")) / gw)
                if gw and num(r.get("gw_sys_ticks")) is not None
                else None,
                "per_read": num(r.get("redis_cmds")) / num(r.get("redis_reads"))
                if num(r.get("redis_reads"))
                else None,
            }
            key = (r["target"], r["scenario"], int(r["conns"]))
            groups.setdefault(key, []).append(row)
    return groups


def med(groups, key, field):
    vals = [r[field] for r in groups.get(key, []) if r[field] is not None]
    return statistics.median(vals) if vals else None


def table(groups):
    out = [
        "| Target | Scenario | conns | runs | req/s | p50 | p99 "
        "| target CPU µs/req | target sys % | Redis CPU µs/req | target CPU µs/cmd | Redis CPU µs/cmd "
        "| Redis cmds/read | peak RSS MB | client+other CPU (cores) | errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    keys = sorted(groups, key=lambda k: (RANK.get(k[:2], 99), k[0], k[1], k[2]))
    for key in keys:
        rows = groups[key]
        target, scen, conns = key
        cmds = rows[0]["cmds"]
        per_cmd = cmds > 1
        gw = [r["gw"] for r in rows]
        rd = [r["redis"] for r in rows]
        out.append(
            "| "
            + " | ".join(
                [
                    target,
                    LABEL.get((target, scen), scen),
                    str(conns),
                    str(len(rows)),
                    cell([r["rps"] for r in rows], fmt_rps),
                    cell([r["p50"] for r in rows], fmt_lat),
                    cell([r["p99"] for r in rows], fmt_lat),
                    cell(gw, fmt_cpu),
                    cell([r["sys"] for r in rows], lambda v: f"{v:.0f}"),
                    cell(rd, fmt_cpu),
                    cell([g / cmds if g is not None else None for g in gw], fmt_cpu)
                    if per_cmd
                    else "—",
                    cell([v / cmds if v is not None else None for v in rd], fmt_cpu)
                    if per_cmd
                    else "—",
                    cell([r["per_read"] for r in rows], lambda v: f"{v:.1f}"),
                    cell([r["rss"] for r in rows], fmt_mb),
                    cell([r["other"] for r in rows], lambda v: f"{v:.2f}"),
                    str(sum(r["errors"] for r in rows)),
                ]
            )
            + " |"
        )
    return "\n".join(out)


def targets(groups, meta):
    """Check the project's performance targets against the medians."""
    lines = ["| Target | Measured | Verdict |", "|---|---|---|"]

    def verdict(ok):
        return "n/a (not measured)" if ok is None else ("met" if ok else "**NOT met**")

    r_get32 = ("restdis", "get", 32)
    w_get32 = ("webdis", "get", 32)
    r_cpu = med(groups, r_get32, "gw")
    w_cpu = med(groups, w_get32, "gw")
    ok = None if r_cpu is None or w_cpu is None else r_cpu <= w_cpu / 2
    lines.append(
        f"| restdis CPU per GET at c=32 ≤ ½ of webdis's | restdis {fmt_cpu(r_cpu)} µs, "
        f"webdis {fmt_cpu(w_cpu)} µs (½ = {fmt_cpu(w_cpu / 2 if w_cpu else None)}) | {verdict(ok)} |"
    )
    rr = med(groups, r_get32, "redis")
    ok = None if rr is None else rr <= 1.0
    lines.append(
        f"| Redis CPU per GET under restdis at c=32 ≤ 1.0 µs | {fmt_cpu(rr)} µs | {verdict(ok)} |"
    )
    for conns in (32, 256, 1):
        key = ("restdis", "pipeline", conns)
        if key in groups:
            g = med(groups, key, "gw")
            cmds = groups[key][0]["cmds"]
            pc = g / cmds if g is not None else None
            ok = None if pc is None else pc <= 1.0
            lines.append(
                f"| `/pipeline` restdis CPU ≤ 1 µs per command (c={conns}) | {fmt_cpu(pc)} µs | {verdict(ok)} |"
            )
            break
    else:
        lines.append("| `/pipeline` restdis CPU ≤ 1 µs per command | — | n/a (not measured) |")
    rp = med(groups, r_get32, "p99")
    wp = med(groups, w_get32, "p99")
    ok = None if rp is None or wp is None else rp <= wp
    lines.append(
        f"| p99 of GET at c=32 no worse than webdis | restdis {fmt_lat(rp)}, webdis {fmt_lat(wp)} | {verdict(ok)} |"
    )
    r50 = med(groups, ("restdis", "get", 1), "p50")
    b50 = med(groups, ("redis-benchmark", "get-P1", 1), "p50")
    ok = None if r50 is None or b50 is None else r50 - b50 <= 60
    lines.append(
        f"| p50 of GET at c=1 within 60 µs of redis-benchmark's | restdis {fmt_lat(r50)}, "
        f"redis-benchmark {fmt_lat(b50)} | {verdict(ok)} |"
    )
    for conns in sorted({k[2] for k in groups if k[1] == "get-1m"}):
        r1m = med(groups, ("restdis", "get-1m", conns), "gw")
        w1m = med(groups, ("webdis", "get-1m", conns), "gw")
        b1m = med(groups, ("restdis", "get-1m-b64", conns), "gw")
        ok = None if r1m is None or w1m is None else r1m <= 1.5 * w1m
        lines.append(
            f"| GET 1 MiB: restdis CPU ≤ 1.5× webdis's (c={conns}) | restdis {fmt_cpu(r1m)} µs, "
            f"webdis {fmt_cpu(w1m)} µs | {verdict(ok)} |"
        )
        ok = None if r1m is None or b1m is None else b1m <= 1.5 * r1m
        lines.append(
            f"| GET 1 MiB: base64 ≤ 1.5× plain (c={conns}) | base64 {fmt_cpu(b1m)} µs, "
            f"plain {fmt_cpu(r1m)} µs | {verdict(ok)} |"
        )
    sb = small_big(meta).get(("restdis", "restdis", 2))
    if sb:
        p99 = statistics.median(r["small_p99_ms"] for r in sb)
        lines.append(
            f"| small GETs beside 2 clients fetching 8 MiB: p99 ≤ 5 ms | {p99:.2f} ms | {verdict(p99 <= 5)} |"
        )
    idle = num(meta.get("idle_rss_kb"))
    ok = None if idle is None else idle <= 15 * 1024
    lines.append(f"| idle RSS ≤ 15 MB | {fmt_mb(idle)} MB | {verdict(ok)} |")
    ic = idle_conns(meta)
    if ic:
        n, rss = ic.get("conns"), ic.get("rss_idle_kb")
        ok = None if rss is None or ic.get("failed") else rss * 1024 <= 150e6 and n >= 5000
        lines.append(
            f"| 5,000 idle keep-alive connections ≤ 150 MB | {n:.0f} connections: "
            f"{rss * 1024 / 1e6:.1f} MB ({rss / 1024:.1f} MiB), {ic.get('failed', 0):.0f} failed | "
            f"{verdict(ok)} |"
        )
    st = [float(x) for x in meta.get("startup_ms", "").split()]
    s_med = statistics.median(st) if st else None
    ok = None if s_med is None else s_med < 100
    lines.append(
        f"| start to first answer < 100 ms | "
        f"{cell(st, lambda v: f'{v:.1f} ms')} | {verdict(ok)} |"
    )
    return "\n".join(lines)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    meta = load_meta(sys.argv[2])
    clk = float(meta.get("clk_tck", "100"))
    groups = load_rows(sys.argv[1], clk)
    m = meta.get
    print("# restdis load benchmark results\n")
    print(f"- Date: {m('date', '?')}")
    print(f"- Command: `{m('command', '?')}`")
    print(
        f"- Machine: {m('nproc', '?')} CPUs, {m('cpu', '?')}, {m('mem', '?')} RAM, "
        f"kernel {m('kernel', '?')}, {m('os', '?')}"
    )
    print(f"- Load average before / after: {m('loadavg_start', '?')} / {m('loadavg_end', '?')}")
    print(
        f"- Versions: restdis {m('restdis_version', '—')}; {m('redis_version', '?')}; "
        f"wrk {m('wrk_version', '?')}; webdis {m('webdis_version', '—')}"
    )
    print(
        f"- Settings: {m('runs', '?')} run(s) per row, {m('seconds', '?')} s per run "
        f"({m('c1_seconds', '?')} s at c=1), {m('warmup', '?')} s warm-up before each run, "
        f"wrk -t1; targets alternate run by run; CLK_TCK {m('clk_tck', '?')}"
    )
    print()
    print("Cells are medians with [min–max] over the runs. CPU µs/req = (utime+stime of the")
    print("process over the run, from /proc/PID/stat) / completed requests; \"target\" is the")
    print("process under test (restdis or webdis; none for redis-benchmark). µs/cmd divides by")
    print("the commands in one request (100 for /pipeline, 5 for /multi-exec). Peak RSS is")
    print(f"VmHWM during the run ({m('hwm_note', 'restdis only')}). Errors = non-2xx responses + socket errors.")
    print("\"target sys %\" is the kernel (stime) share of the target's CPU. \"Redis cmds/read\" =")
    print("commands Redis processed / socket reads it made (INFO stats): how well requests are")
    print("batched into pipelines on the way to Redis (1 = no batching).")
    print("\"client+other\" is the machine's busy CPU during the run (/proc/stat) minus the target")
    print("and Redis: the load generator (wrk ≈ 0.4 core at 80k req/s) plus anything else running;")
    print("clearly more than that means the run was disturbed.")
    print()
    print(table(groups))
    print()
    if m("startup_ms") is not None or m("idle_rss_kb") is not None:
        startup_section(m)
    if small_big(meta):
        small_big_section(meta)
    if m("skipped"):
        print(f"\nSkipped: {m('skipped')}")
    print("\n## Targets\n")
    print(targets(groups, meta))


def idle_conns(meta):
    """The idle-conns result (`key=value` numbers), or {} when it did not run."""
    out = {}
    for pair in (meta.get("idle_conns") or "").split():
        key, _, value = pair.partition("=")
        if num(value) is not None:
            out[key] = num(value)
    return out if "rss_idle_kb" in out else {}


def small_big(meta):
    """small-big results: (target of the big clients, target of the small ones, big clients)
    -> [ {field: number}, ... one per run ]."""
    out = {}
    for key, line in meta.items():
        if not key.startswith("small_big_"):
            continue
        fields = dict(pair.partition("=")[::2] for pair in line.split())
        words = ("target", "big_encoding", "small_via")
        row = {k: num(v) for k, v in fields.items() if k not in words}
        group = (fields.get("target"), fields.get("small_via"), int(row.get("big_clients") or 0))
        out.setdefault(group, []).append(row)
    return out


def small_big_section(meta):
    print("\n## Small requests beside big ones\n")
    print("One client sends small GETs (100 B) one after the other; in the second row of each")
    print("target, two other clients keep fetching an 8 MiB value at the same time")
    print("(`scripts/bench.d/small_beside_big.py`, Python `http.client`, keep-alive). Latency is")
    print("per small request as the client sees it; big MB/s is what the two big clients received.")
    print("In the row whose small GETs go to Redis, they skip the gateway (RESP straight to Redis)")
    print("while the big values still go through restdis: what Redis itself adds.\n")
    print("| Big values via | small GETs via | big clients | runs | small req | small p50 | small p99 | small max | big MB/s | target CPU s | Redis CPU s | errors |")
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for (target, via, big), rows in sorted(small_big(meta).items()):
        def c(field, fmt):
            return cell([r[field] for r in rows if r.get(field) is not None], fmt)
        print(
            f"| {target} | {via} | {big} | {len(rows)} | {c('small_requests', lambda v: f'{v:.0f}')} | "
            f"{c('small_p50_ms', lambda v: f'{v:.2f} ms')} | {c('small_p99_ms', lambda v: f'{v:.2f} ms')} | "
            f"{c('small_max_ms', lambda v: f'{v:.1f} ms')} | {c('big_mb_per_s', lambda v: f'{v:.0f}')} | "
            f"{c('target_cpu_s', lambda v: f'{v:.2f}')} | {c('redis_cpu_s', lambda v: f'{v:.2f}')} | "
            f"{sum(r.get('errors') or 0 for r in rows):.0f} |"
        )


def startup_section(m):
    print("## restdis start-up and idle\n")
    st = [float(x) for x in (m("startup_ms") or "").split()]
    srss = [float(x) for x in (m("startup_rss_kb") or "").split()]
    print(f"- Start to first successful answer (`POST /` GET), {len(st)} attempt(s): "
          f"{cell(st, lambda v: f'{v:.1f} ms')}")
    print(f"- RSS right after the first answer: {cell(srss, lambda v: f'{v / 1024:.1f} MB')}")
    print(f"- Idle RSS of the benchmarked instance after /readyz: {fmt_mb(num(m('idle_rss_kb')))} MB"
          f" (threads: {m('idle_threads', '?')})")
    print(f"- Idle CPU over {m('idle_seconds', '?')} s: {m('idle_cpu_ticks', '?')} ticks")
    ic = idle_conns({"idle_conns": m("idle_conns")})
    if ic:
        per = (ic["rss_idle_kb"] - ic.get("rss_before_kb", 0)) / max(ic.get("conns", 1), 1)
        print(f"- {ic.get('conns', 0):.0f} idle keep-alive connections (a separate fresh instance): RSS "
              f"{ic.get('rss_before_kb', 0) / 1024:.1f} → {ic['rss_idle_kb'] / 1024:.1f} MiB "
              f"({per:.1f} KiB each); after one more request on every connection at once "
              f"{ic.get('rss_after_request_kb', 0) / 1024:.1f} MiB; after closing them "
              f"{ic.get('rss_closed_kb', 0) / 1024:.1f} MiB (memory the allocator keeps)")
    print(f"- Peak RSS over the whole benchmark, warm-ups included: "
          f"{fmt_mb(num(m('overall_hwm_kb')))} MB")


if __name__ == "__main__":
    main()
