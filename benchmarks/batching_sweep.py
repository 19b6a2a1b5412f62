"""Batching sweep: batchSize x maxBatchDelay x workers x threads per endpoint, at 1, 4 and 16 clients.

    python -m benchmarks.batching_sweep [--endpoints superres,retouch] [--quick] [--seconds 5]
        [--batch-sizes 1,2,4,8] [--delays 1,5,20] [--workers 1,2] [--threads 1,2] [--clients 1,4,16] [--side 512]

For every (batchSize, maxBatchDelay, threads) of an endpoint, an archive is built with those values in
its model-config.yaml (model registration stays off) and served by a fresh isolated TorchServe;
workers are then scaled through the management API, and for each worker count, closed-loop clients
post the same photo (benchmarks/serve_latency.py's: answers of --side px, superres 1/4 of it in)
for --seconds per concurrency. batchSize 1 never waits, so it is run with one delay only.
Writes benchmarks/results/batching_sweep.csv and .png (throughput and p50 against clients) and prints,
per endpoint, the settings that keep the one-client p50 within 25% of the best while serving
4 and 16 clients fastest (``--recommend-only`` prints that again from the CSV, measuring nothing).

The full grid is 20 servers and 120 measurements per endpoint (about 20 minutes each on 2 cores);
--quick (batchSize 1,4; delays 1,20 ms; 2 threads; 3 s windows: 3 servers and 18 measurements per
endpoint) runs all five endpoints in about 12 minutes; --endpoints bounds either. The plan and its
estimated duration are printed first.

maxBatchDelay 0 cannot be swept: TorchServe 0.12 reads a model-config.yaml value of 0 as unset and
waits its 100 ms default (the sweep records the values the server reports, which shows it).
"""
from __future__ import annotations

import argparse
import csv
import itertools
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import requests
import yaml

from archives.build import ROOT, build
from archives.build import endpoints as all_endpoints
from benchmarks.common import RESULTS
from benchmarks.http_load import closed_loop
from benchmarks.serve_latency import ANSWER_SIDE, model_scale, photo_png
from serving.server import Server, start_isolated, stop, wait_ready

CSV_PATH, PLOT_PATH = RESULTS / "batching_sweep.csv", RESULTS / "batching_sweep.png"
FULL = {"batch_sizes": (1, 2, 4, 8), "delays": (1, 5, 20), "workers": (1, 2), "threads": (1, 2), "seconds": 5.0}
QUICK = {"batch_sizes": (1, 4), "delays": (1, 20), "workers": (1, 2), "threads": (2,), "seconds": 3.0}
CLIENTS = (1, 4, 16)
SERVER_START_S = 25  # build, JVM start, a worker READY, the second worker scaled up: for the printed estimate


@dataclass(frozen=True)
class Variant:
    """What one archive is built with: TorchServe's batching keys and the handler's threads."""

    batch_size: int
    max_batch_delay: int  # ms
    threads: int

    def model_config(self, endpoint: str) -> dict:
        config = yaml.safe_load((ROOT / "archives" / endpoint / "model-config.yaml").read_text())
        config.update(batchSize=self.batch_size, maxBatchDelay=self.max_batch_delay, minWorkers=1, maxWorkers=1)
        config.setdefault("handler", {})["threads"] = self.threads
        return config


def variants(batch_sizes: tuple[int, ...], delays: tuple[int, ...], threads: tuple[int, ...]) -> list[Variant]:
    """Every combination, with batchSize 1 at one delay only (a batch of one never waits)."""
    return [Variant(b, d, t) for t in threads for b in batch_sizes for d in (delays[:1] if b == 1 else delays)]


def serve(endpoint: str, variant: Variant, work: Path) -> Server:
    """A fresh server with only this variant's archive, READY."""
    config = work / "model-config.yaml"
    config.write_text(yaml.safe_dump(variant.model_config(endpoint)))
    build(endpoint, work / "model_store", config)
    server = start_isolated(work, [])  # builds nothing more: it serves what work/model_store holds (load_models=all)
    try:
        wait_ready(server, [endpoint])
    except RuntimeError:
        stop(server.state)
        raise
    return server


def described(server: Server, endpoint: str) -> dict:
    reply = requests.get(f"{server.management_url}/models/{endpoint}", headers=server.headers("management"), timeout=30)
    reply.raise_for_status()
    return reply.json()[0]


def scale(server: Server, endpoint: str, workers: int) -> None:
    reply = requests.put(f"{server.management_url}/models/{endpoint}",
                         params={"min_worker": workers, "max_worker": workers, "synchronous": "true"},
                         headers=server.headers("management"), timeout=300)
    reply.raise_for_status()
    deadline = time.time() + 300
    while sum(w["status"] == "READY" for w in described(server, endpoint)["workers"]) != workers:
        if time.time() > deadline:
            raise RuntimeError(f"{endpoint}: {workers} workers not READY after 300 s")
        time.sleep(0.5)


def sweep_endpoint(endpoint: str, grid: dict, clients: tuple[int, ...], side: int) -> list[dict]:
    upload = side // model_scale(endpoint)
    body = photo_png(upload)
    path = f"/predictions/{endpoint}"
    rows = []
    for variant in variants(grid["batch_sizes"], grid["delays"], grid["threads"]):
        with tempfile.TemporaryDirectory() as work:
            server = serve(endpoint, variant, Path(work))
            try:
                info = described(server, endpoint)
                for workers in grid["workers"]:
                    scale(server, endpoint, workers)
                    for n in clients:
                        load = closed_loop(server.inference_url, server.headers(), path, body, n, grid["seconds"])
                        rows.append({"endpoint": endpoint, "input": f"{upload}x{upload}",
                                     **asdict(variant), "workers": workers, **load.summary(),
                                     "served_batch_size": info["batchSize"],
                                     "served_max_batch_delay": info["maxBatchDelay"]})
                        print(", ".join(f"{k}={v}" for k, v in rows[-1].items()), flush=True)
            finally:
                stop(server.state)
    return rows


