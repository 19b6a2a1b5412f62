"""Colorizer: Lab maths, ab classes (bins, soft encoding, prior, rebalancing, annealed mean), L
preservation, presets and heads, inference modes, training-pair synthesis, and what the shipped
weights do with hints and references."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from training.campaigns.colour import ab_prior
from training.colour import (ab_bins, ab_histogram, annealed_mean, lab_to_rgb, rebalancing_weights, recombine,
                             rgb_to_lab, smoothed_prior, soft_encode)
from training.degradations.colour_cast import random_cast
from training.degradations.colour_hints import sample_hints
from training.degradations.reference_views import random_view, sample_references
from training.models.colorizer import PRESETS, Colorizer, ColorizeService, class_confidence, colorizer
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


# ---- ab as classes (Zhang et al. 2016) --------------------------------------------------
CENTRES = ab_bins()


def random_photo_ab(n: int = 2, size: int = 16, seed: int = 0) -> torch.Tensor:
    return rgb_to_lab(torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)))[:, 1:]


def test_ab_bins_cover_the_srgb_gamut_on_a_grid_of_ten():
    assert CENTRES.shape == (262, 2) and len({tuple(c) for c in CENTRES.tolist()}) == 262
    assert torch.equal(CENTRES, (CENTRES / 10).round() * 10)
    corners = torch.tensor([[0.0, 0, 1], [0, 1, 0], [1, 0, 0], [1, 1, 0], [1, 0, 1], [0, 1, 1]]).T.reshape(1, 3, 6, 1)
    ab = torch.cat([random_photo_ab(4, 32), rgb_to_lab(corners)[:, 1:].expand(4, -1, -1, 32)], -2)  # extremes too
    nearest = ((ab[:, None] - CENTRES[None, :, :, None, None]) ** 2).sum(2).min(1).values.sqrt()
    assert nearest.max() <= 5 * 2 ** 0.5 + 1e-4  # every sRGB colour's own grid cell is a bin
    assert not (torch.tensor([[100.0, -100.0]])[:, None] == CENTRES).all(-1).any()  # no saturated cyan-red bin


def test_soft_encoding_decodes_back_to_the_colour():
    ab = random_photo_ab()
    z = soft_encode(ab, CENTRES)
    assert z.shape == (2, 262, 16, 16) and torch.allclose(z.sum(1), torch.ones(2, 16, 16))
    assert ((z > 0).sum(1) == 5).all()  # five nearest bins
    logits = torch.log(z.clamp_min(1e-12))
    mean = annealed_mean(logits, CENTRES, 1.0)  # the distribution's mean: back near the colour
    assert (mean - ab).norm(dim=1).max() < 3.0
    mode = annealed_mean(logits, CENTRES, 1e-3)  # cold: the nearest bin (a blend only at near-ties)
    nearest = CENTRES[((ab[:, None] - CENTRES[None, :, :, None, None]) ** 2).sum(2).argmin(1)].permute(0, 3, 1, 2)
    assert ((mode - nearest).norm(dim=1) < 1e-2).float().mean() > 0.95
    assert (mode - ab).norm(dim=1).max() <= 5 * 2 ** 0.5 + 1e-3


def test_annealed_mean_is_more_colourful_than_the_mean():
    """Two plausible colours, blue (60%) and orange (40%): the mean is a dull in-between; T = 0.38
    weighs them 74/26 (p^(1/T), renormalised), towards the more likely blue, as in the paper's readout."""
    blue, orange = torch.tensor([10.0, -50.0]), torch.tensor([20.0, 60.0])
    pick = lambda c: ((CENTRES - c) ** 2).sum(1).argmin()  # noqa: E731
    logits = torch.full((1, 262, 1, 1), -30.0)
    logits[0, pick(blue)], logits[0, pick(orange)] = torch.log(torch.tensor(0.6)), torch.log(torch.tensor(0.4))
    mean, annealed = (annealed_mean(logits, CENTRES, t)[0, :, 0, 0] for t in (1.0, 0.38))
    assert torch.allclose(mean, 0.6 * CENTRES[pick(blue)] + 0.4 * CENTRES[pick(orange)], atol=1e-3)
    sharpened = torch.tensor([0.6, 0.4]) ** (1 / 0.38)
    weights = sharpened / sharpened.sum()
    assert torch.allclose(annealed, weights[0] * CENTRES[pick(blue)] + weights[1] * CENTRES[pick(orange)], atol=1e-3)
    assert annealed.norm() > 1.5 * mean.norm()


