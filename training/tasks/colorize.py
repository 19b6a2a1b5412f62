"""Guided colorization: L of colour photo patches (+ sampled hints, + a reference view) -> their ab.

A batch is (L, hint ab, hint mask, reference Lab, has_reference, true ab, true RGB). About a
third of the samples are automatic (no hints, no reference); the others get 0-20 hints and, often,
a reference. ``--print-share``: that share of the samples gets its L from an old print of the photo
(faded, soft, grainy, scratched, toned, JPEG'd: ``training/degradations/old_print.py``), the target ab
staying the clean photo's, so automatic colour learns what archive scans look like. Losses: L1 on ab for the regression head; for the class head (Zhang et al. 2016)
cross-entropy against soft-encoded true ab, rebalanced by the training photos' ab prior
(``--ab-prior``, written by ``training/campaigns/colour/ab_prior.py``). Validation scores the
L-preserving RGB recombination against the true photo, with the grayscale photo (ab = 0) as the
baseline.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from training.colour import REBALANCE_LAMBDA, ab_bins, rebalancing_weights, recombine, rgb_to_lab, soft_encode
from training.degradations.colour_cast import random_cast
from training.degradations.colour_hints import MAX_HINTS, sample_hints
from training.degradations.old_print import old_prints
from training.degradations.reference_views import sample_references
from training.models.colorizer import AB_SCALE, PRESETS, READOUT, UPSAMPLING, ColorizeService, colorizer
from training.task import Task
from training.warm_start import load_matching_weights


def read_class_prior(path: Path) -> torch.Tensor:
    """The smoothed ab-bin prior [Q] from a file written by ``training/campaigns/colour/ab_prior.py``,
    checked to be over the same bins as the model's."""
    saved = json.loads(path.read_text())
    centres = torch.tensor(saved["centres"], dtype=torch.float32)
    if not torch.equal(centres, ab_bins()):
        raise ValueError(f"{path} was computed over other ab bins than the model's; recompute it")
    return torch.tensor(saved["prior"], dtype=torch.float32)


def rebalanced_cross_entropy(logits: torch.Tensor, ab: torch.Tensor, centres: torch.Tensor,
                             weights: torch.Tensor) -> torch.Tensor:
    """Zhang et al. 2016's loss: cross-entropy of the class logits [N, Q, h, w] against the true ``ab``
    [N, 2, H, W] averaged down to h x w and soft-encoded (the paper encodes its subsampled ground truth too;
    encoding at h x w costs a quarter of encoding every pixel), each pixel weighted by its most likely bin's weight."""
    with torch.autocast(ab.device.type, enabled=False):  # targets and log-probabilities in float32
        target = soft_encode(F.adaptive_avg_pool2d(ab.float(), logits.shape[-2:]), centres)
        pixel_weight = weights[target.argmax(1)]  # [N, h, w]
        return (-(target * F.log_softmax(logits.float(), 1)).sum(1) * pixel_weight).mean()


