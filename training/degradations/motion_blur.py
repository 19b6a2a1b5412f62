"""Synthetic camera blur for training and measuring the deblurring model.

Hand-shake kernels come from random camera trajectories (a random walk with inertia, a pull
back towards the start and occasional jerks, after Boracchi & Foi, "Modeling the Performance of
Image Restoration from Motion Blur", IEEE TIP 2012) rasterised with bilinear splatting, so they
are curved, not only straight lines. A fraction of kernels are defocus discs instead. The blur is
applied in linear light (the sRGB curve undone, the kernel applied, the curve re-applied), as light
adds up on a sensor: highlights smear into bright streaks instead of grey ones. The blurred image
then gets Gaussian sensor noise, 8-bit quantisation and sometimes JPEG compression. Convolution is
'valid', so no border is made up: outputs are ``max_kernel - 1`` pixels smaller than the clean input,
and the target is cropped to match.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F
from torchvision.io import decode_jpeg, encode_jpeg


@dataclass(frozen=True)
class BlurConfig:
    """The blur distribution; training and the held-out benchmark use the same one."""

    # Odd kernel supports, uniform; the trajectory spans the support. Real hand shake in 720p-1080p
    # frames reaches about 30 px.
    kernel_sizes: tuple[int, int] = (5, 35)
    defocus_prob: float = 0.15  # fraction of defocus discs (diameter = kernel size) instead of shake
    noise_sigma: tuple[float, float] = (0.0, 0.01)  # Gaussian sensor noise std, [0, 1] units (0 to 2.55 / 255)
    jpeg_prob: float = 0.3
    jpeg_quality: tuple[int, int] = (75, 95)
    linear_light: bool = True  # blur linear intensities (sRGB decoded), not sRGB code values

    @property
    def max_kernel(self) -> int:
        return self.kernel_sizes[1]


def shake_trajectory(rng: np.random.Generator, steps: int = 64) -> np.ndarray:
    """Camera path [steps, 2] (x, y) of a shaky exposure, in arbitrary units."""
    # Each exposure draws its own temperament: from smooth arcs (high inertia, no jerks) to
    # nervous zig-zags (low inertia, frequent jerks).
    inertia, anxiety, centripetal = rng.uniform(0.4, 0.9), 0.5 * rng.random(), 0.05 * rng.random()
    jerk_prob = rng.uniform(0.0, 0.12)
    pos = np.zeros(steps, dtype=complex)
    vel = np.exp(1j * rng.uniform(0, 2 * np.pi))
    for t in range(1, steps):
        # Jerks reverse the direction (roughly) as a hand correcting itself does.
        jerk = -2 * vel * np.exp(1j * rng.uniform(-0.5, 0.5)) if rng.random() < jerk_prob else 0
        accel = anxiety * complex(rng.normal(), rng.normal()) - centripetal * pos[t - 1] + jerk
        vel = inertia * vel + (1 - inertia) * accel
        vel /= max(abs(vel), 1e-6)  # constant speed: the exposure time sets the length
        pos[t] = pos[t - 1] + vel
    return np.stack([pos.real, pos.imag], axis=1)


def rasterise(points: np.ndarray, size: int) -> np.ndarray:
    """Splat a path (scaled to span the kernel, centred on its mean) bilinearly into a size x size kernel."""
    points = points - points.mean(axis=0)
    extent = np.abs(points).max()
    # Centring on the mean keeps the kernel's centre of mass at the centre: no image shift.
    points = points * ((size - 1) / 2 - 1) / max(extent, 1e-6) + (size - 1) / 2
    kernel = np.zeros((size, size))
    x0, y0 = np.floor(points[:, 0]).astype(int), np.floor(points[:, 1]).astype(int)
    fx, fy = points[:, 0] - x0, points[:, 1] - y0
    for dx, dy, wgt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(kernel, (y0 + dy, x0 + dx), wgt)
    return kernel / kernel.sum()


def defocus_disc(size: int, supersample: int = 8) -> np.ndarray:
    """Anti-aliased uniform disc of diameter ``size`` - 1 pixels."""
    n = size * supersample
    coords = (np.arange(n) + 0.5) / supersample - size / 2
    inside = (coords[None, :] ** 2 + coords[:, None] ** 2) <= ((size - 1) / 2) ** 2
    kernel = inside.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
    return kernel / kernel.sum()


def random_kernel(rng: np.random.Generator, cfg: BlurConfig) -> np.ndarray:
    """One kernel, zero-padded (centred) to ``cfg.max_kernel``, summing to 1."""
    size = int(rng.integers(cfg.kernel_sizes[0] // 2, cfg.kernel_sizes[1] // 2 + 1)) * 2 + 1
    kernel = defocus_disc(size) if rng.random() < cfg.defocus_prob else rasterise(shake_trajectory(rng), size)
    pad = (cfg.max_kernel - size) // 2
    return np.pad(kernel, pad)


def blur_valid(clean: torch.Tensor, kernels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Blur each image [N, 3, H, W] with its kernel [N, K, K]; returns (blurred, aligned clean target)."""
    n, c, h, w = clean.shape
    k = kernels.shape[-1]
    weight = kernels.to(clean).flip(-2, -1).repeat_interleave(c, dim=0).unsqueeze(1)  # flip: true convolution
    blurred = F.conv2d(clean.reshape(1, n * c, h, w), weight, groups=n * c).reshape(n, c, h - k + 1, w - k + 1)
    m = k // 2
    return blurred, clean[..., m:h - m, m:w - m]


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055).clamp(min=0) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0, 1)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055)


def jpeg(img: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG round trip of one [3, H, W] image in [0, 1]."""
    data = encode_jpeg((img * 255).round().clamp(0, 255).byte().cpu(), quality=quality)
    return decode_jpeg(data).to(img.device).float() / 255


def degrade(clean: torch.Tensor, rng: np.random.Generator, cfg: BlurConfig = BlurConfig()
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Blurry, noisy, 8-bit (sometimes JPEG) images and their aligned sharp targets, both ``max_kernel - 1`` px smaller."""
    kernels = torch.from_numpy(np.stack([random_kernel(rng, cfg) for _ in range(clean.shape[0])])).float()
    if cfg.linear_light:
        blurred, target_linear = blur_valid(srgb_to_linear(clean), kernels)
        blurred, target = linear_to_srgb(blurred), linear_to_srgb(target_linear)
    else:
        blurred, target = blur_valid(clean, kernels)
    return sensor_output(blurred, rng, cfg.noise_sigma, cfg.jpeg_prob, cfg.jpeg_quality), target


def sensor_output(blurred: torch.Tensor, rng: np.random.Generator, noise_sigma: tuple[float, float],
                  jpeg_prob: float, jpeg_quality: tuple[int, int]) -> torch.Tensor:
    """What a camera writes: Gaussian sensor noise (a std per image), 8-bit rounding, JPEG on a share."""
    sigma = torch.from_numpy(rng.uniform(*noise_sigma, size=(blurred.shape[0], 1, 1, 1))).to(blurred)
    noise = torch.from_numpy(rng.standard_normal(blurred.shape)).to(blurred)
    out = ((blurred + sigma * noise).clamp(0, 1) * 255).round() / 255
    for i in range(out.shape[0]):
        if rng.random() < jpeg_prob:
            out[i] = jpeg(out[i], int(rng.integers(jpeg_quality[0], jpeg_quality[1] + 1)))
    return out
