"""A chain in one call (``/predictions/restore``) against the same steps as separate calls, PNG between.

    python -m benchmarks.restore_latency [--side 512] [--repeats 5] [--warmup 2] [--chain deblur,superres ...]
                                         [--out FILE]

One fresh TorchServe with the chain's endpoints and ``restore`` (every archive as shipped: its
model-config.yaml, token auth, real HTTP). The upload is one real photo (scikit-image's astronaut) at
--side px, as PNG. Per chain, after --warmup unmeasured rounds, each round sends the chain once to
``restore`` and once as separate calls (each answer, a PNG, is the next call's upload), from one
client, interleaved so that a drifting background load weighs on both alike. Printed: the median
seconds of each, their ratio, and the largest difference between the two answers in 8-bit levels
(docs/api.md's claim: at most 1). Written to benchmarks/results/restore_latency.json (--out elsewhere).
Run it on a quiet machine: the figures are wall-clock times.
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import RESULTS, machine
from benchmarks.http_load import Connection
from benchmarks.serve_latency import photo_png
from serving.server import start_isolated, stop

CHAINS = ("deblur,superres", "deblur,enhance,retouch,superres", "colorize,superres")


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def post(conn: Connection, path: str, body: bytes) -> bytes:
    status, answer = conn.post(path, body)
    if status != 200:
        raise RuntimeError(f"POST {path}: {status} {answer[:300]!r}")
    return answer


def one_call(conn: Connection, upload: bytes) -> tuple[float, bytes]:
    """Seconds for the chain in one call to ``restore`` (the connection carries X-Steps), and its answer."""
    start = time.perf_counter()
    answer = post(conn, "/predictions/restore", upload)
    return time.perf_counter() - start, answer


def separate_calls(conn: Connection, steps: list[str], upload: bytes) -> tuple[float, bytes]:
    """Seconds for the steps one call each (each answer, a PNG, is the next upload), and the last answer."""
    start = time.perf_counter()
    answer = upload
    for step in steps:
        answer = post(conn, f"/predictions/{step}", answer)
    return time.perf_counter() - start, answer


def measure(server, chain: str, upload: bytes, repeats: int, warmup: int) -> dict:
    headers = server.headers()
    chained = Connection(server.inference_url, {**headers, "X-Steps": chain})
    separate = Connection(server.inference_url, headers)
    steps = chain.split(",")
    for _ in range(warmup):  # TorchScript's profiling executor specialises a model on its first calls
        (_, together), (_, apart) = one_call(chained, upload), separate_calls(separate, steps, upload)
    rounds = [(one_call(chained, upload)[0], separate_calls(separate, steps, upload)[0]) for _ in range(repeats)]
    chained.close()
    separate.close()
    one, many = (statistics.median(times) for times in zip(*rounds))
    return {"chain": chain, "answer_size": list(Image.open(io.BytesIO(together)).size), "repeats": repeats,
            "one_call_seconds": round(one, 4), "separate_calls_seconds": round(many, 4),
            "separate_over_one_call": round(many / one, 3),
            "max_difference_levels": int(np.abs(pixels(together) - pixels(apart)).max())}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", type=int, default=512, help="upload side in pixels (default 512)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured rounds first (default 2)")
    parser.add_argument("--chain", action="append", help=f"steps, comma-separated (default: {'; '.join(CHAINS)})")
    parser.add_argument("--out", type=Path, default=RESULTS / "restore_latency.json")
    args = parser.parse_args(argv)
    chains = args.chain or list(CHAINS)
    upload = photo_png(args.side)
    endpoints = sorted({step for chain in chains for step in chain.split(",")} | {"restore"})
    with tempfile.TemporaryDirectory(prefix="restore-latency-") as work:
        server = start_isolated(Path(work), endpoints)
        try:
            results = [measure(server, chain, upload, args.repeats, max(1, args.warmup)) for chain in chains]
        finally:
            stop(server.state)
    print(f"{args.side}x{args.side} upload, median of {args.repeats}, one client")
    print(f"{'chain':<34} {'answer':>11} {'one call':>9} {'separate':>9} {'ratio':>6} {'max diff':>8}")
    for r in results:
        print(f"{r['chain']:<34} {'x'.join(map(str, r['answer_size'])):>11} {r['one_call_seconds']:>8.3f}s "
              f"{r['separate_calls_seconds']:>8.3f}s {r['separate_over_one_call']:>6.2f} "
              f"{r['max_difference_levels']:>8}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"side": args.side, "results": results, "machine": machine()}, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
