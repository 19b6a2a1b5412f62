"""Colour photos turned into what archive scans of old prints look like, for training colorize on them.

A scanned historical print is not the lightness of a clean photo: the emulsion has faded (blacks lifted,
whites lowered, contrast softened, unevenly across the sheet), the print is soft, the film grain shows,
scratches and dust sit on top, many were toned (sepia, cyan) before they were scanned, and the scan is
often a JPEG. The colorizer sees only L, so each of these is applied to the photo in RGB and L is taken
after, as the server takes it from an upload; the target ab stays the clean photo's.

Steps, each on its own share (probabilities in ``PrintConfig``): tone -> soften -> fade (+ uneven fade)
-> grain -> scratches and dust -> 8 bits -> JPEG. Every draw comes from the numpy Generator passed in:
the same seed gives the same prints (the benchmark's held-out prints are fixed).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from training.degradations.motion_blur import jpeg
from training.degradations.real_lowres import blur, gaussian_kernel, quantise

LUMA = (0.299, 0.587, 0.114)  # Rec. 601: what a grey print's value is, before toning
TONES = {"sepia": (1.07, 0.96, 0.78), "cyan": (0.86, 0.98, 1.08)}  # toner tints, a mild multiplicative cast


@dataclass(frozen=True)
class PrintConfig:
    """The damage distribution; training and the benchmark's held-out prints use the same one."""

    tone_prob: float = 0.35  # sepia or cyan toned (drawn evenly)
    soft_prob: float = 0.7
    soft_sigma: tuple[float, float] = (0.4, 1.6)  # Gaussian std in pixels at the working size (<= 256 px)
    black_lift: tuple[float, float] = (0.02, 0.22)  # faded blacks: 0 maps to this
    white_drop: tuple[float, float] = (0.0, 0.2)  # yellowed or faded whites: 1 maps to 1 - this
    gamma: tuple[float, float] = (0.8, 1.25)  # a softened or hardened mid-tone curve
    uneven_prob: float = 0.4  # a low-frequency fade across the sheet
    uneven_strength: tuple[float, float] = (0.03, 0.15)
    grain_prob: float = 0.8
    grain_sigma: tuple[float, float] = (0.005, 0.03)  # std of the grain, in [0, 1] values
    grain_blur_prob: float = 0.5  # film grain is clumped: blurred noise on half
    scratch_prob: float = 0.4
    scratches: tuple[int, int] = (1, 4)
    dust_prob: float = 0.6
    dust: tuple[int, int] = (2, 25)
    jpeg_prob: float = 0.6
    jpeg_quality: tuple[int, int] = (40, 92)


def _grey(rgb: torch.Tensor) -> torch.Tensor:
    r, g, b = rgb.unbind(-3)
    return (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b).unsqueeze(-3)


def _tone(grey: torch.Tensor, rng: np.random.Generator, cfg: PrintConfig) -> torch.Tensor:
    """[1, 3, H, W]: the grey print, toned on a share (stronger in the mid-tones, as toner binds to silver)."""
    rgb = grey.expand(-1, 3, -1, -1)
    if rng.random() >= cfg.tone_prob:
        return rgb
    tint = torch.tensor(TONES[list(TONES)[int(rng.integers(len(TONES)))]]).to(grey)[None, :, None, None]
    amount = rng.uniform(0.5, 1.0) * 4 * grey * (1 - grey)  # 0 at black and white, 1 at mid-grey
    return (rgb * (1 + amount * (tint - 1))).clamp(0, 1)


def _uneven(shape: tuple[int, ...], rng: np.random.Generator, strength: float) -> torch.Tensor:
    """[1, 1, H, W] a smooth field in [-strength, strength]: a 3x3 random grid, upsampled."""
    coarse = torch.from_numpy(rng.uniform(-1, 1, (1, 1, 3, 3))).float()
    return strength * F.interpolate(coarse, size=shape[-2:], mode="bicubic", align_corners=True).clamp(-1, 1)


