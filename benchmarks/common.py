"""Shared pieces of the benchmark scripts: held-out photos, timing, result files."""
from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

from training.data import list_images, load_rgb, split, to_float

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def held_out_photos(data: list[str], max_side: int | None) -> list[tuple[str, torch.Tensor]]:
    """(name, float [1, 3, H, W]) for every held-out photo: the split training never sees."""
    _, held = split(list_images(data))
    return [(p.name, to_float(load_rgb(p, max_side))[None]) for p in held]


@torch.inference_mode()
def seconds_per_call(fn: Callable[[], object], repeats: int = 3) -> float:
    """Median wall time of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine() -> dict[str, object]:
    return {"cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(), "torch": torch.__version__}


def write_results(name: str, results: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({**results, "machine": machine()}, indent=2) + "\n")
    return path
