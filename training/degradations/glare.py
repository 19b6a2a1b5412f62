"""Light bleed synthesis: glow around bright regions, lens-flare streaks and ghosts, veiling glare.

Stray light in a lens adds to the scene's light, so every component is *added in linear light*
(sRGB decoded), with a random colour tint and strength per image, and the sum is re-encoded to
8-bit sRGB. A degraded pixel is therefore never darker than the clean one, which is what the
FiLM² light decoder's non-negative (ReLU) glare layer relies on. No brightness or colour
augmentation of the clean photo itself: the task is about light, so the target keeps its exposure.
"""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F

LUMA = (0.2126, 0.7152, 0.0722)  # Rec. 709 luminance weights for linear RGB


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= 0.04045, x / 12.92, ((x.clamp(min=0) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0, 1)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)


def luminance(lin: torch.Tensor) -> torch.Tensor:
    """[N, 1, H, W] luminance of linear RGB [N, 3, H, W]."""
    w = torch.tensor(LUMA, dtype=lin.dtype, device=lin.device).view(1, 3, 1, 1)
    return (lin * w).sum(1, keepdim=True)


def _uniform(n: int, low: float, high: float, gen: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen, device=device)


def _log_uniform(n: int, low: float, high: float, gen: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.exp(_uniform(n, math.log(low), math.log(high), gen, device))


def random_tint(n: int, spread: float, gen: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """[n, 3, 1, 1] colour gains with mean 1 (``spread`` 0 gives neutral light)."""
    tint = 1 + spread * (2 * torch.rand(n, 3, generator=gen, device=device) - 1)
    return (tint / tint.mean(1, keepdim=True)).view(n, 3, 1, 1)


def _grid(h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel coordinates (y, x), each [H, W]."""
    ys = torch.arange(h, device=device, dtype=torch.float32)
    xs = torch.arange(w, device=device, dtype=torch.float32)
    return torch.meshgrid(ys, xs, indexing="ij")


def heavy_tail_psf(h: int, w: int, core: torch.Tensor, power: torch.Tensor) -> torch.Tensor:
    """[N, 1, h, w] centred point-spread functions (1 + (r/core)²)^-power, each summing to 1.

    Scattering in glass and on the sensor falls off as a power law, not a Gaussian: a sharp core
    with a long faint tail is what makes glow spread far around a light source."""
    y, x = _grid(h, w, core.device)
    r2 = (y - h // 2) ** 2 + (x - w // 2) ** 2
    psf = (1 + r2 / core.view(-1, 1, 1) ** 2) ** -power.view(-1, 1, 1)
    return (psf / psf.sum((-2, -1), keepdim=True)).unsqueeze(1)


def fft_blur(img: torch.Tensor, psf: torch.Tensor) -> torch.Tensor:
    """Linear (not circular) convolution of [N, C, H, W] with per-image [N, 1, 2H, 2W] centred PSFs.

    Zero padding: light from outside the frame is unknown, so none is added."""
    h, w = img.shape[-2:]
    spec = torch.fft.rfft2(F.pad(img, (0, w, 0, h))) * torch.fft.rfft2(torch.fft.ifftshift(psf, dim=(-2, -1)))
    return torch.fft.irfft2(spec, s=(2 * h, 2 * w))[..., :h, :w].clamp(min=0)


def glow(lin: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """Colour-tinted heavy-tailed blur of each image's brightest regions (light to add)."""
    n, _, h, w = lin.shape
    dev = lin.device
    lum = luminance(lin)
    # Pixels above a random high quantile of the image's luminance act as light sources.
    q = _uniform(n, 0.85, 0.99, gen, dev)
    ranked = lum.flatten(1).sort(dim=1).values
    thr = ranked.gather(1, (q * (ranked.shape[1] - 1)).long().view(n, 1)).view(n, 1, 1, 1)
    sources = lin * ((lum - thr).clamp(min=0) / (1 - thr).clamp(min=1e-3))
    # The halo is smooth, so blur at half resolution (4x cheaper) and upsample; PSF sizes are in full-res px.
    small = F.avg_pool2d(sources, 2, ceil_mode=True)
    sh, sw = small.shape[-2:]
    psf = heavy_tail_psf(2 * sh, 2 * sw, _log_uniform(n, 1.0, 12.0, gen, dev), _uniform(n, 1.1, 1.8, gen, dev))
    halo = F.interpolate(fft_blur(small, psf), scale_factor=2.0, mode="bilinear", align_corners=False)[..., :h, :w]
    strength = _log_uniform(n, 0.5, 6.0, gen, dev).view(n, 1, 1, 1)
    return strength * random_tint(n, 0.3, gen, dev) * halo


def _brightest_point(lin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, x) float coordinates [N] of the brightest smoothed spot of each image."""
    lum = F.avg_pool2d(luminance(lin), 9, stride=1, padding=4, count_include_pad=False)
    idx = lum.flatten(1).argmax(1)
    w = lin.shape[-1]
    return (idx // w).float(), (idx % w).float()


def streaks(lin: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """A star of thin, exponentially fading rays through (cy, cx): aperture-blade diffraction."""
    n, _, h, w = lin.shape
    dev = lin.device
    y, x = _grid(h, w, dev)
    dy, dx = y - cy.view(n, 1, 1), x - cx.view(n, 1, 1)
    dist = torch.sqrt(dy ** 2 + dx ** 2)
    rays = int(torch.randint(2, 5, (1,), generator=gen, device=dev))  # lines, so 4..8 spokes
    theta0 = _uniform(n, 0, math.pi, gen, dev).view(n, 1, 1)
    width = _uniform(n, 0.6, 2.0, gen, dev).view(n, 1, 1)
    length = _log_uniform(n, 20.0, 200.0, gen, dev).view(n, 1, 1)
    star = torch.zeros(n, h, w, device=dev)
    for k in range(rays):
        theta = theta0 + k * math.pi / rays
        across = dx * torch.sin(theta) - dy * torch.cos(theta)
        star = star + torch.exp(-0.5 * (across / width) ** 2)
    star = star * torch.exp(-dist / length)
    strength = _log_uniform(n, 0.05, 0.6, gen, dev).view(n, 1, 1, 1)
    return strength * random_tint(n, 0.4, gen, dev) * star.unsqueeze(1)


def ghosts(lin: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """Soft tinted discs on the line from the light source through the image centre:
    internal reflections between lens elements image the source mirrored about the optical axis."""
    n, _, h, w = lin.shape
    dev = lin.device
    y, x = _grid(h, w, dev)
    oy, ox = (h - 1) / 2 - cy, (w - 1) / 2 - cx  # source -> centre
    out = torch.zeros(n, 3, h, w, device=dev)
    for _ in range(int(torch.randint(1, 5, (1,), generator=gen, device=dev))):
        t = _uniform(n, 0.3, 2.5, gen, dev)  # 1 = centre, 2 = mirrored position
        gy, gx = (cy + t * oy).view(n, 1, 1), (cx + t * ox).view(n, 1, 1)
        radius = _uniform(n, 4.0, 0.25 * min(h, w) + 5, gen, dev).view(n, 1, 1)
        soft = _uniform(n, 0.5, 6.0, gen, dev).view(n, 1, 1)
        disc = torch.sigmoid((radius - torch.sqrt((y - gy) ** 2 + (x - gx) ** 2)) / soft)
        strength = _log_uniform(n, 0.005, 0.08, gen, dev).view(n, 1, 1, 1)
        out = out + strength * random_tint(n, 0.8, gen, dev) * disc.unsqueeze(1)
    return out


def veil(lin: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """Veiling glare: a near-uniform, tinted wash of scattered light (lifts blacks, lowers contrast),
    proportional to the scene's mean light, with a gentle linear ramp across the frame."""
    n, _, h, w = lin.shape
    dev = lin.device
    y, x = _grid(h, w, dev)
    angle = _uniform(n, 0, 2 * math.pi, gen, dev).view(n, 1, 1)
    ramp = (torch.cos(angle) * (x / max(w - 1, 1) - 0.5) + torch.sin(angle) * (y / max(h - 1, 1) - 0.5))
    ramp = 1 + _uniform(n, 0, 1.2, gen, dev).view(n, 1, 1) * ramp  # stays in [0.4, 1.6]
    level = _log_uniform(n, 0.02, 0.35, gen, dev).view(n, 1, 1, 1) * lin.mean((1, 2, 3)).view(n, 1, 1, 1)
    return level * random_tint(n, 0.3, gen, dev) * ramp.unsqueeze(1)


def _chance(n: int, p: float, gen: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return (torch.rand(n, generator=gen, device=device) < p).float().view(n, 1, 1, 1)


def add_glare(clean: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """Degrade clean sRGB images [N, 3, H, W] in [0, 1]; returns 8-bit-quantised sRGB.

    Each image gets glow (p=0.8), flare streaks + ghosts (p=0.5) and veiling glare (p=0.8), at
    random strengths; an image that drew none gets glow, so every image is degraded."""
    n, dev = clean.shape[0], clean.device
    lin = srgb_to_linear(clean.float())
    use_glow, use_flare, use_veil = (_chance(n, p, gen, dev) for p in (0.8, 0.5, 0.8))
    use_glow = torch.maximum(use_glow, 1 - torch.maximum(use_flare, use_veil))
    cy, cx = _brightest_point(lin)
    stray = (use_glow * glow(lin, gen)
             + use_flare * (streaks(lin, cy, cx, gen) + ghosts(lin, cy, cx, gen))
             + use_veil * veil(lin, gen))
    return torch.round(linear_to_srgb(lin + stray) * 255) / 255