class ColorizeTask(Task):
    name = "colorize"
    default_patch = 96
    default_batch = 12
    default_steps = 4000
    default_lr = 2e-3
    default_max_side = 256  # the service predicts ab at <= 256 px (its working size): train at that scale

    def __init__(self, args: argparse.Namespace) -> None:
        self.rng = np.random.default_rng(args.seed)  # before super(): it degrades the validation crops
        self.class_prior = read_class_prior(args.ab_prior) if args.ab_prior else None
        if self.class_prior is None and PRESETS[args.preset].get("head", "regression") != "regression":
            print("colorize: no --ab-prior, so the class loss is not rebalanced", file=sys.stderr)
        super().__init__(args)

    def rng_state(self) -> dict:
        return {**super().rng_state(), "prints": self.rng.bit_generator.state}

    def load_rng_state(self, state: dict) -> None:
        super().load_rng_state(state)
        if "prints" in state:  # checkpoints from before --print-share
            self.rng.bit_generator.state = state["prints"]

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
        parser.add_argument("--ab-prior", type=Path, default=None,
                            help="ab-bin prior of the training photos (JSON from training/campaigns/colour/ab_prior.py)")
        parser.add_argument("--rebalance", type=float, default=REBALANCE_LAMBDA,
                            help="share of the uniform distribution mixed into the prior for the class weights")
        parser.add_argument("--ce-weight", type=float, default=1.0, help="weight of the class loss next to the L1")
        parser.add_argument("--temperature", type=float, default=None,
                            help="annealed-mean temperature of the readout (validation and export; default the preset's)")
        parser.add_argument("--mix", type=float, default=None,
                            help="the annealed mean's share of the output with both heads (default the preset's)")
        parser.add_argument("--guided-mix", type=float, default=None,
                            help="the same where hints or a reference are given (default the preset's)")
        parser.add_argument("--confidence", type=float, default=None,
                            help="class confidence below which the annealed mean's chroma shrinks (0: off; default the preset's)")
        parser.add_argument("--edge-radius", type=int, default=0,
                            help="export: bring ab to the photo's size with a guided filter on L of this radius (0: bilinear)")
        parser.add_argument("--edge-eps", type=float, default=1e-3, help="export: the guided filter's regulariser")
        parser.add_argument("--max-hints", type=int, default=MAX_HINTS, help="hints per sample: uniform from 0 to this")
        parser.add_argument("--p-automatic", type=float, default=0.3,
                            help="probability of a sample with neither hints nor reference (automatic mode)")
        parser.add_argument("--p-cast", type=float, default=0.3,
                            help="probability of a random colour cast on a photo with a reference, and on the reference")
        parser.add_argument("--print-share", type=float, default=0.0,
                            help="share of samples whose L is taken from an old print of the photo "
                                 "(training/degradations/old_print.py); the target ab stays the photo's")
        parser.add_argument("--guided-from", type=Path, default=None, metavar="FILE",
                            help="export this run as the automatic-mode network beside FILE's (a checkpoint or an "
                                 "export, preset --guided-preset), which answers photos with hints or a reference")
        parser.add_argument("--guided-preset", choices=sorted(PRESETS), default="small")

    def build_model(self) -> nn.Module:
        readout = {name: getattr(self.args, name) for name in READOUT if getattr(self.args, name) is not None}
        return colorizer(self.args.preset, self.class_prior, **readout)

    def make_batch(self, clean: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n = clean.shape[0]
        cast = torch.rand(n, 1, 1, 1) < self.args.p_cast
        casted = random_cast(clean)
        refs, has_ref = sample_references(torch.where(cast, casted, clean))
        automatic = torch.rand(n) < self.args.p_automatic
        has_ref = has_ref * ~automatic
        refs = refs * has_ref[:, None, None, None]
        # A cast can only be learnt from a reference that shows it: photos without one keep their colours.
        clean = torch.where(cast & (has_ref > 0)[:, None, None, None], casted, clean)
        lab = rgb_to_lab(clean)
        hint_ab, hint_mask = sample_hints(lab[:, 1:], self.args.max_hints)
        guided = (~automatic).to(lab.dtype)[:, None, None, None]
        l = lab[:, :1]
        if self.args.print_share > 0:
            printed, chosen = old_prints(clean, self.rng, self.args.print_share)
            l = torch.where(chosen[:, None, None, None], rgb_to_lab(printed)[:, :1], l)
        return l, hint_ab * guided, hint_mask * guided, rgb_to_lab(refs), has_ref, lab[:, 1:], clean

    def _ab(self, model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return model(*batch[:5])

    def restore(self, model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return recombine(batch[0], self._ab(model, batch))

    def baseline(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return recombine(batch[0], torch.zeros_like(batch[5]))

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        regression, logits = model.training_outputs(*batch[:5])
        true_ab = batch[5]
        loss = torch.zeros((), device=true_ab.device)
        if regression is not None:
            loss = loss + F.l1_loss(regression.float(), true_ab) / AB_SCALE
        if logits is not None:
            weights = rebalancing_weights(model.class_prior, self.args.rebalance)
            loss = loss + self.args.ce_weight * rebalanced_cross_entropy(logits, true_ab, model.ab_centres, weights)
        return loss

    def export_module(self, model: nn.Module) -> nn.Module:
        upsampling = {name: getattr(self.args, name) for name in UPSAMPLING}
        if self.args.guided_from is None:
            return ColorizeService(model, **upsampling)
        return ColorizeService(self.guided_network(), automatic=model, **upsampling)

    def guided_network(self) -> nn.Module:
        """The ``--guided-from`` weights, all of them (a partly loaded network would serve noise)."""
        net = colorizer(self.args.guided_preset, self.class_prior)
        missing = load_matching_weights(net, self.args.guided_from)
        if missing:
            raise ValueError(f"{self.args.guided_from} lacks {missing} of preset {self.args.guided_preset}")
        return net.eval()

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        """Two held-out photos, hinted with their own colours, each with the other as reference."""
        clean, mask = self.val_batch[-1][:2], self.val_batch[2][:2]
        return clean, clean, mask, clean.flip(0), torch.ones(2)


TASK = ColorizeTask
