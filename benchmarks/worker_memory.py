"""Peak memory of every TorchServe worker (and the Java frontend) while it answers one large photo.

    python -m benchmarks.worker_memory [endpoint ...] [--megapixels 12]

Starts a fresh server with the archives, sends each endpoint one synthetic 4:3 photo of
``--megapixels`` (capped at the endpoint's ``max_input_pixels``, smaller if the answer would be too
large), one endpoint after another, and samples the resident memory (RSS) of that endpoint's worker
and of the frontend every 50 ms. Merges the figures into benchmarks/results/worker_memory.json
(per endpoint); deploy/k8s/deployment.yaml's memory request and limit come from them (docs/deployment.md).

Memory does not depend on CPU load, so unlike the latency benchmarks this one may run on a busy
machine: the archives get an hour to start and to answer, and the server an hour to load them.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import tempfile
import threading
from pathlib import Path
from unittest import mock

import psutil
import requests
import yaml

from archives.build import ROOT, build, endpoints as all_endpoints
from benchmarks.common import RESULTS, machine
from serving.server import Server, running_pid, start_isolated, stop, wait_ready
from tests.support import photo, png_bytes

MIB = 1024 * 1024
PATIENT_S = 3600  # seconds a worker may take to start or to answer, and the server to get every model READY


class PeakRss:
    """Samples a process's RSS in a background thread; ``peak`` is the largest value seen (bytes)."""

    def __init__(self, pid: int, every: float = 0.05) -> None:
        self.process, self.every = psutil.Process(pid), every
        self.peak = self.process.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(self.every):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()


def model_config(endpoint: str) -> dict:
    return yaml.safe_load((ROOT / "archives" / endpoint / "model-config.yaml").read_text())


def build_patient(endpoint: str, store: Path) -> Path:
    """``endpoint``'s archive with startupTimeout and responseTimeout raised to PATIENT_S, nothing else changed."""
    config = {**model_config(endpoint), "startupTimeout": PATIENT_S, "responseTimeout": PATIENT_S}
    path = store.parent / f"{endpoint}-model-config.yaml"
    path.write_text(yaml.safe_dump(config))
    return build(endpoint, store, path)


def photo_size(endpoint: str, megapixels: float) -> tuple[int, int]:
    """The largest 4:3 photo of at most ``megapixels`` that the endpoint accepts."""
    pixels = min(megapixels * 1e6, float(model_config(endpoint)["handler"]["max_input_pixels"]))
    height = int(math.sqrt(pixels * 3 / 4)) // 8 * 8
    return height * 4 // 3, height


def worker_pid(server: Server, endpoint: str) -> int:
    reply = requests.get(f"{server.management_url}/models/{endpoint}", headers=server.headers("management"), timeout=30)
    reply.raise_for_status()
    return int(reply.json()[0]["workers"][0]["pid"])


def measure(server: Server, endpoint: str, megapixels: float) -> dict:
    """Idle and peak RSS of ``endpoint``'s worker around one photo of at most ``megapixels``; a
    photo whose answer would be too large (413) is retried 20% smaller."""
    worker = psutil.Process(worker_pid(server, endpoint))
    idle = worker.memory_info().rss
    while True:
        width, height = photo_size(endpoint, megapixels)
        with PeakRss(worker.pid) as peak:
            reply = requests.post(f"{server.inference_url}/predictions/{endpoint}",
                                  data=png_bytes(photo(width, height)), timeout=PATIENT_S,
                                  headers={**server.headers(), "Content-Type": "image/png"})
        if reply.status_code != 413:
            break
        megapixels = width * height / 1e6 * 0.8
    if not reply.ok:  # a peak cut short says too little: fail loudly
        log = (server.state / "logs" / "ts_log.log").read_text(errors="replace")[-4000:]
        raise RuntimeError(f"{endpoint} answered {reply.status_code}: {reply.text[:300]}\nTorchServe log ends:\n{log}")
    return {"input": f"{width}x{height}", "idle_mib": round(idle / MIB), "peak_mib": round(peak.peak / MIB)}


def save(path: Path, results: dict, frontend_idle: int, frontend_peak: int) -> None:
    """Write the figures so far: the frontend's are the most any run saw, the sum of peaks is re-added."""
    previous = results.get("frontend", {"idle_mib": 0, "peak_mib": 0})
    results["frontend"] = {"idle_mib": max(previous["idle_mib"], round(frontend_idle / MIB)),
                           "peak_mib": max(previous["peak_mib"], round(frontend_peak / MIB))}
    workers = sum(w["peak_mib"] for w in results["workers"].values())
    results["sum_of_peaks_mib"] = results["frontend"]["peak_mib"] + workers
    results["machine"] = machine()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("endpoints", nargs="*", help="default: every archive")
    parser.add_argument("--megapixels", type=float, default=12.0)
    args = parser.parse_args(argv)
    names = args.endpoints or all_endpoints()
    path = RESULTS / "worker_memory.json"  # merged per endpoint, so one endpoint can be measured again alone
    results = json.loads(path.read_text()) if path.exists() else {"workers": {}}
    with tempfile.TemporaryDirectory() as work:
        with (mock.patch("serving.server.build", build_patient),  # start_isolated's server, with patience
              mock.patch("serving.server.wait_ready", functools.partial(wait_ready, timeout=PATIENT_S))):
            server = start_isolated(Path(work), names)
        try:
            frontend = psutil.Process(running_pid(server.state))
            frontend_idle = frontend.memory_info().rss
            with PeakRss(frontend.pid) as frontend_peak:
                for name in names:
                    results["workers"][name] = measure(server, name, args.megapixels)
                    print(f"{name}: {results['workers'][name]}", flush=True)
                    save(path, results, frontend_idle, frontend_peak.peak)
        finally:
            stop(server.state)
    print(f"frontend: {results['frontend']}; sum of peaks: {results['sum_of_peaks_mib']} MiB")
    return results


if __name__ == "__main__":
    main()
