"""x4 super-resolution: bicubic-downscaled photo patches -> the original patches."""
from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.nn import functional as F

from training.metrics import psnr_y
from training.models.espcn import PRESETS, espcn
from training.task import Task

SCALE = 4


def bicubic_down(hr: torch.Tensor, scale: int = SCALE) -> torch.Tensor:
    """Antialiased bicubic downscale (as PIL/MATLAB imresize), the standard SR degradation."""
    h, w = hr.shape[-2] // scale, hr.shape[-1] // scale
    hr = hr[..., : h * scale, : w * scale]
    return F.interpolate(hr, size=(h, w), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)


def bicubic_up(lr: torch.Tensor, scale: int = SCALE) -> torch.Tensor:
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)


class SuperResTask(Task):
    name = "superres"
    default_patch = 96
    default_batch = 16
    default_steps = 40000
    default_lr = 1e-3
    default_max_side = 512  # faces are 1024²; halving them keeps detail at the scale users send

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--preset", choices=sorted(PRESETS), default="portrait")

    def build_model(self) -> nn.Module:
        return espcn(self.args.preset, SCALE)

    def make_batch(self, clean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return bicubic_down(clean), clean[..., : clean.shape[-2] // SCALE * SCALE, : clean.shape[-1] // SCALE * SCALE]

    def baseline(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return bicubic_up(batch[0])

    def score(self, pred: torch.Tensor, target: torch.Tensor) -> float:
        return psnr_y(pred, target, border=SCALE)


TASK = SuperResTask
