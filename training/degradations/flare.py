"""Night lens flare as lenses make it: street lights with diffraction starbursts, glow, ghosts and veil.

A clean photo becomes a night scene (darkened in linear light to a night exposure: a bright photo by
2-4 stops or more, an already dark one barely) with small light sources added at values far above 1.0,
so they saturate as on a sensor. The flare of those sources is then added in linear light:

- a diffraction starburst: the point-spread function of a polygonal aperture (5-9 blades, straight or
  rounded) is the squared magnitude of the aperture's Fourier transform; each colour channel takes it at
  its own wavelength's scale (a PSF's size grows with the wavelength), so the spikes end in colour fringes;
- a streak (half the lenses): a long thin line through each source, as smartphone cover glass makes;
- glow: the lens's heavy-tailed point-spread wings (``glare.heavy_tail_psf``);
- ghosts: the source reflected through the optical centre, polygonal (the aperture's shape) or round;
- veiling glare: a tinted wash proportional to the sources' light.

The light sources stay in the target, as in the flare-removal literature (Wu et al., "How to train neural
networks for flare removal", ICCV 2021; Dai et al., Flare7K, NeurIPS 2022): only the flare is removed.
Sensor noise is part of the scene, in both input and target, so the task is flare removal, not denoising;
the input alone is then saved as a JPEG.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from training.degradations.glare import (_grid, _log_uniform, _uniform, fft_blur, heavy_tail_psf,
                                         linear_to_srgb, luminance, random_tint, srgb_to_linear, veil)
from training.degradations.motion_blur import jpeg

# Relative wavelengths of the R, G, B channels (610, 530, 460 nm): a diffraction pattern scales with them.
WAVELENGTH_SCALE = (610 / 530, 1.0, 460 / 530)
# Light colours of night streets, linear RGB: sodium vapour, warm white (incandescent/halogen), cool LED.
LAMP_COLOURS = ((1.0, 0.55, 0.18), (1.0, 0.78, 0.52), (0.82, 0.92, 1.0))
APERTURE_GRID = 256  # the pupil plane's samples: the starburst PSF is this many pixels across before scaling


@dataclass(frozen=True)
class FlareConfig:
    night_mean: tuple[float, float] = (0.004, 0.08)  # linear mean luminance of the night scene (log-uniform)
    sources: tuple[int, int] = (1, 5)  # light sources per image (inclusive)
    source_radius: tuple[float, float] = (1.0, 5.0)  # px (log-uniform)
    source_peak: tuple[float, float] = (4.0, 200.0)  # linear, 1.0 = sensor saturation (log-uniform)
    blades: tuple[int, int] = (5, 9)  # aperture blades (inclusive)
    starburst: tuple[float, float] = (1.0, 10.0)  # gain of the starburst PSF (log-uniform)
    starburst_size: tuple[float, float] = (0.6, 2.0)  # scale of the starburst PSF against APERTURE_GRID px
    streak_p: float = 0.5
    streak_length: tuple[float, float] = (60.0, 600.0)  # px, decay length each way (log-uniform)
    streak_share: tuple[float, float] = (0.005, 0.1)  # of the source's light (log-uniform)
    glow: tuple[float, float] = (0.02, 0.4)  # glow's share of the source light (log-uniform)
    ghosts_p: float = 0.7
    ghosts: tuple[int, int] = (1, 4)  # per lens (inclusive)
    ghost_share: tuple[float, float] = (0.002, 0.05)  # of the source's light, per ghost (log-uniform)
    veil_p: float = 0.6
    read_noise: tuple[float, float] = (0.0005, 0.006)  # linear sigma
    shot_noise: tuple[float, float] = (0.0, 0.004)  # linear sigma at 1.0 (scales with sqrt of the light)
    jpeg_p: float = 0.5
    jpeg_quality: tuple[int, int] = (70, 95)


def night_scene(clean: torch.Tensor, gen: torch.Generator, cfg: FlareConfig) -> torch.Tensor:
    """Linear RGB [N, 3, H, W] of clean sRGB photos brought down to a night exposure: never brightened,
    so a photo darker than the drawn night level stays as it is."""
    lin = srgb_to_linear(clean.float())
    n, dev = lin.shape[0], lin.device
    target = _log_uniform(n, *cfg.night_mean, gen, dev)
    mean = luminance(lin).mean((1, 2, 3)).clamp(min=1e-6)
    return lin * (target / mean).clamp(max=1.0).view(n, 1, 1, 1)


def light_sources(n: int, h: int, w: int, gen: torch.Generator, cfg: FlareConfig,
                  device: torch.device) -> tuple[torch.Tensor, list[list[tuple[float, float]]]]:
    """[N, 3, H, W] small soft discs of lamp-coloured light, far above 1.0, and each image's centres (y, x)."""
    y, x = _grid(h, w, device)
    out = torch.zeros(n, 3, h, w, device=device)
    centres: list[list[tuple[float, float]]] = []
    for i in range(n):
        count = int(torch.randint(cfg.sources[0], cfg.sources[1] + 1, (1,), generator=gen))
        own = []
        for _ in range(count):
            cy, cx = float(torch.rand(1, generator=gen)) * (h - 1), float(torch.rand(1, generator=gen)) * (w - 1)
            radius = float(_log_uniform(1, *cfg.source_radius, gen, device))
            peak = float(_log_uniform(1, *cfg.source_peak, gen, device))
            colour = torch.tensor(LAMP_COLOURS[int(torch.randint(len(LAMP_COLOURS), (1,), generator=gen))],
                                  device=device).view(3, 1, 1) * random_tint(1, 0.15, gen, device)[0]
            disc = torch.sigmoid((radius - torch.sqrt((y - cy) ** 2 + (x - cx) ** 2)) / 0.5)
            out[i] += peak * colour * disc
            own.append((cy, cx))
        centres.append(own)
    return out, centres


