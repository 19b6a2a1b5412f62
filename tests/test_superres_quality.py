"""The committed superres weights beat bicubic on held-out photos (needs ../shared/data)."""
from __future__ import annotations

import statistics

import torch

from benchmarks.common import held_out_photos
from benchmarks.superres_quality import WEIGHTS, quality
from tests.support import shared_data


def test_espcn_beats_bicubic_by_1_5_db_on_held_out_photos():
    data = [str(shared_data("photos")), str(shared_data("faces"))]
    rows = quality(torch.jit.load(str(WEIGHTS)).eval(), held_out_photos(data, 512))
    gain = statistics.mean(r["espcn_db"] - r["bicubic_db"] for r in rows)
    assert len(rows) >= 20
    assert gain >= 1.5, f"ESPCN gains only {gain:+.2f} dB over bicubic"
