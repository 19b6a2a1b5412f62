"""Deblurring: sharp photo patches blurred by synthetic camera shake/defocus, noise and JPEG -> the sharp patches.

With ``--pairs`` the ``--data`` folders hold real pairs instead, in the GoPro layout: any folder
``.../blur/NAME`` next to ``.../sharp/NAME``; aligned crops of both are used as they are.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.data import PairedPatchSampler, PatchSampler
from training.degradations.motion_blur import BlurConfig, degrade
from training.models.atrous_deblur import PRESETS, atrous_deblur
from training.task import Task


def blur_partner(sharp: Path) -> Path:
    return sharp.parent.parent / "blur" / sharp.name


class DeblurTask(Task):
    name = "deblur"
    default_patch = 226  # degraded with 'valid' blur: the pairs are max_kernel - 1 = 34 px smaller (192 px)
    default_batch = 8
    default_steps = 6000
    default_lr = 1e-3
    default_max_side = 1024  # blur sizes (up to 35 px) are meant relative to 720p-1080p frames

    def __init__(self, args: argparse.Namespace) -> None:
        self.blur = BlurConfig(kernel_sizes=(args.kernel_min, args.kernel_max))
        self.rng = np.random.default_rng(args.seed)  # before super(): it degrades the validation crops
        super().__init__(args)

    def rng_state(self) -> dict:
        return {**super().rng_state(), "degrade": self.rng.bit_generator.state}

    def load_rng_state(self, state: dict) -> None:
        super().load_rng_state(state)
        if "degrade" in state:
            self.rng.bit_generator.state = state["degrade"]

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
        parser.add_argument("--pairs", action="store_true", help="--data holds real blur/ + sharp/ pairs (GoPro layout)")
        parser.add_argument("--kernel-min", type=int, default=BlurConfig.kernel_sizes[0], help="smallest blur kernel (odd)")
        parser.add_argument("--kernel-max", type=int, default=BlurConfig.kernel_sizes[1], help="largest blur kernel (odd)")

    def build_model(self) -> nn.Module:
        return atrous_deblur(self.args.preset)

    def make_sampler(self, paths: list[Path], seed: int) -> PatchSampler:
        if not self.args.pairs:
            return super().make_sampler(paths, seed)
        sharp = [p for p in paths if p.parent.name == "sharp" and blur_partner(p).exists()]
        return PairedPatchSampler([(blur_partner(p), p) for p in sharp], self.args.patch, self.args.max_side, seed)

    def make_batch(self, clean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if clean.shape[1] == 6:  # a real pair from PairedPatchSampler
            return clean[:, :3], clean[:, 3:]
        return degrade(clean, self.rng, self.blur)


TASK = DeblurTask
