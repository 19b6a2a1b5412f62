"""Guided colorization: L of colour photo patches (+ sampled hints, + a reference view) -> their ab.

A batch is (L, hint ab, hint mask, reference Lab, has_reference, true ab, true RGB). The loss
is L1 on ab; validation scores the L-preserving RGB recombination against the true photo,
with the grayscale photo (ab = 0) as the baseline.
"""
from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.nn import functional as F

from training.colour import recombine, rgb_to_lab
from training.degradations.colour_cast import random_cast
from training.degradations.colour_hints import sample_hints
from training.degradations.reference_views import sample_references
from training.models.colorizer import AB_SCALE, PRESETS, ColorizeService, colorizer
from training.task import Task


class ColorizeTask(Task):
    name = "colorize"
    default_patch = 96
    default_batch = 12
    default_steps = 4000
    default_lr = 2e-3
    default_max_side = 256  # the service predicts ab at <= 256 px (its working size): train at that scale

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
        parser.add_argument("--p-cast", type=float, default=0.3,
                            help="probability of a random colour cast on a photo and its reference")

    def build_model(self) -> nn.Module:
        return colorizer(self.args.preset)

    def make_batch(self, clean: torch.Tensor) -> tuple[torch.Tensor, ...]:
        cast = torch.rand(clean.shape[0], 1, 1, 1) < self.args.p_cast
        clean = torch.where(cast, random_cast(clean), clean)
        lab = rgb_to_lab(clean)
        refs, has_ref = sample_references(clean)
        hint_ab, hint_mask = sample_hints(lab[:, 1:])
        return lab[:, :1], hint_ab, hint_mask, rgb_to_lab(refs), has_ref, lab[:, 1:], clean

    def _ab(self, model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return model(*batch[:5])

    def restore(self, model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return recombine(batch[0], self._ab(model, batch))

    def baseline(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return recombine(batch[0], torch.zeros_like(batch[5]))

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return F.l1_loss(self._ab(model, batch), batch[5]) / AB_SCALE

    def export_module(self, model: nn.Module) -> nn.Module:
        return ColorizeService(model)

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        """Two held-out photos, hinted with their own colours, each with the other as reference."""
        clean, mask = self.val_batch[-1][:2], self.val_batch[2][:2]
        return clean, clean, mask, clean.flip(0), torch.ones(2)


TASK = ColorizeTask
