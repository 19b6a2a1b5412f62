"""x4 super-resolution: downscaled photo patches -> the original patches.

``--degradation clean`` (the default, the shipped model): antialiased bicubic downscales.
``--degradation real`` / ``jpeg``: real low-res photos' degradations (blur, mixed downscale kernels, noise,
JPEG; ``training/degradations/real_lowres.py``, its ``MIXES``) on a share, plain bicubic on the rest.
"""
from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from training.degradations import real_lowres
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

    def __init__(self, args: argparse.Namespace) -> None:
        mix = getattr(args, "degradation", "clean")
        self.real = None if mix == "clean" else dataclasses.replace(real_lowres.MIXES[mix], scale=SCALE)
        # Validation crops are degraded with their own stream (before super(), which makes them), so the
        # training sequence does not depend on how many validation patches there are.
        self.rng = np.random.default_rng(args.seed + 1)
        super().__init__(args)
        self.rng = np.random.default_rng(args.seed)

    def rng_state(self) -> dict:
        # The clean run's checkpoints stay as they were: only a real run has a degradation stream.
        extra = {"degrade": self.rng.bit_generator.state} if self.real is not None else {}
        return {**super().rng_state(), **extra}

    def load_rng_state(self, state: dict) -> None:
        super().load_rng_state(state)
        if "degrade" in state and self.real is not None:
            self.rng.bit_generator.state = state["degrade"]

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--preset", choices=sorted(PRESETS), default="portrait")
        parser.add_argument("--degradation", choices=("clean", *real_lowres.MIXES), default="clean",
                            help="clean: bicubic downscales (today's model); real: blur, noise, JPEG as real "
                                 "small photos have them, on a share; jpeg: the same weighted to JPEG'd "
                                 "downscales (docs/superres_real.md)")

    def build_model(self) -> nn.Module:
        return espcn(self.args.preset, SCALE)

    def make_batch(self, clean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.real is not None:
            return real_lowres.degrade(clean, self.rng, self.real)
        return bicubic_down(clean), clean[..., : clean.shape[-2] // SCALE * SCALE, : clean.shape[-1] // SCALE * SCALE]

    def baseline(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return bicubic_up(batch[0])

    def score(self, pred: torch.Tensor, target: torch.Tensor) -> float:
        return psnr_y(pred, target, border=SCALE)


TASK = SuperResTask