def _fade(img: torch.Tensor, rng: np.random.Generator, cfg: PrintConfig) -> torch.Tensor:
    black, white = rng.uniform(*cfg.black_lift), 1 - rng.uniform(*cfg.white_drop)
    out = img.clamp(0, 1) ** rng.uniform(*cfg.gamma)
    if rng.random() < cfg.uneven_prob:
        black = black + _uneven(img.shape, rng, rng.uniform(*cfg.uneven_strength)).to(img)
    return (black + (white - black) * out).clamp(0, 1)


def _grain(img: torch.Tensor, rng: np.random.Generator, cfg: PrintConfig) -> torch.Tensor:
    noise = torch.from_numpy(rng.standard_normal((1, 1, *img.shape[-2:]))).to(img)
    if rng.random() < cfg.grain_blur_prob:  # clumps of ~2 px; rescaled so the std stays the drawn one
        noise = blur(noise, gaussian_kernel(7, 0.8, 0.8, 0.0))
        noise = noise / noise.std().clamp_min(1e-6)
    return (img + rng.uniform(*cfg.grain_sigma) * noise).clamp(0, 1)


def _marks(img: torch.Tensor, rng: np.random.Generator, cfg: PrintConfig) -> torch.Tensor:
    """Scratches (thin long lines, mostly near-vertical as a film's are) and dust (small specks), each bright
    (emulsion scraped off) or dark (dirt on the scan), painted with some opacity."""
    h, w = img.shape[-2:]
    ys = torch.arange(h, dtype=img.dtype)[:, None]
    xs = torch.arange(w, dtype=img.dtype)[None, :]
    paint = torch.zeros(h, w, dtype=img.dtype)
    value = torch.zeros(h, w, dtype=img.dtype)
    marks = []
    if rng.random() < cfg.scratch_prob:
        marks += ["scratch"] * int(rng.integers(cfg.scratches[0], cfg.scratches[1] + 1))
    if rng.random() < cfg.dust_prob:
        marks += ["dust"] * int(rng.integers(cfg.dust[0], cfg.dust[1] + 1))
    for kind in marks:
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        if kind == "scratch":
            angle = np.pi / 2 + rng.normal(0, 0.25) if rng.random() < 0.7 else rng.uniform(0, np.pi)
            dist = ((xs - cx) * np.sin(angle) - (ys - cy) * np.cos(angle)).abs()
            along = ((xs - cx) * np.cos(angle) + (ys - cy) * np.sin(angle)).abs()
            shape = (dist < rng.uniform(0.4, 1.2)) & (along < rng.uniform(0.03, 0.3) * max(h, w))
        else:
            shape = (ys - cy) ** 2 + (xs - cx) ** 2 < rng.uniform(0.5, 2.5) ** 2
        alpha = rng.uniform(0.15, 0.7)
        paint = torch.where(shape, torch.full_like(paint, alpha), paint)
        value = torch.where(shape, torch.full_like(value, float(rng.random() < 0.6)), value)
    return img * (1 - paint) + value * paint


def old_print_one(rgb: torch.Tensor, rng: np.random.Generator, cfg: PrintConfig = PrintConfig()) -> torch.Tensor:
    """One colour photo [1, 3, H, W] in [0, 1] -> the scan of an old print of it [1, 3, H, W] (grey or toned)."""
    img = _tone(_grey(rgb), rng, cfg)
    if rng.random() < cfg.soft_prob:
        sigma = rng.uniform(*cfg.soft_sigma)
        img = blur(img, gaussian_kernel(2 * int(np.ceil(3 * sigma)) + 1, sigma, sigma, 0.0))
    img = _fade(img, rng, cfg)
    if rng.random() < cfg.grain_prob:
        img = _grain(img, rng, cfg)
    img = quantise(_marks(img, rng, cfg))
    if rng.random() < cfg.jpeg_prob:
        img = jpeg(img[0], int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))[None]
    return img


def old_prints(rgb: torch.Tensor, rng: np.random.Generator, share: float = 1.0,
               cfg: PrintConfig = PrintConfig()) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch [N, 3, H, W] -> (the batch with a ``share`` of it turned into old prints, which ones [N] bool)."""
    chosen = torch.from_numpy(rng.random(rgb.shape[0]) < share)
    out = rgb.clone()
    for i in torch.nonzero(chosen).flatten().tolist():
        out[i] = old_print_one(rgb[i:i + 1], rng, cfg)[0]
    return out, chosen
