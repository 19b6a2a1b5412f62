"""Locust load test: every user posts small photos to the served endpoints.

    TS_TOKEN=<inference key> TS_ENDPOINTS=superres,deblur \\
      locust -f tests/load/locustfile.py --headless -u 4 -r 2 -t 30s --host http://127.0.0.1:8080

Any non-200 answer counts as a failure.
"""
from __future__ import annotations

import io
import os
import random

import numpy as np
from locust import HttpUser, between, task
from PIL import Image


def _photo(width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    img = Image.fromarray(arr, "RGB").resize((width, height), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


PHOTOS = [_photo(w, h, i) for i, (w, h) in enumerate([(64, 64), (96, 64), (128, 96)])]


class PhotoUser(HttpUser):
    wait_time = between(0.05, 0.2)

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Bearer {os.environ['TS_TOKEN']}"
        self.endpoints = [e for e in os.environ.get("TS_ENDPOINTS", "superres").split(",") if e]

    @task
    def restore(self) -> None:
        endpoint = random.choice(self.endpoints)
        with self.client.post(f"/predictions/{endpoint}", data=random.choice(PHOTOS),
                              name=f"/predictions/{endpoint}", catch_response=True) as reply:
            if reply.status_code != 200 or not reply.headers.get("Content-Type", "").startswith("image/"):
                reply.failure(f"{reply.status_code}: {reply.text[:200]}")
