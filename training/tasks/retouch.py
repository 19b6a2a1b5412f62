"""Global retouching: photos with random global edits -> the original photos (CSRNet).

Or, with ``--paired DIR``, real before/after pairs: ``DIR/input/<name>`` and
``DIR/target/<name>`` with matching file names (the MIT-Adobe FiveK expert-C layout).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from training.data import PatchSampler, list_images, load_rgb, split
from training.degradations.global_edits import random_global_edits
from training.models.csrnet import PRESETS, ThumbnailCSRNet, csrnet
from training.task import Task

# Long side of the thumbnail the served model computes its condition from. Training photos
# are loaded at this size too, so the condition network sees the same scale in both.
THUMB_SIZE = 256


class PairedSampler(PatchSampler):
    """Aligned random crops of (input, target) pairs, returned stacked as [N, 6, P, P]."""

    def __init__(self, inputs: list[Path], target_dir: Path, patch: int, max_side: int | None = None,
                 seed: int = 0) -> None:
        pairs = [torch.cat([load_rgb(p, max_side), load_rgb(target_dir / p.name, max_side)]) for p in inputs]
        self.images = [img for img in pairs if min(img.shape[1:]) >= patch]
        if not self.images:
            raise ValueError(f"no image pair is at least {patch}px on its short side")
        self.patch = patch
        self.gen = torch.Generator().manual_seed(seed)


class RetouchTask(Task):
    name = "retouch"
    default_patch = 128
    default_batch = 16
    default_steps = 2000
    default_lr = 2e-3
    default_max_side = THUMB_SIZE

    def __init__(self, args: argparse.Namespace) -> None:
        if not args.paired:
            super().__init__(args)
            return
        # Same recipe as Task.__init__, with samplers over the paired folders.
        self.args = args
        root = Path(args.paired)
        train_paths, self.val_paths = split(list_images([str(root / "input")]))
        self.sampler = PairedSampler(train_paths, root / "target", args.patch, args.max_side, args.seed)
        val_sampler = PairedSampler(self.val_paths, root / "target", args.patch, args.max_side, args.seed + 1)
        self.val_batch = self.make_batch(val_sampler.sample(args.val_patches))

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--preset", choices=sorted(PRESETS), default="paper")
        parser.add_argument("--paired", type=Path, default=None,
                            help="folder with input/ and target/ subfolders of matching file names")
        parser.add_argument("--edit-prob", type=float, default=0.4, help="probability of each synthetic edit")
        parser.add_argument("--base-pixels", type=int, default=4096,
                            help="random pixels per patch the base network is trained on (it is per-pixel)")

    def build_model(self) -> nn.Module:
        return csrnet(self.args.preset)

    def make_batch(self, clean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if clean.shape[1] == 6:  # a paired sample: input and target stacked
            return clean[:, :3], clean[:, 3:]
        return random_global_edits(clean, self.args.edit_prob), clean

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """L1 on a random subset of pixels: the condition sees the whole patch, but the 1x1 base
        network is per-pixel, so a subset gives the same expected gradient for far less work."""
        x, target = batch
        cond = model.condition(x)
        idx = torch.randperm(x.shape[-2] * x.shape[-1])[: self.args.base_pixels]
        pick = lambda t: t.flatten(2)[:, :, idx, None]  # noqa: E731  [N, 3, k, 1]
        return F.l1_loss(model.modulate(pick(x), cond), pick(target))

    def export_module(self, model: nn.Module) -> nn.Module:
        return ThumbnailCSRNet(model, THUMB_SIZE)

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        # Larger than the thumbnail, so the export check covers the downscaling path too.
        return (F.interpolate(self.val_batch[0][:1], scale_factor=2.0, mode="bilinear"),)


TASK = RetouchTask