def polygon_radius(theta: torch.Tensor, blades: int, rounding: float) -> torch.Tensor:
    """Boundary radius (1 = circumscribed circle) of a regular ``blades``-gon at polar angle ``theta``,
    blended into a circle by ``rounding`` (0 straight blades, 1 round): apothem / cos(angle off the edge's normal)."""
    sector = 2 * math.pi / blades
    edge = math.cos(math.pi / blades) / torch.cos(torch.remainder(theta, sector) - sector / 2)
    return (1 - rounding) * edge + rounding


def aperture(blades: int, rounding: float, rotation: float, size: int = APERTURE_GRID) -> torch.Tensor:
    """[size, size] pupil: the polygon with radius a quarter of the grid, so the PSF's core is about 2 px wide."""
    y, x = _grid(size, size, torch.device("cpu"))
    dy, dx = y - size / 2, x - size / 2
    r = torch.sqrt(dy ** 2 + dx ** 2)
    return (r <= (size / 4) * polygon_radius(torch.atan2(dy, dx) - rotation, blades, rounding)).float()


def starburst_psf(blades: int, rounding: float, rotation: float) -> torch.Tensor:
    """[3, G, G] centred diffraction PSFs of the aperture, one per colour channel at its wavelength, each
    summing to 1. |FT(pupil)|² gives the spikes: one pair per blade (an odd count doubles them)."""
    pupil = aperture(blades, rounding, rotation)
    psf = torch.fft.fftshift(torch.fft.fft2(pupil).abs() ** 2)
    psf = (psf / psf.sum()).view(1, 1, *psf.shape)
    g = psf.shape[-1]
    channels = []
    for scale in WAVELENGTH_SCALE:  # sample the green PSF at 1/scale: the pattern is `scale` times larger
        theta = torch.tensor([[1 / scale, 0, 0], [0, 1 / scale, 0]], dtype=torch.float32).unsqueeze(0)
        grid = F.affine_grid(theta, [1, 1, g, g], align_corners=False)
        c = F.grid_sample(psf, grid, mode="bilinear", align_corners=False)[0, 0]
        channels.append(c / c.sum())
    return torch.stack(channels)


