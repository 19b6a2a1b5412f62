"""Tiled inference must agree with untiled inference (the seam test) and keep any size."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from model_metadata import ModelMetadata
from tiling import pad_to_multiple, run, run_padded, run_tiled, tiles
from training.models.espcn import espcn


def strided_net() -> nn.Module:
    """Stride-2 down and transposed-conv up, as the deblur network: tiles must align to the stride."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 7, padding=3), nn.LeakyReLU(0.2), nn.Conv2d(8, 8, 3, stride=2, padding=1),
                         nn.LeakyReLU(0.2), nn.Conv2d(8, 8, 3, padding=2, dilation=2),
                         nn.ConvTranspose2d(8, 3, 4, stride=2, padding=1)).eval()


@pytest.mark.parametrize("size", [(130, 97), (64, 200), (257, 255)])
def test_espcn_tiled_matches_untiled(size):
    torch.manual_seed(1)
    model = espcn("portrait").eval()
    x = torch.rand(1, 3, *size)
    with torch.inference_mode():
        whole = run_padded(model, x, 1, 4)
        tiled = run_tiled(model, x, tile=48, overlap=12, multiple=1, scale=4)
    assert tiled.shape == whole.shape == (1, 3, size[0] * 4, size[1] * 4)
    assert (tiled - whole).abs().max().item() < 1 / 255


@pytest.mark.parametrize("size", [(150, 121), (99, 301)])
def test_strided_model_tiled_matches_untiled(size):
    model = strided_net()
    x = torch.rand(2, 3, *size)
    with torch.inference_mode():
        whole = run_padded(model, x, 2, 1)
        tiled = run_tiled(model, x, tile=40, overlap=16, multiple=2, scale=1)
    assert tiled.shape == whole.shape == (2, 3, *size)
    assert (tiled - whole).abs().max().item() < 1 / 255


def test_too_little_overlap_shows_seams():
    """The test above could not pass by accident: with no overlap, tiles differ at their edges."""
    model = strided_net()
    x = torch.rand(1, 3, 128, 128)
    with torch.inference_mode():
        whole = run_padded(model, x, 2, 1)
        naive = run_tiled(model, x, tile=32, overlap=0, multiple=2, scale=1)
    assert (naive - whole).abs().max().item() > 1 / 255


def test_pad_to_multiple_pads_bottom_right_and_tiny_inputs():
    x = torch.rand(1, 3, 5, 7)
    padded = pad_to_multiple(x, 4)
    assert padded.shape[-2:] == (8, 8) and torch.equal(padded[..., :5, :7], x)
    assert pad_to_multiple(torch.rand(1, 3, 1, 1), 4).shape[-2:] == (4, 4)  # too small to reflect


def test_run_follows_the_metadata():
    """One place decides: tiles only for a ``tiles`` model past the tile size, on its stride grid."""
    calls = []

    def model(t: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(t.shape[-2:]))
        return t.repeat_interleave(2, -1).repeat_interleave(2, -2)

    x = torch.rand(1, 3, 100, 70)
    tiled = ModelMetadata(scale=2, stride=4, receptive_field=9, large_image="tiles")  # context 5 -> overlap 12
    assert tiles(x.shape, tiled, 32) and not tiles(x.shape, tiled, 0) and not tiles(x.shape, tiled, 100)
    assert run(model, x, tiled, 30).shape == (1, 3, 200, 140)
    assert len(calls) > 1 and all(h % 4 == 0 and w % 4 == 0 for h, w in calls)  # every tile padded to the stride
    for strategy in ("whole", "model"):
        calls.clear()
        run(model, x, ModelMetadata(scale=2, stride=4, large_image=strategy), 30)
        assert calls == [(100, 72)]  # the whole image, padded to the stride


def test_a_measured_tile_context_replaces_half_the_receptive_field():
    exact = ModelMetadata(stride=4, receptive_field=267)
    measured = ModelMetadata(stride=4, receptive_field=267, tile_context=64)
    assert exact.context == 134 and measured.context == 64
    assert ModelMetadata.from_json(measured.to_json()) == measured
    with pytest.raises(ValueError):
        ModelMetadata(stride=4, receptive_field=267, tile_context=-1)


def test_the_smallest_tile_context_is_within_tolerance_and_the_next_smaller_is_not():
    """benchmarks/tile_context.py on a strided network with random weights and photo-like inputs."""
    from benchmarks.tile_context import largest_difference, smallest_context
    from tests.support import photo

    model = nn.Sequential(strided_net(), *[nn.Conv2d(3, 3, 3, padding=1) for _ in range(12)]).eval()
    metadata = ModelMetadata(stride=2, receptive_field=7 + 2 + 2 * 4 + 4 + 2 * 12)  # 43 px: context 22
    photos = [torch.from_numpy(np.asarray(photo(120, 90, seed=s))).permute(2, 0, 1)[None].float() / 255 for s in range(2)]
    tolerance = 1e-4  # strict: random weights fade fast, and the search must stop past its first candidates
    context, tried = smallest_context(model, photos, metadata, 24, tolerance)
    with torch.inference_mode():
        wholes = [run_padded(model, x, 2, 1).clamp(0, 1) for x in photos]
        assert largest_difference(model, photos, wholes, metadata, context, 24) < tolerance
        assert context > 2 and largest_difference(model, photos, wholes, metadata, context - 2, 24) >= tolerance
    assert context < metadata.context and len(tried) <= 5