def test_histogram_and_smoothed_prior():
    ab = random_photo_ab(3, 20, seed=1)
    counts = ab_histogram(ab, CENTRES)
    assert counts.sum() == 3 * 20 * 20 and (counts >= 0).all()
    one = torch.zeros(262, dtype=torch.float64)
    k = int(((CENTRES - torch.tensor([0.0, 0.0])) ** 2).sum(1).argmin())
    one[k] = 1000
    prior = smoothed_prior(one, CENTRES)
    assert torch.isclose(prior.sum(), torch.tensor(1.0))
    right = int(((CENTRES - torch.tensor([10.0, 0.0])) ** 2).sum(1).argmin())
    assert torch.isclose(prior[right] / prior[k], torch.exp(torch.tensor(-2.0)), rtol=1e-4)  # sigma 5, 10 apart


def test_rebalancing_weights():
    assert torch.allclose(rebalancing_weights(torch.full((262,), 1 / 262)), torch.ones(262))
    prior = torch.softmax(torch.randn(262, generator=torch.Generator().manual_seed(3)) * 3, 0)
    weights = rebalancing_weights(prior, 0.5)
    assert torch.isclose((prior * weights).sum(), torch.tensor(1.0))  # the prior's expected weight is 1
    order = prior.argsort()
    assert (weights[order].diff() <= 1e-6).all()  # rarer colours weigh more
    assert weights.max() / weights.min() <= 2.0 / 0.5 * prior.max() * 262  # the uniform share caps the ratio
    assert torch.allclose(rebalancing_weights(prior, 1.0), torch.ones(262))
    assert torch.allclose(rebalancing_weights(prior, 0.0), 1 / prior / 262, rtol=1e-4)  # pure inverse frequency


def test_prior_script_writes_the_bins_and_a_distribution(tmp_path):
    """On the photos bundled with scikit-image (no ../shared needed)."""
    from training.tasks.colorize import read_class_prior

    out = tmp_path / "ab_prior.json"
    record = ab_prior.main(["--out", str(out), "--max-side", "64"])
    saved = json.loads(out.read_text())
    assert saved["centres"] == CENTRES.tolist() and sum(saved["counts"]) == saved["pixels"] == record["pixels"] > 0
    prior, seen = read_class_prior(out), torch.tensor(saved["counts"]) > 0
    assert torch.isclose(prior.sum(), torch.tensor(1.0), atol=1e-5) and (prior >= 0).all()
    assert (prior[seen] > 0).all() and prior[seen].sum() > 0.8  # smoothing moves a little mass to neighbours
    saved["centres"][0] = [0.0, 0.0]
    out.write_text(json.dumps(saved))
    with pytest.raises(ValueError):
        read_class_prior(out)


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


def test_a_photo_within_one_tile_runs_once_in_every_mode():
    """Patch and ensemble modes of a photo whose working size fits one tile are image mode (the one tile
    is the whole photo), and the network runs once, not twice."""
    torch.manual_seed(0)
    net = colorizer("tiny").eval()
    calls = []
    net.decode = (lambda decode: lambda *a: calls.append(1) or decode(*a))(net.decode)  # one call per network run
    service = ColorizeService(net).eval()
    image = rgb_tensor(120, 90)
    with torch.inference_mode():
        out = {m: service(*unguided(image), mode=m) for m in MODES}
    assert len(calls) == len(MODES)
    assert torch.allclose(out["patch"], out["image"], atol=1e-6) and torch.allclose(out["ensemble"], out["image"], atol=1e-6)


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
def test_hint_counts_are_uniform_from_0_to_20():
    gen = torch.Generator().manual_seed(0)
    _, mask = sample_hints(torch.zeros(400, 2, 8, 8), max_size=1, generator=gen)
    # 1-pixel hints on 64 pixels: a few land on the same pixel, so the distinct count is a bit lower.
    counts = mask.sum((1, 2, 3))
    assert counts.min() == 0 and counts.max() <= 20 and (counts >= 17).any()
    assert 7.5 < counts.mean() < 10.5 and 0.01 < (counts == 0).float().mean() < 0.1