def place_psf(psf: torch.Tensor, h: int, w: int, scale: float) -> torch.Tensor:
    """[C, 2H, 2W] canvas (``fft_blur``'s PSF size) with ``psf`` [C, G, G] centred and resized by ``scale``,
    renormalised so it keeps its light."""
    g = psf.shape[-1]
    side = max(3, int(round(g * scale)) | 1)
    resized = F.interpolate(psf.unsqueeze(0), size=(side, side), mode="bilinear", align_corners=False)[0]
    canvas = torch.zeros(psf.shape[0], 2 * h, 2 * w)
    # Crop what does not fit, centred on the canvas's centre pixel (h, w) as fft_blur expects.
    top, left = h - side // 2, w - side // 2
    y0, x0 = max(0, -top), max(0, -left)
    y1, x1 = min(side, 2 * h - top), min(side, 2 * w - left)
    canvas[:, top + y0:top + y1, left + x0:left + x1] = resized[:, y0:y1, x0:x1]
    return canvas / canvas.sum((-2, -1), keepdim=True)


def streak_psf(h: int, w: int, angle: float, width: float, length: float) -> torch.Tensor:
    """[1, 2H, 2W] centred PSF of a streak: a thin line through the source fading exponentially both ways,
    summing to 1. Smartphone night shots show these (grease or scratches on the cover glass, wiper marks)."""
    y, x = _grid(2 * h, 2 * w, torch.device("cpu"))
    dy, dx = y - h, x - w
    across = dx * math.sin(angle) - dy * math.cos(angle)
    along = dx * math.cos(angle) + dy * math.sin(angle)
    line = torch.exp(-0.5 * (across / width) ** 2 - along.abs() / length)
    return (line / line.sum()).unsqueeze(0)


@dataclass(frozen=True)
class Lens:
    blades: int
    rounding: float
    rotation: float

    @staticmethod
    def draw(gen: torch.Generator, cfg: FlareConfig) -> "Lens":
        return Lens(int(torch.randint(cfg.blades[0], cfg.blades[1] + 1, (1,), generator=gen)),
                    float(torch.rand(1, generator=gen)) ** 2 * 0.8,  # mostly straight blades
                    float(torch.rand(1, generator=gen)) * 2 * math.pi)


def lens_ghosts(h: int, w: int, source: tuple[float, float], energy: float, lens: Lens, gen: torch.Generator,
                cfg: FlareConfig) -> torch.Tensor:
    """[3, H, W] reflections of one source on the line through the optical centre (internal reflections
    image it mirrored about the axis), each the aperture's polygon (or round), tinted, soft-edged."""
    y, x = _grid(h, w, torch.device("cpu"))
    cy, cx = source
    oy, ox = (h - 1) / 2 - cy, (w - 1) / 2 - cx  # source -> centre
    out = torch.zeros(3, h, w)
    for _ in range(int(torch.randint(cfg.ghosts[0], cfg.ghosts[1] + 1, (1,), generator=gen))):
        t = float(_uniform(1, 0.3, 2.5, gen, out.device))  # 1 = centre, 2 = mirrored position
        dy, dx = y - (cy + t * oy), x - (cx + t * ox)
        radius = float(_log_uniform(1, 3.0, 0.2 * min(h, w) + 3, gen, out.device))
        round_ghost = float(torch.rand(1, generator=gen)) < 0.4
        shape = 1.0 if round_ghost else polygon_radius(torch.atan2(dy, dx) - lens.rotation, lens.blades, lens.rounding)
        soft = float(_uniform(1, 0.5, 4.0, gen, out.device))
        ghost = torch.sigmoid((radius * shape - torch.sqrt(dy ** 2 + dx ** 2)) / soft)
        # A ghost spreads a fixed share of the source's light over its area: big ghosts are faint.
        share = float(_log_uniform(1, *cfg.ghost_share, gen, out.device))
        out += share * energy / (math.pi * radius ** 2) * random_tint(1, 0.8, gen, out.device)[0] * ghost
    return out


