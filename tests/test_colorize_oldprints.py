"""The oldprints benchmark's colour figures (benchmarks/colorize_oldprints.py): blotches score, colour on edges does not."""
from __future__ import annotations

import torch

from benchmarks.colorize_oldprints import colour_figures
from training.colour import lab_to_rgb


def lab_image(a_left: float, a_right: float, l_left: float, l_right: float, split: int = 128) -> torch.Tensor:
    lab = torch.zeros(1, 3, 128, 256)
    lab[:, 0, :, :split], lab[:, 0, :, split:] = l_left, l_right
    lab[:, 1, :, :split], lab[:, 1, :, split:] = a_left, a_right
    return lab_to_rgb(lab)


def test_grey_has_no_chroma_and_no_blotches():
    figures = colour_figures(lab_image(0, 0, 40, 60))
    assert figures["chroma"] < 0.5 and figures["blotchiness"] < 0.5


def test_a_colour_change_on_a_lightness_edge_is_not_a_blotch_but_one_on_a_flat_area_is():
    on_edge = colour_figures(lab_image(25, -25, 40, 60))
    on_flat = colour_figures(lab_image(25, -25, 50, 50))
    assert abs(on_edge["chroma"] - on_flat["chroma"]) < 2
    assert on_edge["blotchiness"] < 2 < 4 < on_flat["blotchiness"]