def setting(row: dict) -> tuple:
    return row["batch_size"], row["max_batch_delay"], row["workers"], row["threads"]


ONE_CLIENT_SLACK = 1.25  # 3 s windows at one client differ by this much between repeats of one setting


def recommend(rows: list[dict]) -> dict[str, dict]:
    """Per endpoint: among settings whose one-client p50 is within ONE_CLIENT_SLACK of the best one's,
    the one with the most requests/s averaged over the higher concurrencies (on a tie: the smaller
    batch, then fewer workers and threads)."""
    chosen = {}
    for endpoint in dict.fromkeys(r["endpoint"] for r in rows):
        mine = [r for r in rows if r["endpoint"] == endpoint]
        low = min(r["clients"] for r in mine)
        one = {setting(r): r["p50_ms"] for r in mine if r["clients"] == low}
        fair = [s for s, p50 in one.items() if p50 <= ONE_CLIENT_SLACK * min(one.values())]
        busy = {s: statistics.mean(r["requests_per_second"] for r in mine if setting(r) == s and r["clients"] > low)
                for s in fair}
        best = max(fair, key=lambda s: (round(busy[s], 1), -s[0], -s[2], -s[3]))
        chosen[endpoint] = {"batch_size": best[0], "max_batch_delay": best[1], "workers": best[2], "threads": best[3],
                            "requests_per_second_under_load": round(busy[best], 2), f"p50_ms_at_{low}": one[best]}
    return chosen


def print_recommendations(rows: list[dict]) -> None:
    for endpoint, best in recommend(rows).items():
        print(f"{endpoint}: {best}")


def write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path: Path) -> list[dict]:
    """Rows as write_csv wrote them, numbers as numbers."""
    with open(path, newline="") as f:
        return [{k: v if k == "endpoint" or k == "input" else float(v) if "." in v else int(v) for k, v in r.items()}
                for r in csv.DictReader(f)]


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    names = list(dict.fromkeys(r["endpoint"] for r in rows))
    fig, axes = plt.subplots(len(names), 2, figsize=(13, 3.6 * len(names)), squeeze=False)
    for (ax_rps, ax_p50), endpoint in zip(axes, names):
        mine = [r for r in rows if r["endpoint"] == endpoint]
        for key in dict.fromkeys(setting(r) for r in mine):
            line = sorted((r for r in mine if setting(r) == key), key=lambda r: r["clients"])
            served = line[0]["served_max_batch_delay"]  # differs when TorchServe did not take the value (0)
            label = "batch {} / {} ms / {} worker(s) / {} thread(s)".format(*key) + (
                f" (served {served} ms)" if served != key[1] else "")
            style = "-" if key[2] == 1 else "--"
            ax_rps.plot([r["clients"] for r in line], [r["requests_per_second"] for r in line], style, marker="o", label=label)
            ax_p50.plot([r["clients"] for r in line], [r["p50_ms"] for r in line], style, marker="o", label=label)
        for ax, what in ((ax_rps, "requests/s"), (ax_p50, "p50 latency (ms)")):
            ax.set_xscale("log", base=2)
            ax.set_xticks(sorted({r["clients"] for r in mine}), [str(c) for c in sorted({r["clients"] for r in mine})])
            ax.set_xlabel("concurrent clients")
            ax.set_ylabel(what)
            ax.set_title(f"{endpoint} ({mine[0]['input']} in): {what}")
            ax.grid(alpha=0.3)
        ax_p50.set_yscale("log")
        ax_p50.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def numbers(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoints", default="", help="comma-separated (default: every archive)")
    parser.add_argument("--quick", action="store_true", help="the small grid and 3 s windows")
    for name in ("batch-sizes", "delays", "workers", "threads"):
        parser.add_argument(f"--{name}", type=numbers, help="comma-separated; overrides the grid")
    parser.add_argument("--clients", type=numbers, default=CLIENTS)
    parser.add_argument("--seconds", type=float, help="window per measurement")
    parser.add_argument("--side", type=int, default=ANSWER_SIDE, help="answer side in px (superres gets side/4 in)")
    parser.add_argument("--out", type=Path, default=CSV_PATH, help="CSV path; the plot goes beside it (.png)")
    parser.add_argument("--recommend-only", action="store_true", help="no measurement: recommend from the CSV at --out")
    args = parser.parse_args(argv)
    if args.recommend_only:
        rows = read_csv(args.out)
        print_recommendations(rows)
        return rows
    grid = dict(QUICK if args.quick else FULL)
    for key in ("batch_sizes", "delays", "workers", "threads", "seconds"):
        if getattr(args, key) is not None:
            grid[key] = getattr(args, key)
    names = [n for n in args.endpoints.split(",") if n] or all_endpoints()
    count = len(variants(grid["batch_sizes"], grid["delays"], grid["threads"]))
    runs = count * len(grid["workers"]) * len(args.clients)
    minutes = len(names) * (count * SERVER_START_S + runs * (grid["seconds"] + 1.0)) / 60
    print(f"{len(names)} endpoint(s) x {count} servers x {len(grid['workers'])} worker counts x "
          f"{len(args.clients)} concurrencies x {grid['seconds']} s: about {minutes:.0f} minutes", flush=True)
    rows = [row for name in names for row in sweep_endpoint(name, grid, args.clients, args.side)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out)
    plot(rows, args.out.with_suffix(".png"))
    print_recommendations(rows)
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return rows


if __name__ == "__main__":
    main()
