"""A few-step smoke training of superres on the photos bundled with scikit-image (no ../shared)."""
from __future__ import annotations

import csv

import torch
from PIL import Image

from training.train import main


def test_smoke_training_writes_metrics_grid_weights_and_resumes(tmp_path):
    out, weights = tmp_path / "run", tmp_path / "archive" / "superres.pt"
    common = ["superres", "--batch", "2", "--patch", "48", "--eval-every", "3", "--val-patches", "2",
              "--threads", "1", "--out", str(out), "--export-to", str(weights)]
    main([*common, "--steps", "6"])
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [3, 6]
    assert all(float(r["baseline_psnr"]) > 15 for r in rows)
    assert Image.open(out / "before_after.png").size[0] == 3 * 192
    model = torch.jit.load(str(weights))
    assert model(torch.rand(1, 3, 10, 12)).shape == (1, 3, 40, 48)
    assert "training.train superres" in (weights.parent / "TRAINED_WITH.txt").read_text()

    main([*common, "--steps", "9"])  # resumes from the step-6 checkpoint
    assert [int(r["step"]) for r in csv.DictReader(open(out / "metrics.csv"))] == [3, 6, 9]