def lens_flare(sources: torch.Tensor, centres: list[list[tuple[float, float]]], gen: torch.Generator,
               cfg: FlareConfig) -> torch.Tensor:
    """Linear flare light [N, 3, H, W] of the light ``sources``: starburst (+ streak) + glow + ghosts + veil."""
    n, _, h, w = sources.shape
    dev = sources.device
    lenses = [Lens.draw(gen, cfg) for _ in range(n)]
    stars = torch.stack([float(_log_uniform(1, *cfg.starburst, gen, dev))
                         * place_psf(starburst_psf(lens.blades, lens.rounding, lens.rotation), h, w,
                                     float(_uniform(1, *cfg.starburst_size, gen, dev))) for lens in lenses])
    for i in range(n):
        if float(torch.rand(1, generator=gen)) < cfg.streak_p:
            angle = float(torch.rand(1, generator=gen)) * math.pi
            width = float(_uniform(1, 0.7, 4.0, gen, dev))
            length = float(_log_uniform(1, *cfg.streak_length, gen, dev))
            stars[i] += float(_log_uniform(1, *cfg.streak_share, gen, dev)) * streak_psf(h, w, angle, width, length)
    wings = heavy_tail_psf(2 * h, 2 * w, _log_uniform(n, 1.0, 8.0, gen, dev), _uniform(n, 1.05, 1.6, gen, dev))
    glow = _log_uniform(n, *cfg.glow, gen, dev).view(n, 1, 1, 1) * random_tint(n, 0.2, gen, dev)
    flare = fft_blur(sources, stars.to(dev)) + glow * fft_blur(sources, wings)
    for i, (lens, own) in enumerate(zip(lenses, centres)):
        if float(torch.rand(1, generator=gen)) < cfg.ghosts_p:
            # Light of the brightest source, summed over its disc: what its reflections share out.
            energy = float(luminance(sources[i:i + 1]).sum()) / len(own)
            flare[i] += lens_ghosts(h, w, own[0], energy, lens, gen, cfg).to(dev)
    use_veil = (torch.rand(n, generator=gen) < cfg.veil_p).float().view(n, 1, 1, 1).to(dev)
    return flare + use_veil * veil(sources, gen)


def sensor(lin: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Linear light + the scene's noise -> 8-bit sRGB (clipped: a saturated source is white)."""
    return torch.round(linear_to_srgb((lin + noise).clamp(0, 1)) * 255) / 255


def night_flare(clean: torch.Tensor, gen: torch.Generator,
                cfg: FlareConfig = FlareConfig()) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean sRGB photos [N, 3, H, W] -> (flared night shot, the same shot without flare), both 8-bit sRGB."""
    n, _, h, w = clean.shape
    dev = clean.device
    scene = night_scene(clean, gen, cfg)
    sources, centres = light_sources(n, h, w, gen, cfg, dev)
    lit = scene + sources
    read = _uniform(n, *cfg.read_noise, gen, dev).view(n, 1, 1, 1)
    shot = _uniform(n, *cfg.shot_noise, gen, dev).view(n, 1, 1, 1)
    sigma = torch.sqrt(read ** 2 + shot ** 2 * lit.clamp(0, 1))
    noise = sigma * torch.randn(lit.shape, generator=gen, device=dev)
    target = sensor(lit, noise)
    degraded = sensor(lit + lens_flare(sources, centres, gen, cfg), noise)
    for i in range(n):
        if float(torch.rand(1, generator=gen)) < cfg.jpeg_p:
            degraded[i] = jpeg(degraded[i], int(torch.randint(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1, (1,),
                                                               generator=gen)))
    return degraded, target
