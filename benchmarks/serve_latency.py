"""Serving latency and throughput against issue 9's targets, in one run, through a real TorchServe.

    python -m benchmarks.serve_latency [endpoint ...] [--requests 15] [--seconds 10] [--readme]
    python -m benchmarks.serve_latency --readme-only      # rewrite the docs/serving.md table from the JSON

One fresh TorchServe (every archive as shipped: its model-config.yaml, token auth, real HTTP) and, in
this process, each endpoint's own handler class on the same TorchScript file with the same
``threads``. The upload is one real photo (scikit-image's astronaut) as PNG, at 512/scale px a side,
so every answer is 512x512 (superres: 128x128 in). Printed and written to
benchmarks/results/serve_latency.json (--out elsewhere; per endpoint, ``median_seconds`` is the HTTP p50):

1. per endpoint, p50 of: an HTTP round trip (one client); the in-process handler (``handle``: decode,
   predict, encode; no HTTP, no frontend); the in-process predict stage (the model on the batch
   tensor, torch.inference_mode). Target: HTTP / predict <= 1.25. The three run interleaved, one of
   each per round, so a drifting background load weighs on all three alike.
2. per endpoint, a 16x16 upload with one client: HTTP p50. Target: <= 10 ms.
3. superres with 64x64 uploads from 4 concurrent clients for --seconds: requests/s.
   Target: >= 114 (2x the 57 req/s that issue 9 measured).
4. where the server's time goes on the 512x512 rounds of (1) (after two unmeasured requests), from the
   /metrics counters' growth over them, per request: the frontend's latency (job queued to answer written) and queue time, and the
   worker's own stages (DecodeMs, BatchMs, PredictMs, EncodeMs). HTTP p50 minus the frontend's latency
   is the client, HTTP parsing and transfer; the frontend's latency minus the worker's stages is the
   queue, the frontend-worker socket and TorchServe's Python worker around the handler.

--readme rewrites the table between the bench-serve markers of docs/serving.md (where README.md's
measurements moved, issue 25) from the results.
"""
from __future__ import annotations

import argparse
import io
import json
import re
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image
from skimage import data as photos

from archives.build import endpoints as all_endpoints
from benchmarks.common import RESULTS, ROOT, machine
from benchmarks.http_load import Connection, closed_loop, timed_post
from serving.metrics import counter, scrape
from serving.server import start_isolated, stop
from tests.support import handler_for, run_handler

sys.path.insert(0, str(ROOT / "handlers"))  # handler modules import each other by bare name, as TorchServe loads them
from image_io import decode  # noqa: E402
from model_metadata import load as load_with_metadata  # noqa: E402

RESULTS_PATH = RESULTS / "serve_latency.json"
DOC = ROOT / "docs" / "serving.md"  # the table the --readme options rewrite (the README links it)
README_MARKERS = ("<!-- bench-serve:begin -->", "<!-- bench-serve:end -->")
ANSWER_SIDE = 512
TINY_SIDE = 16
THROUGHPUT = {"endpoint": "superres", "side": 64, "clients": 4}
SETTLE = 0.1  # seconds between two measured calls (see interleaved)
TARGETS = {"http_over_predict": 1.25, "tiny_http_p50_ms": 10.0, "throughput_rps": 2 * 57.0}
# Per-request means read from /metrics (name -> (counter, to milliseconds)); see (4) above.
SERVER_COUNTERS = {"frontend": ("ts_inference_latency_microseconds", 1e-3), "queue": ("ts_queue_latency_microseconds", 1e-3),
                   **{stage.lower(): (f"{stage}Ms", 1.0) for stage in ("Decode", "Batch", "Predict", "Encode")}}


