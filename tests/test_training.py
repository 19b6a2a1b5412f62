"""Few-step smoke trainings on the photos bundled with scikit-image (no ../shared): outputs, resuming."""
from __future__ import annotations

import csv

import pytest
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


def test_interrupted_run_resumes_exactly_with_ema_bf16_and_channels_last(tmp_path):
    """2 steps + resume to 4 == 4 steps straight: weights, EMA, optimiser and every random stream are checkpointed."""
    common = ["deblur", "--preset", "cpu_quarter", "--batch", "2", "--patch", "80", "--eval-every", "2",
              "--val-patches", "2", "--threads", "1", "--ema", "0.9", "--bf16", "--channels-last"]
    main([*common, "--steps", "4", "--out", str(tmp_path / "straight")])
    main([*common, "--steps", "2", "--out", str(tmp_path / "resumed")])
    main([*common, "--steps", "4", "--out", str(tmp_path / "resumed")])
    straight, resumed = (torch.load(tmp_path / d / "checkpoint.pt", weights_only=False) for d in ("straight", "resumed"))
    assert straight["step"] == resumed["step"] == 4
    assert {"ema", "model", "optimizer"} <= straight.keys() and "degrade" in straight["rng"]
    for part in ("model", "ema"):
        for name, tensor in straight[part].items():
            assert torch.equal(tensor, resumed[part][name]), f"{part}.{name} differs after resuming"
    moments = [v for s in straight["optimizer"]["state"].values() for k, v in s.items() if k.startswith("exp_avg")]
    assert moments and all(m.dtype == torch.bfloat16 for m in moments)  # half the size of float32 moments
    # The EMA really averages: it is not a copy of the last weights.
    assert any(not torch.equal(straight["ema"][f"module.{k}"], v) for k, v in straight["model"].items())


def test_a_leg_cut_by_time_checkpoints_and_a_later_run_continues_it_exactly(tmp_path):
    """--max-minutes 0: the leg stops after its first step with a checkpoint and no export; the run it
    continues ends where an uncut run ends (the GPU legs of a campaign resume on the CPU this way)."""
    # every step checkpoints in both runs: a checkpoint rounds Adam's moments to bf16, so both round alike
    common = ["deblur", "--preset", "cpu_quarter", "--batch", "2", "--patch", "80", "--eval-every", "1",
              "--val-patches", "2", "--threads", "1", "--ema", "0.9", "--device", "cpu"]
    main([*common, "--steps", "4", "--out", str(tmp_path / "straight")])
    main([*common, "--steps", "4", "--max-minutes", "0", "--out", str(tmp_path / "legs")])
    leg = torch.load(tmp_path / "legs" / "checkpoint.pt", weights_only=False)
    assert leg["step"] == 1 and not (tmp_path / "legs" / "deblur.pt").exists()
    main([*common, "--steps", "4", "--out", str(tmp_path / "legs")])
    straight, legs = (torch.load(tmp_path / d / "checkpoint.pt", weights_only=False) for d in ("straight", "legs"))
    assert legs["step"] == 4 and (tmp_path / "legs" / "deblur.pt").exists()
    for name, tensor in straight["ema"].items():
        assert torch.equal(tensor, legs["ema"][name]), f"ema.{name} differs after the cut"


def test_a_new_run_starts_from_exported_or_checkpointed_weights_and_lists_what_is_new(tmp_path):
    """--init-from: a regression colorizer's export seeds a two-head run (the class head starts fresh);
    a checkpoint seeds from its EMA weights; another preset's shapes are refused."""
    from training.models.colorizer import ColorizeService, colorizer
    from training.warm_start import load_matching_weights

    torch.manual_seed(0)
    old = colorizer("tiny").eval()
    exported = tmp_path / "colorize.pt"
    torch.jit.script(ColorizeService(old)).save(str(exported))
    both = colorizer("tiny", head="both")
    fresh = load_matching_weights(both, exported)
    assert fresh == ["class_prior", "classes.bias", "classes.weight"]
    assert torch.equal(both.head.weight, old.head.weight) and torch.equal(both.enc1[0].weight, old.enc1[0].weight)
    with pytest.raises(ValueError, match="does not fit"):
        load_matching_weights(colorizer("small"), exported)

    common = ["colorize", "--preset", "tiny", "--batch", "2", "--patch", "64", "--eval-every", "2", "--val-patches", "2",
              "--threads", "1", "--ema", "0.5"]
    main([*common, "--steps", "2", "--out", str(tmp_path / "first")])
    saved = torch.load(tmp_path / "first" / "checkpoint.pt", weights_only=False)
    main([*common, "--steps", "1", "--lr", "0", "--out", str(tmp_path / "second"),
          "--init-from", str(tmp_path / "first" / "checkpoint.pt")])
    second = torch.load(tmp_path / "second" / "checkpoint.pt", weights_only=False)
    assert torch.equal(second["model"]["head.weight"], saved["ema"]["module.head.weight"])  # lr 0: unchanged
    assert not torch.equal(saved["ema"]["module.head.weight"], saved["model"]["head.weight"])


FAULTS_PROBE = """
import resource, sys, torch
from training.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def faults_of_one_step():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.ones(16 << 20)  # 64 MiB of activations, allocated, written and freed as in a training step
    del x
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults = [faults_of_one_step() for _ in range(12)]
print(max(faults[-3:]))  # (glibc's aligned allocations settle after a few steps)
"""


@pytest.mark.parametrize("setting", ["keep", "default"])
def test_training_keeps_freed_activations_instead_of_faulting_them_in_each_step(setting):
    """With the training allocator settings a freed 64 MiB buffer is reused without page faults; with
    glibc's defaults it is unmapped and faulted in again (16,384 pages) every time."""
    import subprocess
    import sys

    faults = int(subprocess.run([sys.executable, "-c", FAULTS_PROBE, setting], capture_output=True, text=True,
                                check=True).stdout)
    assert faults < 1000 if setting == "keep" else faults > 10000
