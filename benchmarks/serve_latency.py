"""Latency through a real TorchServe: build the archives, start a server on free ports, time requests.

    python -m benchmarks.serve_latency [endpoint ...] [--size 512x512] [--requests 5]

Sequential requests (one in flight) of a synthetic photo-like PNG; prints and records the median
end-to-end latency (HTTP, decode, inference, encode) per input megapixel. For superres the size is
the low-resolution input. Writes benchmarks/results/serve_latency.json (merged per endpoint).
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
import requests
from PIL import Image

from archives.build import endpoints as all_endpoints
from benchmarks.common import RESULTS, machine
from serving.server import start_isolated, stop


def sample_png(width: int, height: int) -> bytes:
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
    img = Image.fromarray(coarse, "RGB").resize((width, height), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def time_endpoint(url: str, headers: dict, body: bytes, count: int) -> list[float]:
    times = []
    for i in range(count + 1):  # the first request warms the worker up and is not counted
        start = time.perf_counter()
        reply = requests.post(url, data=body, headers=headers, timeout=600)
        reply.raise_for_status()
        if i:
            times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("endpoints", nargs="*", help="default: every archive")
    parser.add_argument("--size", default="512x512", help="WIDTHxHEIGHT of the uploaded photo")
    parser.add_argument("--requests", type=int, default=5)
    args = parser.parse_args(argv)
    names = args.endpoints or all_endpoints()
    width, height = map(int, args.size.lower().split("x"))
    body = sample_png(width, height)
    results_path = RESULTS / "serve_latency.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    with tempfile.TemporaryDirectory() as work:
        server = start_isolated(Path(work), names)
        try:
            for name in names:
                times = time_endpoint(f"{server.inference_url}/predictions/{name}", server.headers(), body, args.requests)
                median = statistics.median(times)
                results[name] = {"input": f"{width}x{height}", "requests": len(times), "median_seconds": median,
                                 "seconds_per_input_megapixel": median / (width * height / 1e6)}
                print(f"{name}: {width}x{height} in {median:.2f} s median over {len(times)} requests "
                      f"({results[name]['seconds_per_input_megapixel']:.2f} s per input MP)")
        finally:
            stop(server.state)
    results["machine"] = machine()
    RESULTS.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
