"""Motion blur rendered as a moving camera makes it: the average of sub-frames along a camera path.

Each exposure is 7-15 sub-frames (``CameraConfig.subframes``), each the sharp photo warped by its
own homography (translation along a smooth random path, a small in-plane rotation and zoom about a
random centre, a little perspective), so the blur varies across the frame as it does when a hand
turns the camera. On a share, a foreground object (an elliptical cut-out of another photo of the
batch) crosses on a path of its own, as people and cars do in GoPro-style footage. The sub-frames
are averaged in linear light, with light sources (near-white pixels) pushed above 1.0 before the
average and clipped after it, so lamps streak as in real night photos; then sensor noise, 8 bits
and sometimes JPEG. The target is the middle of the path (t = 0), rendered the same way but alone.
A share of the exposures are sharp or nearly so (1-2 sub-frames, under a pixel of motion): their
target is themselves, which holds the network to the identity on sharp photos.

Outputs are ``2 * margin`` px smaller than the input: the border that warps bring in from outside
the crop is cut away rather than made up.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from training.degradations.motion_blur import linear_to_srgb, sensor_output, srgb_to_linear


@dataclass(frozen=True)
class CameraConfig:
    subframes: tuple[int, int] = (7, 15)
    travel: tuple[float, float] = (2.0, 28.0)  # px the camera moves over the exposure (at the crop)
    rotation_deg: float = 1.5  # largest in-plane rotation over the exposure
    zoom: float = 0.03  # largest relative zoom over the exposure
    perspective: float = 2e-5  # largest projective term (per px)
    object_prob: float = 0.3  # a foreground object moving on its own path
    object_travel: tuple[float, float] = (8.0, 34.0)
    light_prob: float = 0.5  # near-white pixels become light sources above 1.0
    light_gain: tuple[float, float] = (1.5, 6.0)
    sharp_prob: float = 0.2  # exposures of 1-2 sub-frames and under a pixel of motion: target = input
    noise_sigma: tuple[float, float] = (0.0, 0.012)
    jpeg_prob: float = 0.3
    jpeg_quality: tuple[int, int] = (70, 95)
    margin: int = 17  # px cut from each side: a path never brings in more than this


def _path(rng: np.random.Generator, n: int, travel: float) -> np.ndarray:
    """[n, 2] positions at t in [-0.5, 0.5] along a smooth curve (a random cubic), 0 at t = 0, spanning ``travel`` px."""
    t = np.linspace(-0.5, 0.5, n) if n > 1 else np.zeros(1)
    coef = rng.normal(size=(3, 2)) * np.array([[1.0], [0.6], [0.4]])
    pos = t[:, None] * coef[0] + t[:, None] ** 2 * coef[1] + t[:, None] ** 3 * coef[2]
    span = np.abs(np.diff(pos, axis=0)).sum() if n > 1 else 1.0
    return pos * travel / max(span, 1e-6)


def _homographies(rng: np.random.Generator, cfg: CameraConfig, n: int, size: int, sharp: bool) -> np.ndarray:
    """[n, 3, 3] maps from output pixel coordinates to source pixel coordinates, one per sub-frame."""
    travel = rng.uniform(0.0, 0.8) if sharp else rng.uniform(*cfg.travel)
    shift = _path(rng, n, travel)
    t = np.linspace(-0.5, 0.5, n) if n > 1 else np.zeros(1)
    scale = 0.0 if sharp else 1.0
    angle = np.deg2rad(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg)) * t * scale
    zoom = 1 + rng.uniform(-cfg.zoom, cfg.zoom) * t * scale
    persp = rng.uniform(-cfg.perspective, cfg.perspective, size=2)[None] * t[:, None] * scale
    cx, cy = rng.uniform(0, size, size=2)  # rotation/zoom centre: often outside the middle, as a hand turns
    mats = np.zeros((n, 3, 3))
    for i in range(n):
        c, s = np.cos(angle[i]) * zoom[i], np.sin(angle[i]) * zoom[i]
        to_c = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
        rot = np.array([[c, -s, 0], [s, c, 0], [persp[i, 0], persp[i, 1], 1]])
        back = np.array([[1, 0, cx + shift[i, 0]], [0, 1, cy + shift[i, 1]], [0, 0, 1]])
        mats[i] = back @ rot @ to_c
    return mats


def _warp(img: torch.Tensor, mats: np.ndarray) -> torch.Tensor:
    """img [C, H, W] sampled through each homography: [n, C, H, W] (bilinear; outside the crop is clamped)."""
    c, h, w = img.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    pts = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).reshape(-1, 3)  # [HW, 3]
    src = torch.einsum("nij,pj->npi", torch.from_numpy(mats), pts)
    src = src[..., :2] / src[..., 2:]
    grid = torch.stack([src[..., 0] / (w - 1) * 2 - 1, src[..., 1] / (h - 1) * 2 - 1], dim=-1)
    grid = grid.reshape(len(mats), h, w, 2).to(img)
    return F.grid_sample(img.expand(len(mats), -1, -1, -1), grid, mode="bilinear", padding_mode="border",
                         align_corners=True)


def _object_mask(rng: np.random.Generator, size: int) -> torch.Tensor:
    """A soft ellipse [1, H, W] covering 10-40 % of the crop's side, somewhere in it."""
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    cx, cy = rng.uniform(0.25, 0.75, size=2) * size
    ax, ay = rng.uniform(0.1, 0.4, size=2) * size / 2
    theta = rng.uniform(0, np.pi)
    u = (xs - cx) * np.cos(theta) + (ys - cy) * np.sin(theta)
    v = -(xs - cx) * np.sin(theta) + (ys - cy) * np.cos(theta)
    r = (u / ax) ** 2 + (v / ay) ** 2
    return (1.5 * (1 - r)).clamp(0, 1)[None]  # a soft edge, as a real silhouette's anti-aliasing


