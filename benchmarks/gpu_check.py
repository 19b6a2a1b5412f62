"""GPU check, one command on a machine with one NVIDIA GPU (`make gpu-check OUT=folder`, at most 8 minutes):

    python -m benchmarks.gpu_check OUT [--dry-run] [--endpoints superres deblur ...] [--sizes 512 12mp]

1. TorchServe with `number_of_gpu=1` (each worker on cuda:0, half precision, channels-last: the
   handlers' `half_on_cuda`), every endpoint sent a 512 px and a 12 MP photo; latency per request and
   the GPU's memory (nvidia-smi, per process) recorded.
2. The same photos through a CPU TorchServe (`number_of_gpu=0`, float32): the reference.
3. PSNR of each GPU answer against the CPU answer: >= 40 dB passes; below, the reason is written down
   (half precision's ~3 significant digits through a deep network, or a different shape).

Everything goes under OUT: report.json, report.txt (the table printed), the servers' logs.
`--dry-run`: the same script with the GPU parts skipped (no GPU server, no nvidia-smi), the CPU server
only, small photos by default: the answers are compared with themselves, so it checks the plumbing.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import requests
from PIL import Image

from archives.build import endpoints as model_endpoints
from client.auth import TokenSource, request_with_key
from serving.server import Server, start_isolated, stop

PSNR_PASS_DB = 40.0
# Long side in pixels: 512 px, and 12 MP (4000x3000). superres answers x4, and the handlers refuse answers
# above 40 MP, so its "12 MP" case sends 1000x750 and gets the 12 MP answer back.
SIZES = {"512": (512, 384), "12mp": (4000, 3000), "64": (64, 48)}
SUPERRES_12MP = (1000, 750)
REPEATS = 3  # per photo after one warm-up: enough for a p50 inside 8 minutes
# The CPU pass is the reference only: one request per photo (five 12 MP photos on the CPU take minutes).
CPU_REPEATS = 0


@dataclass
class Answer:
    endpoint: str
    size: str
    device: str
    status: int
    seconds: list[float] = field(default_factory=list)
    image: np.ndarray | None = None  # uint8 [H, W, C] of the last answer, kept in memory only
    error: str = ""

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.seconds) * 1000 if self.seconds else math.nan


def sample_photo(size: str, endpoint: str) -> bytes:
    """A deterministic photo-like PNG (smooth gradients plus texture, like tests.support.photo)."""
    width, height = SUPERRES_12MP if (endpoint == "superres" and size == "12mp") else SIZES[size]
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width] / max(width, height)
    base = np.stack([np.sin(6 * xx + 1), np.cos(5 * yy), np.sin(4 * (xx + yy))], -1) * 0.35 + 0.5
    arr = np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1)
    buf = io.BytesIO()
    Image.fromarray((arr * 255).astype(np.uint8), "RGB").save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def send(tokens: TokenSource, server: Server, endpoint: str, size: str, device: str, repeats: int) -> Answer:
    """One warm-up request, then `repeats` timed ones; the last answer's pixels kept for the comparison."""
    body = sample_photo(size, endpoint)
    url = f"{server.inference_url}/predictions/{endpoint}"
    answer = Answer(endpoint, size, device, 0)
    for i in range(repeats + 1):
        started = time.perf_counter()
        reply = request_with_key(tokens, "POST", url, data=body, timeout=300)
        elapsed = time.perf_counter() - started
        answer.status = reply.status_code
        if reply.status_code != 200:
            answer.error = reply.text[:300]
            return answer
        # The first request pays for lazy initialisation (cuDNN autotuning, allocator growth): untimed,
        # unless it is the only one (the CPU reference pass, where only the answer matters).
        if i or not repeats:
            answer.seconds.append(elapsed)
    answer.image = np.asarray(Image.open(io.BytesIO(reply.content)).convert("RGB"))
    return answer


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images of one shape (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def compare(gpu: Answer, cpu: Answer) -> dict:
    """The GPU answer against the CPU one: PSNR and a verdict, or why there is none."""
    if gpu.image is None or cpu.image is None:
        return {"psnr_db": None, "pass": False, "reason": f"no answer to compare (GPU {gpu.status} {gpu.error!r}, "
                                                         f"CPU {cpu.status} {cpu.error!r})"}
    if gpu.image.shape != cpu.image.shape:
        return {"psnr_db": None, "pass": False, "reason": f"shapes differ: {gpu.image.shape} vs {cpu.image.shape}"}
    db = psnr(gpu.image, cpu.image)
    reason = "" if db >= PSNR_PASS_DB else (
        f"{db:.1f} dB < {PSNR_PASS_DB}: half precision (11-bit mantissa) drifts through the network's depth; "
        f"max pixel difference {int(np.abs(gpu.image.astype(int) - cpu.image.astype(int)).max())}")
    return {"psnr_db": None if math.isinf(db) else round(db, 2), "identical": math.isinf(db),
            "pass": db >= PSNR_PASS_DB, "reason": reason}


def gpu_memory() -> dict:
    """The GPU's used/total MiB and each process's MiB (nvidia-smi), or the reason there is none."""
    if not shutil.which("nvidia-smi"):
        return {"error": "nvidia-smi not found"}
    total = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.used,memory.total", "--format=csv,noheader,nounits"],
                           capture_output=True, text=True, timeout=30).stdout.strip().splitlines()
    procs = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                           capture_output=True, text=True, timeout=30).stdout.strip().splitlines()
    name, used, cap = (total[0].split(", ") + ["", "", ""])[:3] if total else ("", "", "")
    return {"gpu": name, "used_mib": used, "total_mib": cap,
            "processes_mib": {p.split(", ")[0]: p.split(", ")[1] for p in procs if ", " in p}}


