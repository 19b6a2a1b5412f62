"""Colorizer: Lab maths, L preservation, presets, inference modes, training-pair synthesis, and
what the shipped weights do with hints and references."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from training.colour import lab_to_rgb, recombine, rgb_to_lab
from training.degradations.colour_cast import random_cast
from training.degradations.colour_hints import geometric_count, sample_hints
from training.degradations.reference_views import random_view, sample_references
from training.models.colorizer import PRESETS, ColorizeService, colorizer
from tests.support import ROOT, photo

WEIGHTS = ROOT / "archives" / "colorize" / "colorize.pt"
MODES = ("image", "patch", "ensemble")


def rgb_tensor(width: int, height: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.array(photo(width, height, seed))).permute(2, 0, 1)[None].float() / 255


def unguided(image: torch.Tensor) -> tuple[torch.Tensor, ...]:
    n, _, h, w = image.shape
    return image, torch.zeros_like(image), torch.zeros(n, 1, h, w), torch.zeros(n, 3, 8, 8), torch.zeros(n)


def lightness(rgb: torch.Tensor) -> torch.Tensor:
    return rgb_to_lab(rgb.double())[:, :1]


# ---- colour maths ---------------------------------------------------------------------
def test_lab_matches_reference_values():
    red, white = torch.tensor([1.0, 0, 0]).view(1, 3, 1, 1), torch.ones(1, 3, 1, 1)
    expected = torch.tensor([53.24, 80.09, 67.20], dtype=torch.double)  # published sRGB red in Lab (D65)
    assert torch.allclose(rgb_to_lab(red.double()).flatten(), expected, atol=0.02)
    assert torch.allclose(rgb_to_lab(white).flatten(), torch.tensor([100.0, 0, 0]), atol=1e-3)


def test_lab_round_trip_and_gray_is_neutral():
    x = torch.rand(2, 3, 17, 23)
    assert (lab_to_rgb(rgb_to_lab(x)) - x).abs().max() < 1e-4
    gray = torch.rand(1, 1, 9, 9).expand(1, 3, 9, 9)
    assert rgb_to_lab(gray)[:, 1:].abs().max() < 1e-4


def test_recombine_keeps_l_exactly_even_out_of_gamut():
    l = rgb_to_lab(torch.rand(2, 3, 31, 29))[:, :1]
    ab = torch.randn(2, 2, 31, 29) * 120  # far outside the sRGB gamut in places
    out = recombine(l, ab)
    assert out.min() >= 0 and out.max() <= 1
    assert (lightness(out) - l.double()).abs().max() < 1e-3
    plain = lab_to_rgb(torch.cat([l, ab], 1))  # naive clipping shifts L a lot
    assert (lightness(plain) - l.double()).abs().max() > 1


def test_recombine_keeps_in_gamut_colours():
    x = torch.rand(1, 3, 20, 20)
    lab = rgb_to_lab(x)
    assert (recombine(lab[:, :1], lab[:, 1:]) - x).abs().max() < 1e-3


# ---- model and service ----------------------------------------------------------------
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_construct_script_and_run(preset):
    net = colorizer(preset).eval()
    scripted = torch.jit.script(net)
    l = rgb_to_lab(rgb_tensor(37, 21))[:, :1]
    args = (l, torch.zeros(1, 2, 21, 37), torch.zeros(1, 1, 21, 37), rgb_to_lab(rgb_tensor(30, 40, 1)), torch.ones(1))
    with torch.inference_mode():
        out = net(*args)
        assert out.shape == (1, 2, 21, 37)
        assert torch.equal(out, scripted(*args))


@pytest.mark.parametrize("size", [(1, 1), (17, 300), (301, 37), (260, 520)])
@pytest.mark.parametrize("mode", MODES)
def test_service_any_size_keeps_l(size, mode):
    torch.manual_seed(0)
    service = ColorizeService(colorizer("tiny")).eval()
    image = rgb_tensor(size[1], size[0])
    with torch.inference_mode():
        out = service(*unguided(image), mode=mode)
    assert out.shape == image.shape
    assert (lightness(out) - lightness(image)).abs().max() < 1e-3


def test_service_scripted_equals_eager_in_every_mode():
    torch.manual_seed(0)
    service = ColorizeService(colorizer("tiny")).eval()
    scripted = torch.jit.script(service)
    image = rgb_tensor(300, 200)
    mask = torch.zeros(1, 1, 200, 300)
    mask[..., 50, 60] = 1
    args = (image, rgb_tensor(300, 200, 3), mask, rgb_tensor(90, 70, 4), torch.ones(1))
    with torch.inference_mode():
        for mode in MODES:
            assert torch.equal(service(*args, mode=mode), scripted(*args, mode=mode)), mode


def test_ensemble_is_between_image_and_patch_modes():
    torch.manual_seed(0)
    service = ColorizeService(colorizer("tiny")).eval()
    image = rgb_tensor(400, 300)  # working size 256x192: several tiles
    with torch.inference_mode():
        a, b = (rgb_to_lab(service(*unguided(image), mode=m))[:, 1:] for m in ("image", "patch"))
        e = rgb_to_lab(service(*unguided(image), mode="ensemble"))[:, 1:]
    assert not torch.allclose(a, b, atol=1e-3)  # tiles really see less context
    assert (e - (a + b) / 2).abs().mean() < 0.25 * (a - b).abs().mean()


@pytest.mark.parametrize("has", [0.0, 1.0])
def test_one_pixel_reference_is_finite(has):
    service = ColorizeService(colorizer("tiny")).eval()
    image = rgb_tensor(40, 30)
    with torch.inference_mode():
        out = service(*unguided(image)[:3], torch.rand(1, 3, 1, 1), torch.tensor([has]))
    assert torch.isfinite(out).all()


def test_bad_mode_is_rejected():
    service = ColorizeService(colorizer("tiny")).eval()
    with pytest.raises(ValueError):
        service(*unguided(rgb_tensor(20, 20)), mode="tiles")


def test_hints_reach_the_working_resolution_widened():
    service = ColorizeService(colorizer("tiny"))
    hint_rgb, mask = torch.zeros(1, 3, 512, 512), torch.zeros(1, 1, 512, 512)
    hint_rgb[..., 100, 200] = torch.tensor([1.0, 0, 0])
    mask[..., 100, 200] = 1
    ab, work_mask = service._hints(hint_rgb, mask, 256, 256)
    assert work_mask.sum() == 9 and work_mask[0, 0, 50, 100] == 1
    red_ab = rgb_to_lab(torch.tensor([1.0, 0, 0]).view(1, 3, 1, 1))[:, 1:, 0, 0]
    assert torch.allclose(ab[0, :, 49:52, 99:102].mean((1, 2)), red_ab[0], atol=0.5)


def test_hint_priors_spread_along_equal_lightness_only():
    net = colorizer("tiny")
    l = torch.full((1, 1, 64, 64), 30.0)
    l[..., 32:] = 70.0  # left and right halves of different lightness
    hint_ab, mask = torch.zeros(1, 2, 64, 64), torch.zeros(1, 1, 64, 64)
    hint_ab[..., 9:12, 9:12] = torch.tensor([0.5, -0.3]).view(2, 1, 1)  # one hint as the service widens it
    mask[..., 9:12, 9:12] = 1
    local = net.local_prior(l, hint_ab, mask)
    assert torch.allclose(local[0, :2, 20, 25], torch.tensor([0.5, -0.3]), atol=0.01)  # same region, 15 px away
    assert local[0, 2, 20, 25] > 0.5 and local[0, 2, 10, 40] < 0.05  # not across the lightness edge
    whole = net.prior(l, net.band_sums(l.reshape(1, 1, -1), hint_ab.reshape(1, 2, -1), mask.reshape(1, 1, -1)))
    assert torch.allclose(whole[0, :2, 63, 5], torch.tensor([0.5, -0.3]), atol=0.01)  # far away, same lightness
    assert whole[0, 2, 63, 5] > 0.5 and whole[0, 2, 10, 40] < 0.05


# ---- training-pair synthesis -----------------------------------------------------------
def test_geometric_hint_counts():
    gen = torch.Generator().manual_seed(0)
    counts = np.array([geometric_count(0.125, 64, gen) for _ in range(4000)])
    assert abs((counts == 0).mean() - 0.125) < 0.03
    assert abs(counts.mean() - 7) < 0.7 and counts.max() <= 64


def test_sampled_hints_reveal_true_patch_means():
    gen = torch.Generator().manual_seed(1)
    ab = torch.randn(8, 2, 40, 40) * 30
    hints, mask = sample_hints(ab, p=0.05, max_size=1, generator=gen)
    assert set(mask.unique().tolist()) <= {0.0, 1.0} and mask.sum() > 0
    on = mask.expand_as(ab) > 0
    assert torch.equal(hints[on], ab[on]) and torch.all(hints[~on] == 0)


def test_reference_views_and_casts():
    gen = torch.Generator().manual_seed(2)
    clean = torch.rand(64, 3, 32, 32)
    refs, has = sample_references(clean, generator=gen)
    assert set(has.unique().tolist()) == {0.0, 1.0} and 0.4 < has.mean() < 0.8
    assert torch.all(refs[has == 0] == 0)
    view = random_view(clean[0], generator=gen)
    assert view.shape == clean[0].shape and 0 <= view.min() and view.max() <= 1
    gray = torch.full((4, 3, 8, 8), 0.5)
    cast = random_cast(gray, generator=gen)
    assert not torch.allclose(cast, gray) and torch.allclose(cast.mean(1), gray.mean(1), atol=1e-6)


def test_task_batches_and_loss():
    from training.tasks.colorize import ColorizeTask

    args = argparse.Namespace(data=None, patch=48, max_side=256, seed=0, val_patches=4, preset="tiny", p_cast=0.3)
    task = ColorizeTask(args)
    batch = task.make_batch(task.sampler.sample(3))
    assert [t.shape[1] for t in batch[:4]] == [1, 2, 1, 3]
    assert batch[4].shape == (3,) and batch[-1].shape == (3, 3, 48, 48)
    loss = task.loss(task.build_model(), batch)
    assert loss.isfinite() and loss > 0
    assert (lightness(task.baseline(batch)) - batch[0].double()).abs().max() < 1e-3


# ---- the shipped weights -------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped() -> torch.jit.ScriptModule:
    if not WEIGHTS.exists():
        pytest.skip(f"{WEIGHTS} not trained yet (python -m training.train colorize ... --export-to {WEIGHTS})")
    return torch.jit.load(str(WEIGHTS)).eval()


def test_hints_move_colour_near_their_points(shipped):
    image = rgb_tensor(160, 120).mean(1, keepdim=True).expand(1, 3, 120, 160).contiguous()
    hint_rgb, mask = torch.zeros_like(image), torch.zeros(1, 1, 120, 160)
    points = [(30, 40), (90, 120)]
    for y, x in points:
        hint_rgb[..., y, x] = torch.tensor([0.1, 0.3, 0.9])  # a strong blue
        mask[..., y, x] = 1
    with torch.inference_mode():
        auto = rgb_to_lab(shipped(*unguided(image)))
        hinted = rgb_to_lab(shipped(image, hint_rgb, mask, torch.zeros(1, 3, 8, 8), torch.zeros(1)))
    for y, x in points:
        assert hinted[0, 2, y - 2:y + 3, x - 2:x + 3].mean() < auto[0, 2, y - 2:y + 3, x - 2:x + 3].mean() - 15


def test_reference_cast_shifts_colour_statistics(shipped):
    image = rgb_tensor(160, 120, 5)
    gray = image.mean(1, keepdim=True).expand_as(image).contiguous()
    blue_cast = torch.tensor([0.4, 0.8, 1.4]).view(1, 3, 1, 1)
    reference = (rgb_tensor(100, 80, 6) * blue_cast).clamp(0, 1)
    with torch.inference_mode():
        auto = rgb_to_lab(shipped(*unguided(gray)))
        guided = rgb_to_lab(shipped(*unguided(gray)[:3], reference, torch.ones(1)))
    ref_b = rgb_to_lab(reference)[:, 2].mean()
    assert ref_b < -10
    assert guided[:, 2].mean() < auto[:, 2].mean() - 5
