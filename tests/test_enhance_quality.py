"""The enhance benchmark's rows (benchmarks/enhance_quality.py): paired, clean and real-photo figures."""
from __future__ import annotations

import math

import torch

from benchmarks.enhance_quality import paired_row, synthetic_cases, unpaired_row
from training.data import bundled_photo_paths, load_rgb, to_float
from training.models.film2 import film2


def _photos() -> list[tuple[str, torch.Tensor]]:
    return [(p.name, to_float(load_rgb(p, 64))[None]) for p in bundled_photo_paths()[:2]]


def _model() -> torch.jit.ScriptModule:
    torch.manual_seed(0)
    return torch.jit.script(film2("cpu").eval())


def test_rows_pair_flare_with_its_clean_shot_and_clean_photos_with_themselves():
    cases = synthetic_cases(_photos(), repeats=2, seed=3)
    assert [len(cases[k]) for k in ("glare", "night_flare", "clean", "clean_night")] == [4, 4, 2, 2]
    assert all(not torch.equal(x, t) for _, _, x, t in cases["night_flare"])
    assert all(torch.equal(x, t) for _, _, x, t in cases["clean"] + cases["clean_night"])
    again = synthetic_cases(_photos(), repeats=2, seed=3)
    assert all(torch.equal(a[2], b[2]) for a, b in zip(cases["night_flare"], again["night_flare"]))


def test_paired_row_reports_gains_and_clean_rows_report_only_the_answers():
    model, cases = _model(), synthetic_cases(_photos(), repeats=1, seed=0)
    flare, rows, grid = paired_row(model, cases["night_flare"], previews=1)
    assert not flare["input_is_target"] and len(rows) == 2 and len(grid) == 1 and len(grid[0]) == 5
    gain = flare["gain_over_input_db"]["ensemble"]
    assert gain == flare["mean_psnr_db"]["ensemble"] - flare["mean_psnr_db"]["degraded_input"]
    clean, rows, _ = paired_row(model, cases["clean"])
    assert clean["input_is_target"] and "gain_over_input_db" not in clean
    assert "degraded_input" not in rows[0] and all(math.isfinite(v) for v in clean["mean_psnr_db"].values())


def test_unpaired_row_measures_the_light_taken_away():
    class Darken(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 0.5
    row, grid = unpaired_row(torch.jit.script(Darken()), _photos())
    assert row["images"] == 2 and len(grid) == 2
    # Half the sRGB value is about a fifth of the linear light: ~78% of it removed.
    assert 70 < row["mean_light_removed_percent"] < 85
    assert row["worst_answer_vs_input_db"] < 15
