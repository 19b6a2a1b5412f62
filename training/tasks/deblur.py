"""Deblurring: sharp photo patches blurred by synthetic camera shake/defocus, noise and JPEG -> the sharp patches.

With ``--motion DIR`` (``../shared/data/motion240``) each batch mixes three sources (``--mix``):
real motion (windows of real 240 fps training sequences, ``training/real_motion.py``), a moving
camera rendered from the photos (``training/degradations/camera_motion.py``, sharp exposures included),
and the uniform-kernel blur below; validation is then the dev-real set (9-frame averages of the
held-out sequences, fixed crops), so every logged figure is on real motion.

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
from training.degradations import camera_motion
from training.degradations.motion_blur import BlurConfig, degrade
from training.models.atrous_deblur import PRESETS, atrous_deblur
from training.real_motion import TRAIN_SEQUENCES, VALIDATION_SEQUENCES, RealMotionSampler, load_sequences, validation_crops
from training.task import Task

SOURCES = ("real", "camera", "kernel")


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
        self.camera = camera_motion.CameraConfig(sharp_prob=args.sharp_share, margin=(self.blur.max_kernel - 1) // 2)
        self.rng = np.random.default_rng(args.seed)  # before super(): it degrades the validation crops
        self.mix = parse_mix(args.mix) if args.motion else {"kernel": 1.0}
        self.real = (RealMotionSampler(load_sequences(args.motion, TRAIN_SEQUENCES), self.output_side(args.patch),
                                       args.seed + 2) if args.motion else None)
        super().__init__(args)
        if args.motion:  # validate on real motion: the dev-real set's fixed crops
            per_seq = max(2, args.val_patches // len(VALIDATION_SEQUENCES))
            self.val_batch = validation_crops(load_sequences(args.motion, VALIDATION_SEQUENCES), per_seq,
                                              self.output_side(args.patch))

    def output_side(self, patch: int) -> int:
        """The side of a training pair: the photo crop less the border that blur or warps cannot fill."""
        return patch - (self.blur.max_kernel - 1)

    def rng_state(self) -> dict:
        real = {"real": self.real.state()} if self.real is not None else {}
        return {**super().rng_state(), "degrade": self.rng.bit_generator.state, **real}

    def load_rng_state(self, state: dict) -> None:
        super().load_rng_state(state)
        if "degrade" in state:
            self.rng.bit_generator.state = state["degrade"]
        if "real" in state and self.real is not None:
            self.real.load_state(state["real"])

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
        parser.add_argument("--pairs", action="store_true", help="--data holds real blur/ + sharp/ pairs (GoPro layout)")
        parser.add_argument("--kernel-min", type=int, default=BlurConfig.kernel_sizes[0], help="smallest blur kernel (odd)")
        parser.add_argument("--kernel-max", type=int, default=BlurConfig.kernel_sizes[1], help="largest blur kernel (odd)")
        parser.add_argument("--motion", type=Path, default=None, metavar="DIR",
                            help="real 240 fps sequences (motion240 layout): mix real motion in, validate on it")
        parser.add_argument("--mix", default="real=0.3,camera=0.5,kernel=0.2",
                            help="share of each source in a batch, with --motion")
        parser.add_argument("--sharp-share", type=float, default=camera_motion.CameraConfig.sharp_prob,
                            help="share of camera exposures that are sharp (target = input)")

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
        names = list(self.mix)
        source = self.rng.choice(len(names), size=clean.shape[0], p=np.array(list(self.mix.values())))
        parts = []
        for i, name in enumerate(names):
            picked = clean[torch.from_numpy(source == i)]
            if len(picked):
                parts.append(self._degrade(name, picked))
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def _degrade(self, source: str, clean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if source == "real":  # the photo crops only say how many real pairs to draw
            return self.real.sample(clean.shape[0])
        if source == "camera":
            return camera_motion.degrade(clean, self.rng, self.camera)
        return degrade(clean, self.rng, self.blur)


def parse_mix(text: str) -> dict[str, float]:
    """'real=0.3,camera=0.5,kernel=0.2' -> shares summing to 1 (unknown names refused)."""
    mix = {k.strip(): float(v) for k, v in (item.split("=") for item in text.split(","))}
    unknown = set(mix) - set(SOURCES)
    if unknown or sum(mix.values()) <= 0:
        raise ValueError(f"--mix takes shares of {', '.join(SOURCES)}, got {text!r}")
    total = sum(mix.values())
    return {k: v / total for k, v in mix.items() if v > 0}


TASK = DeblurTask
