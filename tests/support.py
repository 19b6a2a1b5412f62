"""Helpers for tests: synthetic photos, encoded bytes, free ports, the optional ../shared data."""
from __future__ import annotations

import io
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A folder of ../shared/data, or skip: a fresh clone has no ../shared."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (held-out photos beside the checkout); not present on a fresh clone")
    return path


def png_bytes(img: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def photo(width: int = 64, height: int = 48, seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A smooth random colour image (photo-like gradients plus texture)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(width, height)
    base = np.stack([np.sin(6 * xx + 1), np.cos(5 * yy), np.sin(4 * (xx + yy))], -1) * 0.35 + 0.5
    arr = np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1)
    return Image.fromarray((arr * 255).astype(np.uint8), "RGB").convert(mode)


def handler_for(endpoint: str, folder: Path | None = None, **overrides):
    """The endpoint's handler, initialised in-process from ``folder`` (default archives/<endpoint>: its
    weights and model-config.yaml) with a real ts Context; ``overrides`` replace handler settings."""
    import importlib
    import inspect

    import yaml
    from ts.context import Context

    module = importlib.import_module(endpoint)  # handlers/ is on sys.path (pytest.ini)
    cls = next(c for _, c in inspect.getmembers(module, inspect.isclass) if c.__module__ == module.__name__)
    folder = folder or ROOT / "archives" / endpoint
    config = yaml.safe_load((folder / "model-config.yaml").read_text())
    config.setdefault("handler", {}).update(overrides)
    manifest = {"model": {"serializedFile": f"{endpoint}.pt"}}
    handler = cls()
    handler.initialize(Context(endpoint, str(folder), manifest, 4, None, "0.12.0", model_yaml_config=config))
    return handler


def run_handler(handler, requests: list[dict], headers: list[dict] | None = None) -> list[tuple[int, str, bytes]]:
    """Send one batch through ``handler.handle``; returns (status, content type, body) per request."""
    from ts.context import RequestProcessor

    headers = headers or [{} for _ in requests]
    context = handler.context
    context.request_processor = [RequestProcessor(h) for h in headers]
    bodies = handler.handle(requests, context)
    return [(context.get_response_status(i)[0], context.get_response_content_type(i), bodies[i])
            for i in range(len(requests))]


def decode_png(body: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(body))
    img.load()
    return img


def interrupt_after(command: list[str], cwd: Path, watched: Path, files: int = 3) -> subprocess.CompletedProcess:
    """Run ``command``, press Ctrl-C once ``watched`` holds ``files`` PNGs (or after 120 s), and wait for it.

    SIGINT as a terminal sends it; reset to default first, since a test run started in the background
    (`pytest &`) hands its children SIGINT ignored and Python would then keep ignoring it."""
    run = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while len(list(watched.rglob("*.png"))) < files and time.time() < deadline and run.poll() is None:
        time.sleep(0.02)
    run.send_signal(signal.SIGINT)
    stdout, stderr = run.communicate(timeout=120)
    return subprocess.CompletedProcess(command, run.returncode, stdout, stderr)
