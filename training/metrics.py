"""Image quality metrics used by training and the evaluation scripts."""
from __future__ import annotations

import math

import torch


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma in [16/255, 235/255] (as MATLAB's rgb2ycbcr, the SR convention)."""
    r, g, b = x[..., 0, :, :], x[..., 1, :, :], x[..., 2, :, :]
    return (16.0 + 65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def psnr(pred: torch.Tensor, target: torch.Tensor, border: int = 0) -> float:
    """PSNR in dB of images in [0, 1]; ``border`` pixels are cropped from every side."""
    if border:
        pred = pred[..., border:-border, border:-border]
        target = target[..., border:-border, border:-border]
    mse = torch.mean((pred.double() - target.double()) ** 2).item()
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


def psnr_y(pred: torch.Tensor, target: torch.Tensor, border: int = 0) -> float:
    """PSNR on the Y channel, quantised to 8 bits first, as super-resolution papers report it."""
    quant = lambda t: torch.round(t.clamp(0, 1) * 255) / 255  # noqa: E731
    return psnr(rgb_to_y(quant(pred)), rgb_to_y(quant(target)), border)