def photo_png(side: int) -> bytes:
    """The astronaut photo, resized to side x side (area-averaged when smaller), as PNG."""
    img = Image.fromarray(photos.astronaut()).resize((side, side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def model_scale(endpoint: str) -> int:
    """Output side / input side, as the endpoint's TorchScript file records it."""
    return load_with_metadata(ROOT / "archives" / endpoint / f"{endpoint}.pt")[1].scale


def p50_ms(seconds: list[float]) -> float:
    return round(statistics.median(seconds) * 1e3, 2)


def interleaved(calls: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """p50 ms of each call (each returns its own seconds), one of each per round, after a warm-up round.

    Each call starts SETTLE seconds after the last: a finished call's OpenMP threads keep spinning for
    a while, on the cores the next call needs (measured: retouch over HTTP 104 ms right after an
    in-process call, 90 ms after a pause)."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for round_ in range(rounds + 1):
        for name, call in calls.items():
            time.sleep(SETTLE)
            seconds = call()
            if round_:
                times[name].append(seconds)
    return {name: p50_ms(values) for name, values in times.items()}


def stopwatch(fn: Callable[[], object]) -> Callable[[], float]:
    def run() -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    return run


def in_process_calls(handler, body: bytes) -> dict[str, Callable[[], float]]:
    """The handler's whole ``handle`` on one request, and its predict stage alone on the same image."""
    image = decode(body, int(handler.config["max_input_pixels"]))
    options = handler.check_options(handler.parse_options({}), image)

    def handle() -> None:
        status, _, answer = run_handler(handler, [{"body": body}])[0]
        if status != 200:
            raise RuntimeError(f"in-process {status}: {answer[:300]!r}")

    return {"handler": stopwatch(handle), "predict": stopwatch(lambda: handler.predict(handler.to_batch([image]), options))}


def server_means_ms(before: str, after: str, name: str) -> dict[str, float]:
    """Per-request milliseconds of each of SERVER_COUNTERS between two scrapes of /metrics."""
    grown = lambda counter_name: counter(after, counter_name, name) - counter(before, counter_name, name)  # noqa: E731
    served = grown("ts_inference_requests_total")
    return {key: round(grown(counter_name) * to_ms / served, 2) for key, (counter_name, to_ms) in SERVER_COUNTERS.items()}


def measure_endpoint(name: str, conn: Connection, metrics_url: str, rounds: int) -> dict:
    handler = handler_for(name)
    scale = model_scale(name)
    side = ANSWER_SIDE // scale
    body, tiny = photo_png(side), photo_png(TINY_SIDE)
    path = f"/predictions/{name}"
    for _ in range(2):  # the worker's first calls run TorchScript's profiling passes: keep them out of the means
        timed_post(conn, path, body)
    before = scrape(metrics_url)
    p50 = interleaved({"http": lambda: timed_post(conn, path, body), **in_process_calls(handler, body)}, rounds)
    server = server_means_ms(before, scrape(metrics_url), name)
    tiny_p50 = interleaved({"http": lambda: timed_post(conn, path, tiny), **in_process_calls(handler, tiny)}, rounds)
    return {"input": f"{side}x{side}", "output": f"{side * scale}x{side * scale}", "rounds": rounds,
            "median_seconds": p50["http"] / 1e3, "http_p50_ms": p50["http"], "handler_p50_ms": p50["handler"],
            "predict_p50_ms": p50["predict"], "http_over_predict": round(p50["http"] / p50["predict"], 2),
            "tiny_http_p50_ms": tiny_p50["http"], "tiny_handler_p50_ms": tiny_p50["handler"],
            "server_means_ms": server}


def measure(names: list[str], rounds: int, seconds: float) -> dict:
    results: dict = {}  # endpoint -> its row, beside "throughput" (benchmarks/capacity.py reads the rows)
    with tempfile.TemporaryDirectory() as work:
        server = start_isolated(Path(work), names)
        try:
            conn = Connection(server.inference_url, server.headers())
            for name in names:
                results[name] = row = measure_endpoint(name, conn, server.metrics_url, rounds)
                print(f"{name}: {row}", flush=True)
            conn.close()
            if THROUGHPUT["endpoint"] in names:
                load = closed_loop(server.inference_url, server.headers(), f"/predictions/{THROUGHPUT['endpoint']}",
                                   photo_png(THROUGHPUT["side"]), THROUGHPUT["clients"], seconds)
                results["throughput"] = {**THROUGHPUT, **load.summary()}
        finally:
            stop(server.state)
    return results


def endpoint_rows(results: dict) -> dict[str, dict]:
    return {name: row for name, row in results.items() if isinstance(row, dict) and "http_p50_ms" in row}


def verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def readme_table(results: dict) -> str:
    """The results against the targets, as Markdown (printed, and put into docs/serving.md)."""
    ratio, tiny, rps = TARGETS["http_over_predict"], TARGETS["tiny_http_p50_ms"], TARGETS["throughput_rps"]
    rows = ["| endpoint | upload → answer | HTTP p50 | handler in-process p50 | model (predict) p50 | "
            f"HTTP / model (target ≤ {ratio}) | 16×16 upload, HTTP p50 (target ≤ {tiny:.0f} ms) |",
            "|---|---|---|---|---|---|---|"]
    for name, row in endpoint_rows(results).items():
        rows.append(f"| {name} | {row['input']} → {row['output']} | {row['http_p50_ms']:.1f} ms | "
                    f"{row['handler_p50_ms']:.1f} ms | {row['predict_p50_ms']:.1f} ms | "
                    f"{row['http_over_predict']:.2f}, {verdict(row['http_over_predict'] <= ratio)} | "
                    f"{row['tiny_http_p50_ms']:.1f} ms, {verdict(row['tiny_http_p50_ms'] <= tiny)} |")
    rows += breakdown_table(results)
    if "throughput" in results:
        load = results["throughput"]
        rows.append(f"\nsuperres, {load['side']}×{load['side']} uploads from {load['clients']} concurrent clients: "
                    f"{load['requests_per_second']:.0f} requests/s (target ≥ {rps:.0f}, "
                    f"{verdict(load['requests_per_second'] >= rps)}), p50 {load['p50_ms']:.0f} ms, "
                    f"p95 {load['p95_ms']:.0f} ms, {load['failures']} failures.")
    rows.append(f"\nMeasured by `{results['command']}` ({results['machine']['cpu']}, torch {results['machine']['torch']}).")
    return "\n".join(rows)


def breakdown_table(results: dict) -> list[str]:
    """Markdown lines: where the server's time went on the 512x512 rounds (none for results without it)."""
    measured = {name: row for name, row in endpoint_rows(results).items() if "server_means_ms" in row}
    if not measured:
        return []
    rows = ["", "Where the server's time goes on those 512×512 requests (per-request means from `/metrics`; "
            "the worker's stages are the handler's own timers):", "",
            "| endpoint | HTTP p50 | frontend: job to answer | of which queued | worker: decode | batch | predict | "
            "encode | frontend and worker around the handler |", "|---|---|---|---|---|---|---|---|---|"]
    for name, row in measured.items():
        m = row["server_means_ms"]
        around = m["frontend"] - m["queue"] - m["decode"] - m["batch"] - m["predict"] - m["encode"]
        rows.append(f"| {name} | {row['http_p50_ms']:.1f} ms | {m['frontend']:.1f} ms | {m['queue']:.1f} ms | "
                    f"{m['decode']:.1f} ms | {m['batch']:.1f} ms | {m['predict']:.1f} ms | {m['encode']:.1f} ms | "
                    f"{around:.1f} ms |")
    return rows


def update_readme(results: dict, readme: Path = DOC) -> None:
    begin, end = README_MARKERS
    text = readme.read_text()
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{readme} has no {begin} ... {end} section to rewrite")
    readme.write_text(pattern.sub(lambda _: f"{begin}\n{readme_table(results)}\n{end}", text))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("endpoints", nargs="*", help="default: every archive")
    parser.add_argument("--requests", type=int, default=15, help="rounds per endpoint and size (p50 over them)")
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput window")
    parser.add_argument("--out", type=Path, default=RESULTS_PATH)
    parser.add_argument("--readme", action="store_true", help="rewrite docs/serving.md's table from the results")
    parser.add_argument("--readme-only", action="store_true", help="no measurement: the table from --out")
    args = parser.parse_args(argv)
    if args.readme_only:
        results = json.loads(args.out.read_text())
    else:
        results = measure(args.endpoints or all_endpoints(), args.requests, args.seconds)
        results["command"] = shlex.join(["python", "-m", "benchmarks.serve_latency",
                                         *(sys.argv[1:] if argv is None else argv)])
        results["machine"] = machine()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(readme_table(results))
        print(f"wrote {args.out}")
    if args.readme or args.readme_only:
        update_readme(results)
        print(f"rewrote the table in {DOC}")
    return results


if __name__ == "__main__":
    main()
