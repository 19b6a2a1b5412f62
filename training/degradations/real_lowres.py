"""Synthetic degradations of real low-resolution photos, for training x4 super-resolution on them.

A small photo as it arrives (a messenger copy, a web thumbnail, a scan saved small) is not a clean
bicubic downscale: it is soft, noisy and JPEG'd, often more than once. This module follows the
degradation models of BSRGAN (Zhang, Liang, Van Gool, Timofte, "Designing a Practical Degradation
Model for Deep Blind Image Super-Resolution", ICCV 2021: blur, downscale and noise applied in a
random order, JPEG last) and Real-ESRGAN (Wang, Xie, Dong, Shan, "Real-ESRGAN: Training Real-World
Blind Super-Resolution with Pure Synthetic Data", ICCVW 2021: Poisson noise, repeated JPEG), kept
milder because the model is PSNR-oriented (no GAN; it must stay faithful, not invent texture):

- blur: isotropic or anisotropic Gaussian, or a short straight motion streak;
- downscale by exactly ``scale`` with a random kernel: bicubic, bilinear (both antialiased) or area;
- noise: Gaussian (colour or grey) or Poisson (signal-dependent shot noise);
- 8-bit rounding, then JPEG at quality 30-95, sometimes saved twice at two qualities.

On a share of ``real_prob`` images, blur, downscale and noise are shuffled (each kept or skipped by
its own probability; the downscale is always there); JPEG always comes last, as the file is what the
user sends. The other images get the plain antialiased bicubic downscale the clean model trains on,
unchanged, so clean inputs stay as good as today. Every random draw comes from the numpy Generator
passed in: the same seed gives the same batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from training.degradations.motion_blur import jpeg

DOWN_KERNELS = ("bicubic", "bilinear", "area")


@dataclass(frozen=True)
class RealLowResConfig:
    """The degradation distribution; training and the benchmarks of the ``real`` network use the same one."""

    scale: int = 4
    real_prob: float = 0.7  # share of images degraded as real photos; the rest get plain bicubic
    down_kernels: tuple[str, ...] = DOWN_KERNELS  # drawn uniformly
    shuffle_prob: float = 0.5  # else the camera order: blur, downscale, noise
    blur_prob: float = 0.8
    aniso_prob: float = 0.4  # of the blurred images: anisotropic Gaussian
    motion_prob: float = 0.15  # of the blurred images: a short motion streak
    blur_sigma: tuple[float, float] = (0.3, 2.4)  # std in high-resolution pixels
    motion_length: tuple[float, float] = (2.0, 8.0)  # streak length in high-resolution pixels
    kernel_size: int = 21  # odd support: 4 sigma each side of the widest Gaussian fits
    noise_prob: float = 0.7
    poisson_prob: float = 0.35  # of the noisy images: Poisson instead of Gaussian
    gray_noise_prob: float = 0.3  # Gaussian noise equal on the three channels (luma-only sensors, JPEG'd chroma)
    gauss_sigma: tuple[float, float] = (1 / 255, 10 / 255)
    poisson_peak: tuple[float, float] = (300.0, 8000.0)  # photons at white, log-uniform (std 10/255 to 2/255 at mid-grey)
    jpeg_prob: float = 0.9
    jpeg_quality: tuple[int, int] = (30, 95)
    jpeg_twice_prob: float = 0.3  # a re-saved copy (forwarded, edited): two round trips


# Named mixes (``--degradation``). ``jpeg`` weights the case small photos most often are, a clean
# downscale saved as a JPEG (messenger copies, thumbnails): the first ``real`` trials met it on only
# ~20% of patches and gained +0.25 dB there (training/campaigns/superres/README.md).
MIXES: dict[str, RealLowResConfig] = {
    "real": RealLowResConfig(),
    "jpeg": RealLowResConfig(real_prob=0.85, blur_prob=0.3, noise_prob=0.3, jpeg_prob=1.0,
                             jpeg_quality=(30, 80), jpeg_twice_prob=0.15),
}


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """A (possibly rotated anisotropic) Gaussian on a size x size grid, summing to 1."""
    r = np.arange(size) - size // 2
    x, y = np.meshgrid(r, r)
    c, s = np.cos(theta), np.sin(theta)
    u, v = c * x + s * y, -s * x + c * y
    k = np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return k / k.sum()


def motion_kernel(size: int, length: float, theta: float, samples: int = 64) -> np.ndarray:
    """A straight streak of ``length`` pixels through the centre, splatted bilinearly (no image shift)."""
    t = np.linspace(-length / 2, length / 2, samples)
    px, py = t * np.cos(theta) + size // 2, t * np.sin(theta) + size // 2
    k = np.zeros((size, size))
    x0, y0 = np.floor(px).astype(int), np.floor(py).astype(int)
    fx, fy = px - x0, py - y0
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(k, (y0 + dy, x0 + dx), w)
    return k / k.sum()


def trim(kernel: np.ndarray, mass: float = 0.999) -> np.ndarray:
    """The smallest centred odd square holding ``mass`` of the kernel, renormalised.

    Most draws are narrow (and those after the downscale are 4x narrower): convolving them at the
    full support would cost most of a batch's time for nothing.
    """
    c = kernel.shape[0] // 2
    for r in range(c + 1):
        inner = kernel[c - r:c + r + 1, c - r:c + r + 1]
        if inner.sum() >= mass:
            return inner / inner.sum()
    return kernel


def random_blur_kernel(rng: np.random.Generator, cfg: RealLowResConfig, shrink: float) -> np.ndarray:
    """One blur kernel; ``shrink`` is the downscale already applied (sizes are drawn in high-res pixels)."""
    theta = rng.uniform(0, np.pi)
    kind = rng.random()
    if kind < cfg.motion_prob:
        return trim(motion_kernel(cfg.kernel_size, max(rng.uniform(*cfg.motion_length) / shrink, 1.0), theta))
    # A floor of 0.3 px: narrower Gaussians are a delta on the pixel grid anyway (and 1/sigma overflows).
    sx = max(rng.uniform(*cfg.blur_sigma) / shrink, 0.3)
    sy = max(rng.uniform(*cfg.blur_sigma) / shrink, 0.3) if kind < cfg.motion_prob + cfg.aniso_prob else sx
    return trim(gaussian_kernel(cfg.kernel_size, sx, sy, theta))


def blur(img: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
    """Convolve [1, 3, H, W] with one kernel, reflecting the border so the size is kept."""
    k = torch.from_numpy(kernel).to(img).flip(-2, -1)[None, None].repeat(img.shape[1], 1, 1, 1)
    pad = kernel.shape[-1] // 2
    # Reflect padding needs pad < side; an LR patch smaller than the kernel uses replicate.
    mode = "reflect" if pad < min(img.shape[-2:]) else "replicate"
    return F.conv2d(F.pad(img, (pad,) * 4, mode=mode), k, groups=img.shape[1])


def downscale(img: torch.Tensor, scale: int, kernel: str = "bicubic") -> torch.Tensor:
    """Exactly ``scale`` times smaller (the input cropped to a multiple); bicubic is the clean model's degradation."""
    h, w = img.shape[-2] // scale, img.shape[-1] // scale
    img = img[..., : h * scale, : w * scale]
    if kernel == "area":
        return F.interpolate(img, size=(h, w), mode="area").clamp(0, 1)
    return F.interpolate(img, size=(h, w), mode=kernel, antialias=True, align_corners=False).clamp(0, 1)