def expose(clean: torch.Tensor, other: torch.Tensor, rng: np.random.Generator, cfg: CameraConfig
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """One sRGB photo [3, P, P] (and another for a foreground object) -> (blurry, sharp target), linear [3, P, P]."""
    size = clean.shape[-1]
    sharp = rng.random() < cfg.sharp_prob
    n = int(rng.integers(1, 3)) if sharp else int(rng.integers(cfg.subframes[0] // 2, cfg.subframes[1] // 2 + 1)) * 2 + 1
    lin = srgb_to_linear(clean)
    if rng.random() < cfg.light_prob:  # near-white = a light source that saturated the sensor: brighter than 1
        lum = lin.mean(dim=0, keepdim=True)
        lin = lin * torch.where(lum > 0.85, rng.uniform(*cfg.light_gain), 1.0)
    mats = _homographies(rng, cfg, n, size, sharp)
    centre = np.eye(3)[None]  # t = 0: the path passes through the photo as it is
    frames, target = _warp(lin, mats), lin
    if not sharp and rng.random() < cfg.object_prob:
        obj, mask = srgb_to_linear(other), _object_mask(rng, size)
        obj_mats = _homographies(rng, CameraConfig(travel=cfg.object_travel, rotation_deg=0, zoom=0, perspective=0),
                                 n, size, False)
        moved = _warp(torch.cat([obj, mask]), obj_mats)
        frames = frames * (1 - moved[:, 3:]) + moved[:, :3] * moved[:, 3:]
        still = _warp(torch.cat([obj, mask]), centre)[0]
        target = target * (1 - still[3:]) + still[:3] * still[3:]
    return frames.mean(dim=0).clamp(0, 1), target.clamp(0, 1)


def degrade(clean: torch.Tensor, rng: np.random.Generator, cfg: CameraConfig = CameraConfig()
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Blurry, noisy, 8-bit (sometimes JPEG) images [N, 3, P - 2m, P - 2m] and their sharp targets."""
    m = cfg.margin
    others = clean.roll(1, dims=0)  # each photo's object comes from its neighbour in the batch
    pairs = [expose(clean[i], others[i], rng, cfg) for i in range(clean.shape[0])]
    blurred = linear_to_srgb(torch.stack([b for b, _ in pairs]))[..., m:-m, m:-m]
    target = linear_to_srgb(torch.stack([t for _, t in pairs]))[..., m:-m, m:-m]
    return sensor_output(blurred, rng, cfg.noise_sigma, cfg.jpeg_prob, cfg.jpeg_quality), target.contiguous()
