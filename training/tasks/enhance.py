"""Light-bleed removal (FiLM²): photo patches with synthetic glow/flare/veiling glare, or made into night shots
with street-light flare (``training/degradations/flare.py``) -> the same patches without the stray light."""
from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.nn import functional as F

from training.degradations.flare import night_flare
from training.degradations.glare import add_glare
from training.models.film2 import CONDITION_SIDE, PRESETS, film2
from training.task import Task


class EnhanceTask(Task):
    name = "enhance"
    default_patch = 256  # the original work found 256 better than 128 and 512: glare needs context
    default_batch = 8
    default_steps = 3000
    default_lr = 1e-3
    default_max_side = 512

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
        parser.add_argument("--encoder-weights", default=None,
                            help="local torchvision ImageNet checkpoint for the encoder (nothing is downloaded)")
        parser.add_argument("--branch-weight", type=float, default=0.5,
                            help="weight of each decoder's own L1 loss next to the ensemble's, so each one "
                                 "is a full estimate on its own")
        parser.add_argument("--clean-fraction", type=float, default=0.2,
                            help="share of patches left undegraded: without them the model 'removes' an expected "
                                 "veil from every bright photo, clean ones included")
        parser.add_argument("--flare-share", type=float, default=0.0,
                            help="share of patches made into night shots with lens flare (starbursts, glow, "
                                 "ghosts, veil); the rest get the daylight glare synthesis")

    def __init__(self, args: argparse.Namespace) -> None:
        # The degradation's own stream (saved in checkpoints): a resumed run draws the same flares.
        self.gen = torch.Generator().manual_seed(args.seed + 7)
        super().__init__(args)

    def rng_state(self) -> dict:
        return {**super().rng_state(), "degradation": self.gen.get_state()}

    def load_rng_state(self, state: dict) -> None:
        super().load_rng_state(state)
        if "degradation" in state:  # checkpoints from before the stream was kept
            self.gen.set_state(state["degradation"])

    def build_model(self) -> nn.Module:
        return film2(self.args.preset, self.args.encoder_weights)

    def make_batch(self, clean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Flips/rotations come from the sampler; no brightness/colour jitter (the task is about light).
        n = clean.shape[0]
        night = torch.rand(n, generator=self.gen) < self.args.flare_share
        target = torch.round(clean * 255) / 255
        degraded = target.clone()
        if (~night).any():
            degraded[~night] = add_glare(clean[~night], self.gen)
        if night.any():
            degraded[night], target[night] = night_flare(clean[night], self.gen)
        # Clean patches (a night one keeps its lamps, unflared): the model must leave them as they are.
        untouched = torch.rand(n, generator=self.gen) < self.args.clean_fraction
        degraded[untouched] = target[untouched]
        return degraded, target

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        main, light = model.branches(batch[0])
        target = batch[-1]
        ensemble = F.l1_loss(0.5 * main + 0.5 * light, target)
        return ensemble + self.args.branch_weight * (F.l1_loss(main, target) + F.l1_loss(light, target))

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        # Wider than the model's condition_side, so the export check covers the downscaled-condition path too.
        wide = (64, CONDITION_SIDE + 77)
        return (F.interpolate(self.val_batch[0][:1], size=wide, mode="bilinear", align_corners=False),)


TASK = EnhanceTask
