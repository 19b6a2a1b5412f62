"""Night lens-flare synthesis (training/degradations/flare.py) and the enhance task's flare/glare mix."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from training.degradations.flare import (FlareConfig, aperture, light_sources, night_flare, night_scene,
                                         place_psf, polygon_radius, starburst_psf, streak_psf)
from training.degradations.glare import luminance, srgb_to_linear
from training.metrics import psnr
from training.tasks.enhance import EnhanceTask
from training.train import parse_args


def _angular_profile(psf: torch.Tensor, radii: range = range(25, 60)) -> torch.Tensor:
    """The PSF summed over a band of radii around its centre, at 720 angles (the band evens out the rings)."""
    g = psf.shape[-1]
    angles = torch.linspace(0, 2 * math.pi, 721)[:-1]
    ring = sum(psf[(g // 2 + r * torch.sin(angles)).round().long(), (g // 2 + r * torch.cos(angles)).round().long()]
               for r in radii)
    return torch.nn.functional.avg_pool1d(ring.view(1, 1, -1), 5, 1, 2, count_include_pad=False).view(-1)


def _spike_count(psf: torch.Tensor) -> int:
    ring = _angular_profile(psf)
    return int(((ring > ring.roll(1)) & (ring >= ring.roll(-1)) & (ring > 0.2 * ring.max())).sum())


@pytest.mark.parametrize("blades, spikes", [(6, 6), (8, 8), (5, 10), (7, 14)])
def test_starburst_has_one_spike_pair_per_blade_doubled_when_odd(blades, spikes):
    psf = starburst_psf(blades, rounding=0.0, rotation=0.3)[1]
    assert _spike_count(psf) == spikes


def test_rounded_blades_weaken_the_spikes():
    def spike_contrast(rounding: float) -> float:
        ring = _angular_profile(starburst_psf(6, rounding, 0.0)[1])
        return float(ring.max() / ring.median())
    assert spike_contrast(0.0) > 5 * spike_contrast(1.0)


def test_starburst_is_chromatic_red_spreads_wider_than_blue():
    psf = starburst_psf(6, 0.0, 0.0)
    g = psf.shape[-1]
    y, x = torch.meshgrid(torch.arange(g) - g // 2, torch.arange(g) - g // 2, indexing="ij")
    core = (y ** 2 + x ** 2) <= 4 ** 2
    assert torch.allclose(psf.sum((-2, -1)), torch.ones(3))
    red, green, blue = (float(c[core].sum()) for c in psf)  # light within 4 px: a longer wavelength spreads more
    assert red < green < blue


def test_aperture_is_the_polygon():
    hexagon = aperture(6, 0.0, 0.0)
    r = hexagon.shape[-1] / 4
    assert hexagon.sum() == pytest.approx(3 * math.sqrt(3) / 2 * r ** 2, rel=0.02)
    assert aperture(6, 1.0, 0.0).sum() == pytest.approx(math.pi * r ** 2, rel=0.02)
    assert torch.allclose(polygon_radius(torch.tensor([0.0, math.pi / 6]), 6, 0.0),
                          torch.tensor([1.0, math.cos(math.pi / 6)]), atol=1e-5)


def test_placed_and_streak_psfs_keep_their_light_and_centre():
    h, w = 40, 60
    for psf in (place_psf(starburst_psf(5, 0.0, 0.0), h, w, 0.8), streak_psf(h, w, 0.4, 1.5, 100.0)):
        assert psf.shape[-2:] == (2 * h, 2 * w)
        assert torch.allclose(psf.sum((-2, -1)), torch.ones(psf.shape[0]))
        assert psf[0].argmax() == h * 2 * w + w  # the peak on fft_blur's centre pixel


def test_night_scene_darkens_bright_photos_and_leaves_dark_ones():
    cfg = FlareConfig()
    bright = torch.full((1, 3, 16, 16), 0.8)
    dark = torch.full((1, 3, 16, 16), 0.02)
    gen = torch.Generator().manual_seed(0)
    night = night_scene(bright, gen, cfg)
    assert luminance(night).mean() <= cfg.night_mean[1] * 1.001
    assert luminance(srgb_to_linear(bright)).mean() / luminance(night).mean() >= 4  # at least 2 stops
    assert torch.allclose(night_scene(dark, gen, cfg), srgb_to_linear(dark))


def test_light_sources_saturate():
    sources, centres = light_sources(3, 64, 64, torch.Generator().manual_seed(1), FlareConfig(), torch.device("cpu"))
    for i, own in enumerate(centres):
        assert FlareConfig().sources[0] <= len(own) <= FlareConfig().sources[1]
        cy, cx = own[0]
        assert sources[i, :, round(cy), round(cx)].max() > 1.0


def test_flare_only_adds_light_keeps_the_lamps_and_is_reproducible():
    torch.manual_seed(0)
    clean = torch.rand(4, 3, 64, 80)
    cfg = replace(FlareConfig(), jpeg_p=0.0)  # JPEG may shift a pixel either way
    flared, target = night_flare(clean, torch.Generator().manual_seed(5), cfg)
    for t in (flared, target):
        assert t.shape == clean.shape and torch.equal(t, torch.round(t * 255) / 255)
    assert (flared >= target).all()
    assert all(psnr(flared[i], target[i]) < 40 for i in range(4))  # every image has visible flare
    assert (target.flatten(1).amax(1) == 1.0).all()  # the saturated lamps stay in the target
    assert (target.mean((1, 2, 3)) < clean.mean((1, 2, 3))).all()  # a night shot of a day photo
    again = night_flare(clean, torch.Generator().manual_seed(5), cfg)
    assert torch.equal(flared, again[0]) and torch.equal(target, again[1])


def _task(tmp_path, flare_share: float, clean_fraction: float) -> EnhanceTask:
    args = parse_args(["enhance", "--steps", "1", "--patch", "64", "--val-patches", "4",
                                      "--out", str(tmp_path), "--flare-share", str(flare_share),
                                      "--clean-fraction", str(clean_fraction)])
    return EnhanceTask(args)


def test_task_mixes_night_flare_and_resumes_the_degradation_stream(tmp_path):
    task = _task(tmp_path, flare_share=1.0, clean_fraction=0.0)
    clean = task.sampler.sample(4)
    state = task.rng_state()
    degraded, target = task.make_batch(clean)
    assert (target.mean((1, 2, 3)) < clean.mean((1, 2, 3))).all()  # night targets, not the day photos
    assert (degraded.mean((1, 2, 3)) > target.mean((1, 2, 3))).all()  # flare adds light
    task.load_rng_state(state)
    again = task.make_batch(clean)
    assert torch.equal(degraded, again[0]) and torch.equal(target, again[1])


def test_task_clean_patches_come_back_as_their_own_target(tmp_path):
    task = _task(tmp_path, flare_share=0.5, clean_fraction=1.0)
    degraded, target = task.make_batch(task.sampler.sample(6))
    assert torch.equal(degraded, target)
