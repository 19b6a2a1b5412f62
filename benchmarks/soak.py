"""Soak test: Locust at a steady rate over every endpoint of a fresh TorchServe, for minutes or hours.

    python -m benchmarks.soak --duration 10m          # `make soak` (DURATION=10m)
    python -m benchmarks.soak --duration 1m --out /tmp/soak   # a quick check of the script itself

Reports, and writes under --out (soak_latency.csv, soak_rss.csv, soak.json, soak.png):
- failures (must be 0; refused-and-renewed keys are counted apart, as "token refresh");
- p50/p95 latency per endpoint per minute;
- each worker's RSS before the load, after the warm-up and at the end (growth after the warm-up must
  stay under 10%), and any worker restart (its PID changing: must not happen);
- the log folder's size, bytes logged per request, and the ceiling set by serving/log4j2.xml's rotation.
Exit status 1 when a check fails. Run it on a quiet machine: the figures are wall-clock latencies.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import psutil

from archives.build import endpoints
from serving.server import LOG_CONFIG, ROOT, Server, running_pid, start_isolated, stop

LOCUSTFILE = ROOT / "tests" / "load" / "locustfile.py"
TOKEN_REFRESH = "token refresh"  # the locustfile's name for a refused key's attempt
MAX_RSS_GROWTH = 0.10
SAMPLE_S = 10.0


def seconds(text: str) -> int:
    """'90', '90s', '10m', '2h' -> seconds."""
    match = re.fullmatch(r"(\d+)([smh]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90s, 10m, 2h)")
    return int(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2]]


def log_ceiling() -> int:
    """Most bytes the rotated logs can hold: appenders x (1 + kept files) x size, from serving/log4j2.xml's defaults."""
    xml = LOG_CONFIG.read_text()
    size = re.search(r"restoration\.log\.size:-(\d+)([KMG]?B)", xml)
    files = int(re.search(r"restoration\.log\.files:-(\d+)", xml)[1])
    unit = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}[size[2]]
    return xml.count("<RollingFile") * (1 + files) * int(size[1]) * unit


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class RssSampler:
    """RSS of every worker (and the frontend), sampled while the load runs; notes any worker restart."""

    def __init__(self, server: Server, names: list[str]) -> None:
        self.server, self.names = server, names
        self.tokens = server.tokens("management")  # renewed if the run outlives the key
        self.rows: list[tuple[float, str, int, float]] = []  # (t, process, pid, MB)
        self.pids = self.worker_pids()
        self.restarts: list[str] = []
        self.t0 = time.time()

    def worker_pids(self) -> dict[str, list[int]]:
        return {name: sorted(w["pid"] for w in self.server.workers(name, self.tokens)) for name in self.names}

    def sample(self) -> None:
        now = self.worker_pids()
        for name in self.names:
            if now[name] != self.pids[name]:
                self.restarts.append(f"{name}: worker PIDs {self.pids[name]} -> {now[name]}")
                self.pids[name] = now[name]
        t = time.time() - self.t0
        processes = [(name, pid) for name in self.names for pid in now[name]] + [("frontend", running_pid(self.server.state))]
        for name, pid in processes:
            try:
                self.rows.append((t, name, pid, psutil.Process(pid).memory_info().rss / 2**20))
            except (psutil.Error, TypeError):
                pass

    def summary(self, warmup_s: float) -> dict[str, dict[str, float]]:
        """Per process: MB at the start, after the warm-up, at the end, and the growth after the warm-up."""
        out = {}
        for name in sorted({r[1] for r in self.rows}):
            rows = [r for r in self.rows if r[1] == name]
            warm = next((r for r in rows if r[0] >= warmup_s), rows[-1])
            out[name] = {"start_mb": rows[0][3], "warm_mb": warm[3], "end_mb": rows[-1][3],
                         "growth_after_warmup": rows[-1][3] / warm[3] - 1}
        return out


def run_locust(server: Server, names: list[str], duration_s: int, rate: float, users: int, request_log: Path,
               sampler: RssSampler) -> int:
    env = {k: v for k, v in os.environ.items() if k != "TS_TOKEN"}
    env.update(TS_KEY_FILE=str(server.key_file), TS_ENDPOINTS=",".join(names), TS_RATE=str(rate / users),
               TS_REQUEST_LOG=str(request_log))
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(users), "-r", str(users),
           "-t", f"{duration_s}s", "--host", server.inference_url, "--only-summary", "--stop-timeout", "60"]
    with subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as locust:
        while locust.poll() is None:
            sampler.sample()
            time.sleep(SAMPLE_S)
        tail = locust.stderr.read()[-3000:]
    sampler.sample()
    if locust.returncode not in (0, 1):  # 1: some request failed, which the report shows
        raise RuntimeError(f"locust exited with {locust.returncode}:\n{tail}")
    return locust.returncode