def test_sampled_hints_reveal_true_patch_means():
    gen = torch.Generator().manual_seed(1)
    ab = torch.randn(8, 2, 40, 40) * 30
    hints, mask = sample_hints(ab, max_count=5, max_size=1, generator=gen)
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


def task_args(**options) -> argparse.Namespace:
    from training.train import parse_args

    args = parse_args(["colorize", "--patch", "48", "--val-patches", "4", "--preset", "tiny"])
    return argparse.Namespace(**{**vars(args), **options})


def test_task_batches_and_loss():
    from training.tasks.colorize import ColorizeTask

    task = ColorizeTask(task_args())
    batch = task.make_batch(task.sampler.sample(3))
    assert [t.shape[1] for t in batch[:4]] == [1, 2, 1, 3]
    assert batch[4].shape == (3,) and batch[-1].shape == (3, 3, 48, 48)
    loss = task.loss(task.build_model(), batch)
    assert loss.isfinite() and loss > 0
    assert (lightness(task.baseline(batch)) - batch[0].double()).abs().max() < 1e-3


def test_automatic_samples_have_no_guidance():
    from training.tasks.colorize import ColorizeTask

    task = ColorizeTask(task_args(p_automatic=1.0))
    _, hint_ab, mask, _, has_ref, *_ = task.make_batch(task.sampler.sample(6))
    assert mask.sum() == 0 and hint_ab.abs().sum() == 0 and has_ref.sum() == 0
    task.args.p_automatic = 0.0
    torch.manual_seed(0)
    _, _, mask, _, has_ref, *_ = task.make_batch(task.sampler.sample(16))
    assert mask.sum() > 0 and has_ref.sum() > 0


@pytest.mark.parametrize("head", ["classes", "both"])
def test_class_head_outputs_loss_and_prior(tmp_path, head):
    from training.tasks.colorize import ColorizeTask

    prior_file = tmp_path / "ab_prior.json"
    ab_prior.main(["--out", str(prior_file), "--max-side", "64"])
    preset = {"classes": "small-zhang2016", "both": "small-mixed"}[head]
    task = ColorizeTask(task_args(preset=preset, ab_prior=prior_file))
    model = task.build_model()
    assert torch.equal(model.class_prior, torch.tensor(json.loads(prior_file.read_text())["prior"]))
    batch = task.make_batch(task.sampler.sample(2))
    regression, logits = model.training_outputs(*batch[:5])
    assert logits.shape == (2, 262, 24, 24)
    assert (regression is None) == (head == "classes")
    loss = task.loss(model, batch)
    loss.backward()
    assert loss.isfinite() and model.classes.weight.grad.abs().sum() > 0
    assert loss > 1.0  # an untrained cross-entropy over 262 bins is far from 0


def test_heads_mix_and_temperature_are_served_and_adjustable():
    torch.manual_seed(0)
    net = Colorizer(width=16, head="both", mix=0.5).eval()
    for p in net.classes.parameters():  # a confident class head, so the temperature matters
        torch.nn.init.normal_(p, std=2.0)
    scripted = torch.jit.script(ColorizeService(net))
    image = rgb_tensor(64, 48)
    l = rgb_to_lab(image)[:, :1]
    net_args = (l, torch.zeros(1, 2, 48, 64), torch.zeros(1, 1, 48, 64), torch.zeros(1, 3, 8, 8), torch.zeros(1))
    ab = {}
    with torch.inference_mode():
        assert torch.equal(scripted(*unguided(image), mode="image"), ColorizeService(net)(*unguided(image), mode="image"))
        for name, mix, temperature in [("both", 0.5, 0.38), ("regression", 0.0, 0.38), ("annealed", 1.0, 0.38),
                                       ("mean", 1.0, 1.0)]:
            scripted.net.mix, scripted.net.temperature = mix, temperature
            ab[name] = scripted.net(*net_args)
    assert torch.allclose(ab["both"], net(*net_args), atol=1e-4)
    assert not torch.allclose(ab["regression"], ab["annealed"], atol=1.0)
    assert torch.allclose(ab["both"], (ab["regression"] + ab["annealed"]) / 2, atol=1e-3)
    assert ab["annealed"].norm(dim=1).mean() > ab["mean"].norm(dim=1).mean()  # T = 0.38 is more vivid than the mean


