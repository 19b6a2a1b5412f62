"""Photo loading, a deterministic held-out split, and random training patches.

Training reads a user's folder (``--data DIR``) or, without one, the colour photos that
ship inside the scikit-image wheel (already installed from requirements.txt, so nothing
is downloaded).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from handlers.self_ensemble import dihedral  # the same transforms the server's ensemble uses

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
# Colour photographs in skimage/data (the rest are grayscale, synthetic or microscopy).
BUNDLED_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png",
                  "motorcycle_right.png", "rocket.jpg", "hubble_deep_field.jpg")
# Files that are not clean targets (e.g. already motion blurred).
EXCLUDED = {"debian_opencv_licenseplate_motion.jpg"}


def bundled_photo_paths() -> list[Path]:
    import skimage  # imported here: only needed when no --data is given

    root = Path(skimage.__file__).parent / "data"
    return [root / name for name in BUNDLED_PHOTOS if (root / name).exists()]


def list_images(folders: list[str] | None) -> list[Path]:
    """All images under the given folders (recursively), or the bundled photos."""
    if not folders:
        return bundled_photo_paths()
    paths = [p for folder in folders for p in sorted(Path(folder).rglob("*"))
             if p.suffix.lower() in IMAGE_SUFFIXES and p.name not in EXCLUDED]
    if not paths:
        raise FileNotFoundError(f"no images found under {folders}")
    return paths


def is_held_out(path: Path, fraction: float = 0.2) -> bool:
    """Deterministic split by file name, stable across machines and folder orders."""
    digest = int(hashlib.sha256(path.name.encode()).hexdigest()[:8], 16)
    return digest / 0xFFFFFFFF < fraction


def split(paths: list[Path], fraction: float = 0.2) -> tuple[list[Path], list[Path]]:
    """(train, held_out). With too few images to split, everything trains and validates."""
    held = [p for p in paths if is_held_out(p, fraction)]
    train = [p for p in paths if not is_held_out(p, fraction)]
    if not held or not train:
        return paths, paths
    return train, held


def load_rgb(path: Path, max_side: int | None = None) -> torch.Tensor:
    """uint8 tensor [3, H, W], EXIF orientation applied, optionally downscaled to max_side."""
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
        if max_side and max(img.size) > max_side:
            img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).contiguous()


def to_float(x: torch.Tensor) -> torch.Tensor:
    return x.float().div_(255.0)


class PatchSampler:
    """Random crops with flips/rotations from images held in memory as uint8."""

    def __init__(self, paths: list[Path], patch: int, max_side: int | None = None, seed: int = 0) -> None:
        self.images = [img for img in (load_rgb(p, max_side) for p in paths) if min(img.shape[1:]) >= patch]
        if not self.images:
            raise ValueError(f"no image is at least {patch}px on its short side")
        self.patch = patch
        self.gen = torch.Generator().manual_seed(seed)

    def _randint(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.gen))

    def sample(self, batch: int) -> torch.Tensor:
        """float tensor [batch, 3, patch, patch] in [0, 1]."""
        crops = []
        for _ in range(batch):
            img = self.images[self._randint(len(self.images))]
            top = self._randint(img.shape[1] - self.patch + 1)
            left = self._randint(img.shape[2] - self.patch + 1)
            crop = img[:, top:top + self.patch, left:left + self.patch]
            crops.append(dihedral(crop, self._randint(8)))
        return to_float(torch.stack(crops))


class PairedPatchSampler(PatchSampler):
    """Aligned crops of (input, target) image pairs, stacked as [batch, 6, patch, patch] so the
    same crop and flip/rotation hits both; a task's ``make_batch`` splits the channels."""

    def __init__(self, pairs: list[tuple[Path, Path]], patch: int, max_side: int | None = None, seed: int = 0) -> None:
        stacked = (torch.cat([load_rgb(a, max_side), load_rgb(b, max_side)]) for a, b in pairs)
        self.images = [img for img in stacked if min(img.shape[1:]) >= patch]
        if not self.images:
            raise ValueError(f"no image pair is at least {patch}px on its short side")
        self.patch = patch
        self.gen = torch.Generator().manual_seed(seed)
