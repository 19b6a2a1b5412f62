"""Real motion blur from real 240 fps frames (``../shared/data/motion240``): the mean of consecutive
frames in linear light is what a sensor integrates over a longer exposure (how the GoPro and REDS
deblurring sets are made), and the middle frame is the sharp target.

A share of the windows are averaged on the sRGB values directly, as one variant of the GoPro set is.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from handlers.self_ensemble import dihedral
from training.data import load_rgb, to_float
from training.degradations.motion_blur import linear_to_srgb, srgb_to_linear

TRAIN_SEQUENCES = tuple(f"seq_{i:02d}" for i in range(1, 11))
VALIDATION_SEQUENCES = ("seq_11", "seq_12", "seq_13", "seq_15")  # seq_14 shows a scene of an evaluation set


def load_sequences(root: Path, names: tuple[str, ...]) -> list[torch.Tensor]:
    """Each sequence as uint8 [frames, 3, H, W] (frames 0.webp, 1.webp, ... in order)."""
    seqs = []
    for name in names:
        files = sorted((root / name).glob("*.webp"), key=lambda p: int(p.stem))
        if files:
            seqs.append(torch.stack([load_rgb(f) for f in files]))
    if not seqs:
        raise FileNotFoundError(f"no sequences {names} under {root}")
    return seqs


def window_pair(frames: torch.Tensor, length: int, start: int | None = None, linear: bool = True
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(blurry, sharp) float [3, H, W]: the mean of ``length`` (odd) frames from ``start`` (default: centred), and its middle frame."""
    start = (frames.shape[0] - length) // 2 if start is None else start
    window = to_float(frames[start:start + length])
    blurred = linear_to_srgb(srgb_to_linear(window).mean(dim=0)) if linear else window.mean(dim=0)
    return blurred, window[length // 2]


class RealMotionSampler:
    """Random crops of random windows (3-9 frames, odd) of the given sequences, flipped/rotated alike."""

    def __init__(self, seqs: list[torch.Tensor], patch: int, seed: int = 0, srgb_share: float = 0.25) -> None:
        self.seqs, self.patch, self.srgb_share = seqs, patch, srgb_share
        self.gen = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)

    def _randint(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.gen))

    def sample(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        blurs, sharps = [], []
        for _ in range(batch):
            frames = self.seqs[self._randint(len(self.seqs))]
            length = 2 * self._randint(4) + 3  # 3, 5, 7 or 9 frames
            start = self._randint(frames.shape[0] - length + 1)
            top = self._randint(frames.shape[2] - self.patch + 1)
            left = self._randint(frames.shape[3] - self.patch + 1)
            crop = frames[start:start + length, :, top:top + self.patch, left:left + self.patch]
            blurred, sharp = window_pair(crop, length, 0, linear=self.rng.random() >= self.srgb_share)
            k = self._randint(8)
            blurs.append(dihedral(blurred, k))
            sharps.append(dihedral(sharp, k))
        return torch.stack(blurs), torch.stack(sharps)

    def state(self) -> dict:
        return {"gen": self.gen.get_state(), "rng": self.rng.bit_generator.state}

    def load_state(self, state: dict) -> None:
        self.gen.set_state(state["gen"])
        self.rng.bit_generator.state = state["rng"]


def validation_crops(seqs: list[torch.Tensor], per_sequence: int, patch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed crops (a regular grid over each frame) of the 9-frame averages: the dev-real set at patch size."""
    blurs, sharps = [], []
    rows, cols = 2, max(1, per_sequence // 2)
    for frames in seqs:
        blurred, sharp = window_pair(frames, frames.shape[0])
        h, w = blurred.shape[-2:]
        for r in range(rows):
            for c in range(cols):
                top, left = (h - patch) * r // (rows - 1), (w - patch) * c // max(1, cols - 1)
                blurs.append(blurred[:, top:top + patch, left:left + patch])
                sharps.append(sharp[:, top:top + patch, left:left + patch])
    return torch.stack(blurs), torch.stack(sharps)
