"""How a model runs on a batch (:func:`run`: the one place that decides tiling), padding to a
multiple, and overlapping-tile inference with seamless blending.

Tiles of ``tile`` input pixels are run with ``overlap`` extra pixels of context on each
side. Neighbouring tiles are cross-faded over the middle ``overlap`` pixels of their shared
``2 * overlap`` band, so every output pixel that is used lies at least ``overlap / 2`` from
its tile's edge: with ``overlap >= 2 * receptive field`` the result equals untiled inference
(up to float rounding), and the linear cross-fade hides any residual difference otherwise.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch.nn import functional as F

from model_metadata import ModelMetadata

Model = Callable[[torch.Tensor], torch.Tensor]


def run(model: Model, x: torch.Tensor, metadata: ModelMetadata, tile: int) -> torch.Tensor:
    """``model`` on [N, C, H, W] as its metadata says: in overlapping tiles when :func:`tiles` says so,
    else on the whole image; always padded to its stride and cropped back to ``scale`` x the input size."""
    if not tiles(x.shape, metadata, tile):
        return run_padded(model, x, metadata.stride, metadata.scale)
    tile, overlap = _tile_and_overlap(metadata, tile)
    return run_tiled(model, x, tile, overlap, metadata.stride, metadata.scale)


def tiles(shape: Sequence[int], metadata: ModelMetadata, tile: int) -> bool:
    """Whether an input of ``shape`` [..., H, W] runs in tiles of ``tile`` input pixels (0: never)."""
    if metadata.large_image != "tiles" or tile <= 0:
        return False
    tile, overlap = _tile_and_overlap(metadata, tile)
    return shape[-2] > tile + overlap or shape[-1] > tile + overlap


def _tile_and_overlap(metadata: ModelMetadata, tile: int) -> tuple[int, int]:
    """Both on the model's stride grid; the overlap covers the receptive field on both sides."""
    overlap = round_up(2 * metadata.context, metadata.stride)
    return round_up(max(tile, overlap), metadata.stride), overlap


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad bottom/right of [N, C, H, W] so H and W divide by ``multiple`` (reflect where possible)."""
    ph, pw = -x.shape[-2] % multiple, -x.shape[-1] % multiple
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < x.shape[-2] and pw < x.shape[-1] else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def run_padded(model: Model, x: torch.Tensor, multiple: int, scale: int) -> torch.Tensor:
    """Run ``model`` on ``x`` padded to ``multiple``, cropping the output back to ``scale`` x size."""
    h, w = x.shape[-2:]
    return model(pad_to_multiple(x, multiple))[..., : h * scale, : w * scale]


def _windows(length: int, tile: int, overlap: int) -> list[tuple[int, int, int]]:
    """(core start, window start, window end) of each tile along one axis."""
    return [(s, max(0, s - overlap), min(length, s + tile + overlap)) for s in range(0, length, tile)]


def _ramp(start: int, end: int, core: int, tile: int, length: int, overlap: int, scale: int) -> torch.Tensor:
    """Blend weights over one window, in output pixels: fades in/out where a neighbour takes over."""
    pos = torch.arange(start * scale, end * scale, dtype=torch.float32) + 0.5
    weight = torch.ones_like(pos)
    band = overlap * scale
    if core > 0:  # a neighbour on the low side
        weight *= ((pos - (core - overlap / 2) * scale) / band).clamp(0, 1)
    if core + tile < length:  # a neighbour on the high side
        weight *= (((core + tile + overlap / 2) * scale - pos) / band).clamp(0, 1)
    return weight


def run_tiled(model: Model, x: torch.Tensor, tile: int, overlap: int, multiple: int = 1, scale: int = 1) -> torch.Tensor:
    """Run ``model`` over [N, C, H, W] tile by tile; returns [N, C', H * scale, W * scale].

    ``tile`` and ``overlap`` must be multiples of ``multiple`` (the model's stride), so every
    tile samples the same grid as the whole image would; ``tile >= overlap``.
    """
    n, _, h, w = x.shape
    if h <= tile + overlap and w <= tile + overlap:  # one tile would hold it all
        return run_padded(model, x, multiple, scale)
    out = weight_sum = None
    for core_y, y0, y1 in _windows(h, tile, overlap):
        wy = _ramp(y0, y1, core_y, tile, h, overlap, scale).to(x.device)
        for core_x, x0, x1 in _windows(w, tile, overlap):
            wx = _ramp(x0, x1, core_x, tile, w, overlap, scale).to(x.device)
            piece = run_padded(model, x[..., y0:y1, x0:x1], multiple, scale).float()
            if out is None:
                out = torch.zeros(n, piece.shape[1], h * scale, w * scale, device=x.device)
                weight_sum = torch.zeros(h * scale, w * scale, device=x.device)
            mask = wy[:, None] * wx[None, :]
            out[..., y0 * scale:y1 * scale, x0 * scale:x1 * scale] += piece * mask
            weight_sum[y0 * scale:y1 * scale, x0 * scale:x1 * scale] += mask
    return out.div_(weight_sum)  # in place: a second full-size output would double the peak
