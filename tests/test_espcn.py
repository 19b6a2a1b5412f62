"""ESPCN: presets, shapes, TorchScript parity, and the committed weights."""
from __future__ import annotations

import pytest
import torch

from tests.support import ROOT
from training.models.espcn import espcn


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_portrait_preset_has_71840_parameters():
    assert count(espcn("portrait", 4)) == 71_840


def test_paper_preset_matches_shi_et_al():
    # 5x5x3x64 + 3x3x64x32 + 3x3x32x(3*16), with biases
    assert count(espcn("paper", 4)) == (5 * 5 * 3 * 64 + 64) + (9 * 64 * 32 + 32) + (9 * 32 * 48 + 48)


@pytest.mark.parametrize("preset", ["paper", "portrait", "deblock"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_is_scale_times_larger(preset, scale):
    out = espcn(preset, scale)(torch.rand(2, 3, 13, 17))
    assert out.shape == (2, 3, 13 * scale, 17 * scale)


@pytest.mark.parametrize("preset", ["paper", "portrait", "deblock"])
def test_scripted_matches_eager(preset):
    model = espcn(preset).eval()
    x = torch.rand(1, 3, 31, 23)
    with torch.inference_mode():
        assert (torch.jit.script(model)(x) - model(x)).abs().max().item() < 1e-5


def test_committed_weights_load_and_upscale():
    model = torch.jit.load(str(ROOT / "archives" / "superres" / "superres.pt")).eval()
    with torch.inference_mode():
        out = model(torch.rand(1, 3, 20, 30))
    assert out.shape == (1, 3, 80, 120)
    assert (ROOT / "archives" / "superres" / "TRAINED_WITH.txt").exists()