def run_pass(server: Server, names: list[str], sizes: list[str], device: str, repeats: int) -> list[Answer]:
    """Every endpoint, every size, through one server."""
    tokens = server.tokens("inference")
    answers = []
    for name in names:
        for size in sizes:
            answers.append(send(tokens, server, name, size, device, repeats))
            print(f"  {device} {name:9s} {size:5s} {answers[-1].status} p50 {answers[-1].p50_ms:8.1f} ms", flush=True)
    return answers


def with_server(work: Path, names: list[str], gpus: int, body) -> object:
    """Start TorchServe with `number_of_gpu=gpus` under work/, run body(server), always stop it by PID."""
    server = start_isolated(work, names, {"number_of_gpu": str(gpus)})
    try:
        return body(server)
    finally:
        stop(server.state)


def report(cpu: list[Answer], gpu: list[Answer] | None, memory: dict | None, dry_run: bool) -> dict:
    """One row per endpoint and size: latencies, status, the GPU-vs-CPU comparison."""
    rows = []
    for i, ref in enumerate(cpu):
        other = gpu[i] if gpu else ref  # dry run: the CPU answer against itself, the plumbing only
        rows.append({"endpoint": ref.endpoint, "size": ref.size, "cpu_status": ref.status,
                     "cpu_p50_ms": round(ref.p50_ms, 1), "gpu_status": gpu[i].status if gpu else None,
                     "gpu_p50_ms": round(gpu[i].p50_ms, 1) if gpu else None,
                     "errors": [a.error for a in (ref, other) if a.error], **compare(other, ref)})
    return {"dry_run": dry_run, "psnr_pass_db": PSNR_PASS_DB, "rows": rows, "gpu_memory": memory,
            "passed": all(r["pass"] for r in rows)}


def table(result: dict) -> str:
    lines = [f"{'endpoint':9s} {'size':5s} {'cpu ms':>9s} {'gpu ms':>9s} {'PSNR dB':>8s}  verdict"]
    for r in result["rows"]:
        db = "same" if r.get("identical") else (f"{r['psnr_db']:.1f}" if r["psnr_db"] is not None else "-")
        gpu_ms = f"{r['gpu_p50_ms']:9.1f}" if r["gpu_p50_ms"] is not None else f"{'-':>9s}"
        lines.append(f"{r['endpoint']:9s} {r['size']:5s} {r['cpu_p50_ms']:9.1f} {gpu_ms} {db:>8s}  "
                     f"{'pass' if r['pass'] else 'FAIL: ' + r['reason']}")
    lines.append(f"GPU memory: {json.dumps(result['gpu_memory'])}")
    return "\n".join(lines)


def check(out: Path, names: list[str], sizes: list[str], dry_run: bool, repeats: int = REPEATS,
          cpu_server: Server | None = None) -> dict:
    """The whole check into `out`; `cpu_server`: an already running CPU server to use (tests)."""
    out.mkdir(parents=True, exist_ok=True)
    gpu, memory = None, None
    if not dry_run:
        import torch  # only to fail early and clearly: the server would silently fall back to the CPU
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device visible to torch: run on a machine with an NVIDIA GPU, or --dry-run")
        print("GPU server (number_of_gpu=1):", flush=True)

        def gpu_body(server: Server) -> tuple[list[Answer], dict]:
            answers = run_pass(server, names, sizes, "gpu", repeats)
            return answers, gpu_memory()  # read while the workers still hold their memory
        gpu, memory = with_server(out / "gpu-server", names, 1, gpu_body)
    print("CPU server (number_of_gpu=0):", flush=True)
    if cpu_server is not None:
        cpu = run_pass(cpu_server, names, sizes, "cpu", repeats)
    else:
        cpu_repeats = repeats if dry_run else CPU_REPEATS
        cpu = with_server(out / "cpu-server", names, 0, lambda s: run_pass(s, names, sizes, "cpu", cpu_repeats))
    result = report(cpu, gpu, memory, dry_run)
    (out / "report.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "report.txt").write_text(table(result) + "\n")
    print(table(result))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the folder everything is written to")
    parser.add_argument("--dry-run", action="store_true", help="no GPU: the CPU server only, small photos")
    parser.add_argument("--endpoints", nargs="+", default=None, help="default: every model endpoint")
    parser.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=None,
                        help="default: 512 12mp (dry run: 64)")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args(argv)
    names = args.endpoints or model_endpoints()
    sizes = args.sizes or (["64"] if args.dry_run else ["512", "12mp"])
    result = check(args.out, names, sizes, args.dry_run, args.repeats)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
