"""Issue 9's memory target: every endpoint answers a 4000x3000 JPEG (superres: its largest allowed
input) with its worker's peak RSS at most 1.5 GiB above the worker's idle RSS.

    python -m benchmarks.serve_memory [endpoint ...] [--width 4000 --height 3000]

One fresh TorchServe with every archive as shipped (token auth, real HTTP). For each endpoint in turn:
the worker's idle RSS, then the kernel's high-water mark of its RSS (VmHWM, reset just before the
request through /proc/<pid>/clear_refs, so the peak is exact rather than sampled) while it answers
one synthetic photo-like JPEG. Prints a table and writes benchmarks/results/serve_memory.json.
Memory does not depend on CPU load, but run it on a quiet machine anyway: on a loaded one the large
photos may run past the archives' responseTimeout.
"""
from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import requests
import yaml
from PIL import Image

from archives.build import ROOT, endpoints as all_endpoints
from benchmarks.common import RESULTS, machine
from handlers.model_metadata import load
from serving.server import Server, start_isolated, stop

GIB = 1024 ** 3
BUDGET = 1.5 * GIB  # peak above idle, per worker


def photo_jpeg(width: int, height: int, seed: int = 0) -> bytes:
    """A smooth colour photo-like image with fine texture (many distinct colours), as a quality-90 JPEG."""
    rng = np.random.default_rng(seed)
    yy, xx = np.ogrid[0:height, 0:width]
    scale = max(width, height)
    base = np.stack(np.broadcast_arrays(np.sin(6 * xx / scale + 1), np.cos(5 * yy / scale),
                                        np.sin(4 * (xx + yy) / scale)), -1) * 0.35 + 0.5
    pixels = np.clip(base * 255 + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def largest_input(endpoint: str, width: int, height: int) -> tuple[int, int]:
    """``width`` x ``height``, shrunk (same aspect) until the endpoint's input and output limits accept it."""
    limits = yaml.safe_load((ROOT / "archives" / endpoint / "model-config.yaml").read_text())["handler"]
    scale = load(ROOT / "archives" / endpoint / f"{endpoint}.pt")[1].scale
    fits = lambda w, h: (w * h <= limits["max_input_pixels"] and w * h * scale ** 2 <= limits["max_output_pixels"]  # noqa: E731
                         and w * h * scale ** 2 * 4 + 65536 <= limits["max_response_bytes"])
    shrink = 1.0
    while not fits(round(width * shrink), round(height * shrink)):
        shrink -= 0.001
    return round(width * shrink), round(height * shrink)


def worker_pid(server: Server, endpoint: str) -> int:
    reply = requests.get(f"{server.management_url}/models/{endpoint}", headers=server.headers("management"), timeout=30)
    reply.raise_for_status()
    return int(reply.json()[0]["workers"][0]["pid"])


def rss_kib(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (peak since the last reset) of ``pid``, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def measure(server: Server, endpoint: str, width: int, height: int) -> dict:
    w, h = largest_input(endpoint, width, height)
    body = photo_jpeg(w, h)
    pid = worker_pid(server, endpoint)
    idle = rss_kib(pid, "VmRSS") * 1024
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    started = time.perf_counter()
    reply = requests.post(f"{server.inference_url}/predictions/{endpoint}", data=body,
                          headers={**server.headers(), "Content-Type": "image/jpeg"}, timeout=3600)
    seconds = time.perf_counter() - started
    peak = rss_kib(pid, "VmHWM") * 1024
    return {"input": f"{w}x{h}", "status": reply.status_code, "seconds": round(seconds, 1),
            "idle_mib": round(idle / 2 ** 20), "peak_mib": round(peak / 2 ** 20),
            "above_idle_mib": round((peak - idle) / 2 ** 20), "within_budget": reply.ok and peak - idle <= BUDGET}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("endpoints", nargs="*", help="default: every archive")
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=RESULTS / "serve_memory.json")
    args = parser.parse_args(argv)
    names = args.endpoints or all_endpoints()
    results: dict = {"photo": f"{args.width}x{args.height} JPEG", "budget_mib_above_idle": BUDGET / 2 ** 20,
                     "workers": {}, "machine": machine()}
    with tempfile.TemporaryDirectory() as work:
        server = start_isolated(Path(work), names)
        try:
            for name in names:
                results["workers"][name] = row = measure(server, name, args.width, args.height)
                print(f"{name:9} {row['input']:>10}  HTTP {row['status']}  {row['seconds']:7.1f} s  idle {row['idle_mib']:5} MiB"
                      f"  peak {row['peak_mib']:5} MiB  +{row['above_idle_mib']:5} MiB  {'ok' if row['within_budget'] else 'OVER'}")
        finally:
            stop(server.state)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
