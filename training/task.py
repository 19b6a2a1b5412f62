"""What a model's training needs to tell the shared loop (``training/loop.py``).

Each model has one Task subclass in ``training/tasks/<endpoint>.py``: it builds the model,
makes training batches (degrading clean photos), and validates against the trivial baseline.
"""
from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from training.data import PatchSampler, list_images, split
from training.metrics import psnr


class Task(ABC):
    """Base for the per-model training recipes. Batches are tuples of tensors: (input, target)."""

    name: str = ""
    default_patch: int = 96
    default_batch: int = 16
    default_steps: int = 20000
    default_lr: float = 1e-3
    default_max_side: int | None = None  # downscale big photos on load (faces are 1024²)

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        train_paths, self.val_paths = split(list_images(args.data))
        self.sampler = self.make_sampler(train_paths, args.seed)
        # Fixed validation crops from held-out photos, degraded once with a fixed seed.
        val_sampler = self.make_sampler(self.val_paths, args.seed + 1)
        torch.manual_seed(args.seed + 1)
        self.val_batch = self.make_batch(val_sampler.sample(args.val_patches))

    def rng_state(self) -> dict:
        """Every random state batches depend on, saved in checkpoints so a resumed run continues the sequence."""
        return {"sampler": self.sampler.gen.get_state()}

    def load_rng_state(self, state: dict) -> None:
        self.sampler.gen.set_state(state["sampler"])

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Model-specific options (preset, degradation strengths, ...)."""

    def make_sampler(self, paths: list[Path], seed: int) -> PatchSampler:
        """Where patches come from (override e.g. to crop aligned pairs instead of single photos)."""
        return PatchSampler(paths, self.args.patch, self.args.max_side, seed=seed)

    @abstractmethod
    def build_model(self) -> nn.Module: ...

    @abstractmethod
    def make_batch(self, clean: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Degrade clean patches [N, 3, P, P] into an (input, target) training pair."""

    def restore(self, model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return model(batch[0])

    def baseline(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The trivial answer the model must beat (default: the input itself)."""
        return batch[0]

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return F.l1_loss(self.restore(model, batch), batch[-1])

    def score(self, pred: torch.Tensor, target: torch.Tensor) -> float:
        return psnr(pred.clamp(0, 1), target)

    def export_module(self, model: nn.Module) -> nn.Module:
        """The module that gets scripted and served (default: the model itself)."""
        return model

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        """Inputs for the scripted-vs-eager check at export."""
        return (self.val_batch[0][:2],)

    @torch.no_grad()
    def validate(self, model: nn.Module) -> dict[str, float]:
        pred = self.restore(model, self.val_batch)
        target = self.val_batch[-1]
        return {"val_psnr": self.score(pred, target), "baseline_psnr": self.score(self.baseline(self.val_batch), target)}

    @torch.no_grad()
    def preview_rows(self, model: nn.Module, count: int = 4) -> list[list[torch.Tensor]]:
        """Rows of [before, after, target] images for the grid written after training."""
        batch = tuple(t[:count] for t in self.val_batch)
        before, after, target = self.baseline(batch), self.restore(model, batch), batch[-1]
        return [[before[i], after[i].clamp(0, 1), target[i]] for i in range(before.shape[0])]