def test_a_flat_class_distribution_gives_grey_where_confidence_is_asked_for():
    net = Colorizer(width=16, head="classes").eval()
    torch.nn.init.zeros_(net.classes.weight)
    torch.nn.init.zeros_(net.classes.bias)  # a uniform distribution over the bins everywhere
    scripted = torch.jit.script(net)
    l = rgb_to_lab(rgb_tensor(32, 32))[:, :1]
    args = (l, torch.zeros(1, 2, 32, 32), torch.zeros(1, 1, 32, 32), torch.zeros(1, 3, 8, 8), torch.zeros(1))
    with torch.inference_mode():
        plain = scripted(*args)
        scripted.confidence = 0.5
        confident = scripted(*args)
    assert plain.norm(dim=1).mean() > 1.0  # the annealed mean of a flat distribution is some hue
    assert confident.abs().max() < 1e-4
    sure = torch.full((1, 262, 2, 2), -20.0)
    sure[:, 7] = 20.0
    assert torch.allclose(class_confidence(sure), torch.ones(1, 1, 2, 2), atol=1e-3)


def test_edge_aware_upsampling_keeps_colour_from_bleeding_across_a_lightness_edge():
    """ab known at a quarter of the size, its edge 2 working pixels off the lightness step and softened (as a
    network's low-resolution answer is): bilinear upsampling bleeds the left colour 8 pixels into the right
    side; the L-guided one changes colour at the lightness step. Flat areas come out the same either way, and
    the scripted service agrees."""
    h, w = 64, 256
    l_full = torch.full((1, 1, h, w), 30.0)
    l_full[..., w // 2:] = 70.0
    l_work = torch.nn.functional.interpolate(l_full, scale_factor=0.25, mode="area")
    ab = torch.zeros(1, 2, h // 4, w // 4)
    ab[:, 0, :, : w // 8 + 2], ab[:, 0, :, w // 8 + 2:] = 30.0, -30.0
    ab = torch.nn.functional.avg_pool2d(ab, (1, 5), 1, (0, 2), count_include_pad=False)
    net = Colorizer(width=16)
    plain, edged = ColorizeService(net), ColorizeService(net, edge_radius=3, edge_eps=1e-3)
    a_plain = rgb_to_lab(plain._recombine(l_full, l_work, ab))[0, 1, h // 2]
    a_edged = rgb_to_lab(edged._recombine(l_full, l_work, ab))[0, 1, h // 2]
    edge = w // 2
    assert float(a_plain[edge:edge + 8].mean()) > 8 and float(a_edged[edge:edge + 8].mean()) < 3
    assert float(a_edged[edge - 1] - a_edged[edge]) > 15 > 5 > float(a_plain[edge - 1] - a_plain[edge])
    assert torch.allclose(a_edged[:100], a_plain[:100], atol=0.5)
    image = lab_to_rgb(torch.cat([rgb_to_lab(rgb_tensor(96, 80))[:, :1], torch.zeros(1, 2, 80, 96)], 1))
    with torch.inference_mode():
        assert torch.allclose(torch.jit.script(edged)(*unguided(image), mode="ensemble"),
                              edged(*unguided(image), mode="ensemble"), atol=1e-5)


def test_a_hinted_photo_takes_the_guided_readout_in_every_tile():
    """Tiles of a hinted photo that hold no hint themselves still read out as guided (one photo, one readout)."""
    torch.manual_seed(0)
    net = Colorizer(width=16, head="both", mix=1.0, guided_mix=0.0).eval()
    for p in net.classes.parameters():
        torch.nn.init.normal_(p, std=2.0)
    service = torch.jit.script(ColorizeService(net, tile=64, overlap=16))
    image = rgb_tensor(200, 160)
    mask = torch.zeros(1, 1, 160, 200)
    mask[..., 4, 4] = 1  # one hint, in a corner: most of the 64 px tiles see none
    hinted = (image, image.clone(), mask, torch.zeros(1, 3, 8, 8), torch.zeros(1))
    out = {}
    with torch.inference_mode():
        for name, mix, guided_mix in [("served", 1.0, 0.0), ("regression", 0.0, 0.0), ("annealed", 1.0, 1.0)]:
            service.net.mix, service.net.guided_mix = mix, guided_mix
            out[name] = service(*hinted, mode="patch")
        service.net.mix, service.net.guided_mix = 1.0, 0.0
        automatic = service(*unguided(image), mode="patch")  # no hint: the annealed mean
        service.net.mix = 0.0
        automatic_regression = service(*unguided(image), mode="patch")
    assert torch.allclose(out["served"], out["regression"], atol=1e-6)
    assert (out["served"] - out["annealed"]).abs().max() > 0.02
    assert (automatic - automatic_regression).abs().max() > 0.02
    assert net.guided_mix == 0.0 and colorizer("small-mixed").guided_mix == 0.0 and colorizer("small-mixed").mix == 0.5


def test_a_split_service_answers_guided_photos_with_one_network_and_automatic_ones_with_the_other():
    """``automatic``: photos without hints or reference go to it, guided ones to ``net``, a mixed batch to
    each per photo; scripted as eager; one network alone (no ``automatic``) serves both as before."""
    torch.manual_seed(0)
    guided_net, automatic_net = colorizer("tiny").eval(), colorizer("tiny").eval()
    for p in automatic_net.head.parameters():  # two networks that answer differently
        torch.nn.init.normal_(p, std=0.5)
    split = torch.jit.script(ColorizeService(guided_net, automatic=automatic_net))
    image = torch.cat([rgb_tensor(96, 64), rgb_tensor(96, 64, 1)])
    mask = torch.zeros(2, 1, 64, 96)
    mask[1, :, 10, 20] = 1  # the second photo has a hint
    batch = (image, image.clone(), mask, torch.zeros(2, 3, 8, 8), torch.zeros(2))
    with torch.inference_mode():
        for mode in MODES:
            both = split(*batch, mode=mode)
            alone = {name: torch.jit.script(ColorizeService(net))(*batch, mode=mode)
                     for name, net in [("guided", guided_net), ("automatic", automatic_net)]}
            assert torch.allclose(both[1], alone["guided"][1], atol=1e-6), mode
            assert torch.allclose(both[0], alone["automatic"][0], atol=1e-6), mode
            assert (alone["guided"][0] - alone["automatic"][0]).abs().max() > 0.02, mode
            assert torch.allclose(split(*unguided(image[:1]), mode=mode), both[:1], atol=1e-4), mode  # batch of 1: other rounding


def test_the_task_exports_a_run_as_the_automatic_network_beside_guided_weights(tmp_path):
    """--guided-from: the export holds the run's weights as ``automatic`` and the file's as ``net``;
    weights that do not fill the guided preset are refused."""
    from training.tasks.colorize import ColorizeTask

    torch.manual_seed(0)
    old = colorizer("tiny").eval()
    exported = tmp_path / "guided.pt"
    torch.jit.script(ColorizeService(old)).save(str(exported))
    task = ColorizeTask(task_args(guided_from=exported, guided_preset="tiny"))
    model = task.build_model().eval()
    service = task.export_module(model)
    assert service.split and service.automatic is model
    assert torch.equal(service.net.head.weight, old.head.weight)
    with pytest.raises(ValueError, match="does not fit"):
        ColorizeTask(task_args(guided_from=exported, guided_preset="small")).export_module(model)


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
