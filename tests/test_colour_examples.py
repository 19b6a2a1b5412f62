"""The inputs of issue 14's example grids (benchmarks/colour_examples.py): an archive print is grey and
faded, a dull photo is darker and less colourful than its original; both are 8-bit and deterministic.
Grey photos have no colour to score and stay out of the colorize benchmark."""
from __future__ import annotations

import numpy as np
import torch

from benchmarks.colorize_quality import colour_photos, colourfulness
from benchmarks.colour_examples import archive_print, dull
from tests.support import photo


def original() -> torch.Tensor:
    return torch.from_numpy(np.array(photo(96, 64))).permute(2, 0, 1)[None].float() / 255


def test_an_archive_print_is_grey_faded_8_bit_and_the_same_for_a_seed():
    x = original()
    grey = archive_print(x, 0)
    assert grey.shape == x.shape
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])
    assert torch.equal(grey, torch.round(grey * 255) / 255)
    assert grey.min() > 0.02 and grey.max() < 0.95  # lifted blacks, dimmed whites
    assert torch.equal(grey, archive_print(x, 0)) and not torch.equal(grey, archive_print(x, 1))


def test_a_dull_photo_is_darker_and_less_colourful():
    x = original()
    flat = dull(x)
    assert flat.shape == x.shape and torch.equal(flat, torch.round(flat * 255) / 255)
    assert flat.mean() < x.mean() - 0.05
    assert colourfulness(flat) < 0.8 * colourfulness(x)
    assert flat.min() >= 0.05  # lifted blacks


def test_grey_photos_are_left_out_of_the_colorize_benchmark():
    x = original()
    grey = x.mean(1, keepdim=True).expand_as(x).contiguous()
    kept, left_out = colour_photos([("colour.png", x), ("grey.png", grey)])
    assert [name for name, _ in kept] == ["colour.png"] and left_out == ["grey.png"]