def add_noise(img: torch.Tensor, rng: np.random.Generator, cfg: RealLowResConfig) -> torch.Tensor:
    if rng.random() < cfg.poisson_prob:
        peak = float(np.exp(rng.uniform(*np.log(cfg.poisson_peak))))
        counts = rng.poisson(img.clamp(0, 1).numpy().astype(np.float64) * peak)
        return torch.from_numpy(counts / peak).to(img).clamp(0, 1)
    sigma = rng.uniform(*cfg.gauss_sigma)
    shape = (1, 1, *img.shape[-2:]) if rng.random() < cfg.gray_noise_prob else tuple(img.shape)
    noise = torch.from_numpy(rng.standard_normal(shape)).to(img)
    return (img + sigma * noise).clamp(0, 1)


def quantise(img: torch.Tensor) -> torch.Tensor:
    return (img.clamp(0, 1) * 255).round() / 255


def degrade_one(hr: torch.Tensor, rng: np.random.Generator, cfg: RealLowResConfig) -> torch.Tensor:
    """One [1, 3, H, W] high-res image -> its [1, 3, H/scale, W/scale] real-looking low-res version."""
    steps = ["blur"] * (rng.random() < cfg.blur_prob) + ["down"] + ["noise"] * (rng.random() < cfg.noise_prob)
    if rng.random() < cfg.shuffle_prob:
        steps = [steps[i] for i in rng.permutation(len(steps))]
    img, shrink = hr, 1
    for step in steps:
        if step == "blur":
            img = blur(img, random_blur_kernel(rng, cfg, shrink))
        elif step == "down":
            img, shrink = downscale(img, cfg.scale, cfg.down_kernels[int(rng.integers(len(cfg.down_kernels)))]), cfg.scale
        else:
            img = add_noise(img, rng, cfg)
    img = quantise(img)  # a file holds 8-bit values, JPEG'd or not
    if rng.random() < cfg.jpeg_prob:
        rounds = 2 if rng.random() < cfg.jpeg_twice_prob else 1
        for _ in range(rounds):
            img = jpeg(img[0], int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))[None]
    return img


def degrade(clean: torch.Tensor, rng: np.random.Generator, cfg: RealLowResConfig = RealLowResConfig()
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean patches [N, 3, P, P] in [0, 1] -> (low-res inputs [N, 3, P/s, P/s], targets cropped to a multiple of s).

    Each image draws whether it is 'real' (the shuffled chain above) or plain bicubic; the plain
    ones are exactly the clean model's input (``training.tasks.superres.bicubic_down``).
    """
    s = cfg.scale
    target = clean[..., : clean.shape[-2] // s * s, : clean.shape[-1] // s * s]
    real = rng.random(clean.shape[0]) < cfg.real_prob
    lr = downscale(target, s)
    for i in np.flatnonzero(real):
        lr[i] = degrade_one(target[i:i + 1], rng, cfg)[0]
    return lr, target