def latency_by_minute(request_log: Path) -> tuple[list[dict], int, int]:
    """Rows of (minute, endpoint, requests, failures, p50_ms, p95_ms); total failures; token refreshes."""
    by_key: dict[tuple[int, str], list[tuple[float, int]]] = defaultdict(list)
    rows = list(csv.reader(request_log.open()))
    t0 = min(float(r[0]) for r in rows)
    refreshes = failures = 0
    for start, name, ms, ok in rows:
        if name == TOKEN_REFRESH:
            refreshes += 1
            continue
        failures += ok != "1"
        by_key[(int((float(start) - t0) // 60), name.rsplit("/", 1)[-1])].append((float(ms), int(ok)))
    table = []
    for (minute, name), values in sorted(by_key.items()):
        ms = np.array([v[0] for v in values])
        table.append({"minute": minute + 1, "endpoint": name, "requests": len(values),
                      "failures": sum(1 - v[1] for v in values),
                      "p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1)})
    return table, failures, refreshes


def plot(table: list[dict], rss_rows: list[tuple], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, mem) = plt.subplots(1, 2, figsize=(13, 4.5))
    for name in sorted({r["endpoint"] for r in table}):
        rows = [r for r in table if r["endpoint"] == name]
        lat.plot([r["minute"] for r in rows], [r["p95_ms"] for r in rows], "o-", label=f"{name} p95")
        lat.plot([r["minute"] for r in rows], [r["p50_ms"] for r in rows], "x:", color=lat.lines[-1].get_color())
    lat.set(xlabel="minute", ylabel="latency (ms): p95 solid, p50 dotted", title="latency per endpoint per minute")
    lat.legend(fontsize=8)
    for name in sorted({r[1] for r in rss_rows}):
        rows = [r for r in rss_rows if r[1] == name]
        mem.plot([r[0] / 60 for r in rows], [r[3] for r in rows], label=name)
    mem.set(xlabel="minute", ylabel="RSS (MB)", title="resident memory per process")
    mem.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_csv(path: Path, header: list[str], rows: list) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=seconds, default=seconds("10m"), help="e.g. 90s, 10m, 2h (default 10m)")
    parser.add_argument("--rate", type=float, default=3.0, help="requests per second, all endpoints together")
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--warmup", type=seconds, default=None, help="RSS growth is measured after it (default: a tenth, at most 60s)")
    parser.add_argument("--endpoints", default=",".join(endpoints()))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    names = [n for n in args.endpoints.split(",") if n]
    warmup = min(60, args.duration // 10) if args.warmup is None else args.warmup
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    print(f"starting TorchServe with {', '.join(names)} in {work}", flush=True)
    server = start_isolated(work, names)
    try:
        logs_before = folder_bytes(server.state / "logs")
        sampler = RssSampler(server, names)
        print(f"Locust: {args.rate} requests/s over {args.users} users for {args.duration} s", flush=True)
        run_locust(server, names, args.duration, args.rate, args.users, work / "requests.csv", sampler)
        logs_after = folder_bytes(server.state / "logs")
        console = (server.state / "torchserve.log").stat().st_size
    finally:
        stop(server.state)

    table, failures, refreshes = latency_by_minute(work / "requests.csv")
    memory = sampler.summary(warmup)
    requests_sent = sum(r["requests"] for r in table)
    per_request = (logs_after - logs_before) / max(1, requests_sent)
    summary = {
        "duration_s": args.duration, "rate_per_s": args.rate, "users": args.users, "warmup_s": warmup,
        "requests": requests_sent, "failures": failures, "token_refreshes": refreshes, "worker_restarts": sampler.restarts,
        "rss": memory, "log_folder_bytes": logs_after, "log_bytes_per_request": round(per_request, 1),
        "log_bytes_per_day_at_this_rate": round(per_request * args.rate * 86400), "log_ceiling_bytes": log_ceiling(),
        "console_log_bytes": console,
    }
    write_csv(args.out / "soak_latency.csv", list(table[0]), [list(r.values()) for r in table])
    write_csv(args.out / "soak_rss.csv", ["t_s", "process", "pid", "rss_mb"],
              [(round(t, 1), name, pid, round(mb, 1)) for t, name, pid, mb in sampler.rows])
    (args.out / "soak.json").write_text(json.dumps(summary, indent=2))
    plot(table, sampler.rows, args.out / "soak.png")

    print(f"\n{requests_sent} requests, {failures} failed, {refreshes} key renewal(s), "
          f"worker restarts: {sampler.restarts or 'none'}")
    print("minute  endpoint    requests  failures  p50 ms  p95 ms")
    for r in table:
        print(f"{r['minute']:6d}  {r['endpoint']:10s} {r['requests']:9d} {r['failures']:9d} {r['p50_ms']:7.0f} {r['p95_ms']:7.0f}")
    print("process     RSS MB: start   after warm-up   end   growth after warm-up")
    for name, m in memory.items():
        print(f"{name:10s} {m['start_mb']:14.0f} {m['warm_mb']:15.0f} {m['end_mb']:5.0f} {m['growth_after_warmup']:+9.1%}")
    print(f"log folder: {logs_after / 2**20:.1f} MiB ({per_request:.0f} B per request, "
          f"{summary['log_bytes_per_day_at_this_rate'] / 2**20:.0f} MiB a day at this rate before rotation; "
          f"rotation keeps at most {summary['log_ceiling_bytes'] / 2**20:.0f} MiB); console log {console} B")
    print(f"results in {args.out}")
    worker_growth = [m["growth_after_warmup"] for name, m in memory.items() if name != "frontend"]
    ok = (failures == 0 and not sampler.restarts and max(worker_growth, default=0) < MAX_RSS_GROWTH
          and logs_after <= log_ceiling())
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
