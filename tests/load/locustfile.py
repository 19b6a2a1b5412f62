"""Locust load test: every user posts small photos to the served endpoints.

Against `make serve`, nothing to set up:

    locust -f tests/load/locustfile.py --headless -u 4 -r 2 -t 60s --host http://127.0.0.1:8080

The inference key comes from $TS_TOKEN if set, else from .serve/key_file.json ($TS_KEY_FILE for
another server); when the server refuses it (expired after token_expiration_min), the key is
renewed (client/auth.py) and the request sent again: the refused attempt is counted under the name
"token refresh", never as a failure. Any other non-image answer is a failure.

Environment: TS_ENDPOINTS=superres,deblur (default: every endpoint in archives/), TS_RATE=0.5
(requests per second per user, steady; default: as fast as answers come, 0.05-0.2 s apart),
TS_REQUEST_LOG=requests.csv (one row per request: start time, name, ms, ok; for benchmarks/soak.py).
"""
from __future__ import annotations

import csv
import io
import os
import random
import sys
from pathlib import Path

import numpy as np
from locust import HttpUser, between, constant_throughput, events, task
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # locust imports this file by path: make the repo's packages importable

from archives.build import endpoints  # noqa: E402
from client.auth import TokenSource, is_token_rejection  # noqa: E402

TOKENS = TokenSource()
TOKEN_REFRESH = "token refresh"


def _photo(width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    img = Image.fromarray(arr, "RGB").resize((width, height), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


PHOTOS = [_photo(w, h, i) for i, (w, h) in enumerate([(64, 64), (96, 64), (128, 96)])]


def _request_log(path: str):
    """Append every request to ``path`` as it completes (flushed per row: the soak reads it after the run)."""
    out = open(path, "a", newline="")
    writer = csv.writer(out)

    def record(name, response_time, exception, start_time=None, **_) -> None:
        writer.writerow([f"{start_time:.3f}", name, f"{response_time:.1f}", int(exception is None)])
        out.flush()
    return record


if os.environ.get("TS_REQUEST_LOG"):
    events.request.add_listener(_request_log(os.environ["TS_REQUEST_LOG"]))


class PhotoUser(HttpUser):
    wait_time = constant_throughput(float(os.environ["TS_RATE"])) if os.environ.get("TS_RATE") else between(0.05, 0.2)

    def on_start(self) -> None:
        self.endpoints = [e for e in os.environ.get("TS_ENDPOINTS", ",".join(endpoints())).split(",") if e]

    @task
    def restore(self) -> None:
        endpoint = random.choice(self.endpoints)
        body = random.choice(PHOTOS)
        for attempt in range(2):  # once more after a refused key
            key = TOKENS.key()
            with self.client.post(f"/predictions/{endpoint}", data=body, headers={"Authorization": f"Bearer {key}"},
                                  name=f"/predictions/{endpoint}", catch_response=True) as reply:
                if attempt == 0 and is_token_rejection(reply.status_code, reply.content):
                    try:
                        TOKENS.refresh(key)
                    except RuntimeError as exc:  # no key file, or the token API refused: a failure, said plainly
                        reply.failure(f"key refused and not renewed: {exc}")
                        return
                    reply.request_meta["name"] = TOKEN_REFRESH
                    reply.success()
                    continue
                if reply.status_code != 200 or not reply.headers.get("Content-Type", "").startswith("image/"):
                    reply.failure(f"{reply.status_code}: {reply.text[:200]}")
            return
