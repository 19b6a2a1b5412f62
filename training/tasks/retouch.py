"""Global retouching: photos with random global edits (``--degradation edits``) or turned back into a
flat camera rendering (``camera``) -> the original photos (CSRNet); a fraction of the photos is left
unedited, so a good photo learns to come back unchanged.

With ``--pairs`` the ``--data`` folders hold real before/after pairs instead: any
``.../input/NAME`` next to ``.../target/NAME`` (the MIT-Adobe FiveK expert-C layout).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from training.data import PairedPatchSampler, PatchSampler
from training.degradations.camera_rendering import camera_rendering
from training.degradations.global_edits import MAX_EDITS, random_global_edits
from training.models.csrnet import PRESETS, ThumbnailCSRNet, csrnet
from training.task import Task

# Long side of the thumbnail the served model computes its condition from. Training photos
# are loaded at this size too, so the condition network sees the same scale in both.
THUMB_SIZE = 128
# The ``psnr`` loss's floor on a photo's squared error (50 dB), so an unedited photo returned exactly
# cannot pull without bound. Measured (training/campaigns/colour/README.md): the unedited 15% still
# took much of the gradient at this floor; one near the 35 dB they must keep is the next trial.
PSNR_LOSS_FLOOR = 1e-5


def target_partner(path: Path) -> Path:
    return path.parent.parent / "target" / path.name


def negative_psnr(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Minus the mean over the batch of each photo's PSNR in dB (its squared error floored at
    ``PSNR_LOSS_FLOOR``): L1 spends the network on the strongest edits, this on every photo alike."""
    mse = (out - target).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(mse + PSNR_LOSS_FLOOR).mean()


class RetouchTask(Task):
    name = "retouch"
    default_patch = 80  # photos load at 128 px: a crop covers most of one
    default_batch = 32
    default_steps = 1800
    default_lr = 2e-3
    default_max_side = THUMB_SIZE

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--preset", choices=sorted(PRESETS), default="paper-skip")
        parser.add_argument("--pairs", action="store_true",
                            help="--data holds real input/ + target/ pairs with matching names (FiveK layout)")
        parser.add_argument("--degradation", choices=("edits", "camera", "both"), default="edits",
                            help="edits: random global edits both ways (training/degradations/global_edits.py); "
                                 "camera: a finished photo back to a flat camera rendering, one way, as FiveK's "
                                 "inputs relate to the experts' (training/degradations/camera_rendering.py); "
                                 "both: each photo one or the other, even odds")
        parser.add_argument("--max-edits", type=int, default=MAX_EDITS, help="most synthetic edits combined on one photo")
        parser.add_argument("--identity-fraction", type=float, default=0.15,
                            help="share of photos left unedited (input = target)")
        parser.add_argument("--base-pixels", type=int, default=4096,
                            help="random pixels per patch the base network is trained on (it is per-pixel)")
        parser.add_argument("--loss", choices=("l1", "psnr"), default="l1",
                            help="l1: per-pixel L1 (CSRNet's); psnr: minus the mean of the photos' PSNRs, so a "
                                 "mild edit weighs as much as a strong one, as in the benchmark's mean dB")

    def build_model(self) -> nn.Module:
        return csrnet(self.args.preset)

    def make_sampler(self, paths: list[Path], seed: int) -> PatchSampler:
        if not self.args.pairs:
            return super().make_sampler(paths, seed)
        pairs = [(p, target_partner(p)) for p in paths if p.parent.name == "input" and target_partner(p).exists()]
        return PairedPatchSampler(pairs, self.args.patch, self.args.max_side, seed)

    def make_batch(self, clean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if clean.shape[1] == 6:  # a real pair from PairedPatchSampler
            return clean[:, :3], clean[:, 3:]
        mix = getattr(self.args, "degradation", "edits")
        camera = {"edits": torch.zeros(len(clean), dtype=torch.bool), "camera": torch.ones(len(clean), dtype=torch.bool),
                  "both": torch.rand(len(clean)) < 0.5}[mix]  # which photos go back to a camera rendering
        x = clean.clone()
        if camera.any():
            x[camera] = camera_rendering(clean[camera], self.args.identity_fraction)
        if not camera.all():
            x[~camera] = random_global_edits(clean[~camera], self.args.max_edits, self.args.identity_fraction)
        return x, clean

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The loss on a random subset of pixels: the condition sees the whole patch, but the 1x1 base
        network is per-pixel, so a subset gives the same expected gradient for far less work."""
        x, target = batch
        cond = model.condition(x)
        idx = torch.randperm(x.shape[-2] * x.shape[-1])[: self.args.base_pixels]
        pick = lambda t: t.flatten(2)[:, :, idx, None]  # noqa: E731  [N, 3, k, 1]
        out, target = model.modulate(pick(x), cond), pick(target)
        if self.args.loss == "l1":
            return F.l1_loss(out, target)
        return negative_psnr(out, target)

    def export_module(self, model: nn.Module) -> nn.Module:
        return ThumbnailCSRNet(model, THUMB_SIZE)

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        # Larger than the thumbnail, so the export check covers the downscaling path too.
        size = (THUMB_SIZE + 61, THUMB_SIZE + 33)
        return (F.interpolate(self.val_batch[0][:1], size=size, mode="bilinear"),)


TASK = RetouchTask
