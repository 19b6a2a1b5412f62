"""retouch: CSRNet architecture, the thumbnail-conditioned serving module, global edits, paired data."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from training.degradations.global_edits import (EDITS, contrast, exposure, fade, gamma, luma, random_global_edits,
                                                s_curve, saturation, tone_curve, white_balance)
from training.export import export_torchscript
from training.metrics import psnr
from training.models.csrnet import PRESETS, CSRNet, ThumbnailCSRNet, csrnet, thumbnail
from training.tasks.retouch import THUMB_SIZE, RetouchTask, negative_psnr
from training.train import parse_args

from tests.support import ROOT, photo

WEIGHTS = ROOT / "archives" / "retouch" / "retouch.pt"


def eight_bit(*shape: int, seed: int = 0) -> torch.Tensor:
    """Random image on the 8-bit grid, as the server decodes uploads."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=gen).float() / 255


def smooth_photo(width: int, height: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.asarray(photo(width, height, seed))).permute(2, 0, 1)[None].float() / 255


def random_model(seed: int = 0, preset: str = "paper") -> CSRNet:
    """A preset with random weights everywhere (the skip preset starts at the identity otherwise)."""
    torch.manual_seed(seed)
    model = csrnet(preset).eval()
    for p in model.parameters():
        torch.nn.init.uniform_(p, -0.3, 0.3)
    return model


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_paper_parameter_count(preset):
    model = csrnet(preset)
    cond = 3 * 32 * 49 + 32 + 2 * (32 * 32 * 9 + 32)  # 7x7 and two 3x3 convolutions
    base = (3 * 64 + 64) + (64 * 64 + 64) + (64 * 3 + 3)  # three 1x1 convolutions
    gfm = 2 * ((32 * 64 + 64) * 2 + (32 * 3 + 3))  # scale and shift linears per base layer
    assert sum(p.numel() for p in model.parameters()) == cond + base + gfm == 36_489


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("size", [(17, 23), (64, 48), (91, 130)])
def test_presets_script_and_match_eager(preset, size):
    torch.manual_seed(0)
    model = csrnet(preset).eval()
    x = torch.rand(2, 3, *size)
    scripted = torch.jit.script(model)
    with torch.inference_mode():
        eager, script = model(x), scripted(x)
    assert script.shape == x.shape
    assert (eager - script).abs().max().item() < 1e-5


@pytest.mark.parametrize("size", [(1, 1), (3, 2), (9, 7), (33, 47), (300, 41), (5, 700)])
def test_served_module_any_size(size):
    served = torch.jit.script(ThumbnailCSRNet(random_model(), thumb_size=64))
    with torch.inference_mode():
        y = served(torch.rand(2, 3, *size))
    assert y.shape == (2, 3, *size)
    assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1


def test_skip_preset_starts_at_the_identity():
    x = torch.rand(2, 3, 20, 30)
    with torch.inference_mode():
        assert torch.equal(csrnet("paper-skip")(x), x)


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("table_min_pixels", [1, 1 << 30])  # per distinct colour / per pixel
def test_served_module_equals_model_on_its_thumbnail(preset, table_min_pixels):
    """Folding GFM into the weights, chunking and the colour table change nothing but rounding."""
    model = random_model(preset=preset)
    served = torch.jit.script(ThumbnailCSRNet(model, thumb_size=40, chunk=1000, table_min_pixels=table_min_pixels))
    x = eight_bit(2, 3, 70, 95)
    with torch.inference_mode():
        expected = model(x, thumbnail(x, 40)).clamp(0, 1)
        got = served(x)
    assert (got - expected).abs().max().item() < 1e-5


def test_modulation_is_global():
    """The same pixel value maps to the same output wherever it is in one image."""
    model = random_model(1)
    x = eight_bit(1, 3, 60, 80)
    spots = [(0, 0), (13, 71), (59, 79), (30, 2)]
    for y, xx in spots:
        x[0, :, y, xx] = torch.tensor([0.2, 0.6, 0.4])
    served = torch.jit.script(ThumbnailCSRNet(model, table_min_pixels=1 << 30))
    with torch.inference_mode():
        for out in (model(x), served(x)):
            values = torch.stack([out[0, :, y, xx] for y, xx in spots])
            assert (values - values[0]).abs().max().item() < 1e-6
    # ... and the mapping depends on the image: change the rest, the same pixel maps elsewhere.
    other = x * 0.5
    for y, xx in spots:
        other[0, :, y, xx] = x[0, :, y, xx]
    with torch.inference_mode():
        assert (model(other)[0, :, 0, 0] - model(x)[0, :, 0, 0]).abs().max().item() > 1e-3


def test_condition_on_thumbnail_matches_condition_on_full_image():
    """A 1024x768 photo conditioned on its 128 px thumbnail vs on all of it: nearly the same result."""
    if not WEIGHTS.exists():
        pytest.skip(f"needs the trained weights {WEIGHTS.relative_to(ROOT)}")
    served = torch.jit.load(str(WEIGHTS)).eval()
    x = random_global_edits(smooth_photo(1024, 768), generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        from_thumb = served(x)
        from_full = served.net(x, None).clamp(0, 1)
        change = (from_full - x).abs().mean().item()
    gap = (from_thumb - from_full).abs().mean().item()
    # Trained at thumbnail scale, the two agree on most of the correction (measured: gap 0.025, change 0.15).
    assert gap < 0.2 * change


def test_thumbnail_sizes():
    assert thumbnail(torch.rand(1, 3, 600, 300), 256).shape[-2:] == (256, 128)
    assert thumbnail(torch.rand(1, 3, 100, 50), 256).shape[-2:] == (100, 50)  # small images pass through
    assert thumbnail(torch.rand(1, 3, 2, 3000), 256).shape[-2:] == (8, 256)  # never below the minimum side


# ---- degradations -------------------------------------------------------------------------

def test_edits_at_identity_strength_leave_the_image_alone():
    x = torch.rand(2, 3, 16, 16)
    one, zero = torch.ones(2, 1, 1, 1), torch.zeros(2, 1, 1, 1)
    for out in (exposure(x, zero), gamma(x, one), gamma(x, torch.ones(2, 3, 1, 1)), contrast(x, one),
                saturation(x, one), s_curve(x, zero), tone_curve(x, zero, zero), white_balance(x, zero, zero),
                fade(x, zero, zero)):
        assert torch.allclose(out, x, atol=1e-5)


def test_edits_do_what_their_names_say():
    x = torch.rand(1, 3, 32, 32) * 0.4 + 0.05
    k = lambda v: torch.full((1, 1, 1, 1), float(v))  # noqa: E731
    assert torch.allclose(exposure(x, k(1)), 2 * x)
    assert (gamma(x, k(2)) < x).all()
    assert contrast(x, k(0.5)).std() < x.std()
    gray = saturation(x, k(0))
    assert torch.allclose(gray, luma(x).expand_as(x))
    ramp = torch.linspace(0, 1, 101).view(1, 1, 1, -1).expand(1, 3, 1, 101)
    curve = s_curve(ramp, k(0.6))
    assert (curve.diff(dim=-1) > 0).all()  # monotonic
    assert torch.allclose(curve[..., [0, 50, 100]], ramp[..., [0, 50, 100]], atol=1e-6)
    assert curve[..., 25].mean() < 0.25 < 0.75 < curve[..., 75].mean()  # darker shadows, brighter highlights
    ends = fade(torch.tensor([0.0, 1.0]).view(1, 1, 1, 2), k(0.1), k(0.2))
    assert torch.allclose(ends, torch.tensor([0.1, 0.8]).view(1, 1, 1, 2))  # lifted blacks, dimmed whites
    crushed = fade(torch.tensor([0.05, 0.95]).view(1, 1, 1, 2), k(-0.1), k(-0.1))
    assert torch.allclose(crushed, torch.tensor([0.0, 1.0]).view(1, 1, 1, 2))  # crushed blacks, clipped whites
    for s, h in [(0.9, 0.9), (-0.9, -0.9), (0.9, -0.9), (-0.9, 0.9)]:
        tones = tone_curve(ramp, k(s), k(h))
        assert (tones.diff(dim=-1) > 0).all() and torch.allclose(tones[..., [0, 100]], ramp[..., [0, 100]])
        assert ((tones[..., 20] - ramp[..., 20]) * s > 0).all() and ((tones[..., 80] - ramp[..., 80]) * h > 0).all()
    grey = torch.full((1, 3, 4, 4), 0.5)
    warm = white_balance(grey, k(0.4), k(0))
    assert warm[0, 0, 0, 0] > 0.5 > warm[0, 2, 0, 0] and torch.allclose(luma(warm), luma(grey))
    green = white_balance(grey, k(0), k(0.3))
    assert green[0, 1, 0, 0] > 0.5 > green[0, 0, 0, 0] and torch.allclose(luma(green), luma(grey))


# Per edit, statistics an edit moves one way or the other (image batch [N, 3, H, W] -> [N]).
DIRECTIONS = {
    "exposure": [lambda x: luma(x).mean((1, 2, 3))],
    "gamma": [lambda x: luma(x).mean((1, 2, 3))],
    "tone_curve": [lambda x: luma(x).clamp(0.1, 0.25).mean((1, 2, 3)), lambda x: luma(x).clamp(0.75, 0.9).mean((1, 2, 3))],
    "s_curve": [lambda x: luma(x).std((1, 2, 3))],
    "contrast": [lambda x: luma(x).std((1, 2, 3))],
    "saturation": [lambda x: (x - luma(x)).abs().mean((1, 2, 3))],
    "white_balance": [lambda x: (x[:, 0] - x[:, 2]).mean((1, 2)), lambda x: (2 * x[:, 1] - x[:, 0] - x[:, 2]).mean((1, 2))],
    "colour_curves": [lambda x: (x[:, 0] - x[:, 1]).mean((1, 2)), lambda x: (x[:, 2] - x[:, 1]).mean((1, 2))],
    "fade": [lambda x: luma(x).flatten(1).quantile(0.02, dim=1), lambda x: luma(x).flatten(1).quantile(0.98, dim=1)],
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_every_edit_goes_both_ways(edit):
    """Too dark and too bright, too flat and too punchy, ...: each direction in at least a fifth of the draws."""
    assert set(DIRECTIONS) == set(EDITS)
    x = eight_bit(200, 3, 16, 16, seed=1)
    out = EDITS[edit](x, torch.Generator().manual_seed(2))
    for statistic in DIRECTIONS[edit]:
        change = statistic(out) - statistic(x)
        assert (change > 1e-3).float().mean() > 0.2 and (change < -1e-3).float().mean() > 0.2, statistic


def test_unedited_fraction():
    x = smooth_photo(24, 20).expand(400, -1, -1, -1).contiguous()
    none = random_global_edits(x, identity_fraction=0.25, generator=torch.Generator().manual_seed(4))
    same = (none == torch.round(x * 255) / 255).flatten(1).all(1).float().mean()
    assert 0.18 < same < 0.32
    edited = random_global_edits(x, generator=torch.Generator().manual_seed(4))
    assert (edited == torch.round(x * 255) / 255).flatten(1).all(1).float().mean() < 0.05


def test_random_global_edits_are_8bit_reproducible_and_mixed():
    x = smooth_photo(48, 40).expand(64, -1, -1, -1).contiguous()
    a = random_global_edits(x, generator=torch.Generator().manual_seed(0))
    b = random_global_edits(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == x.shape
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, torch.round(a * 255) / 255)
    changed = (a - x).abs().amax(dim=(1, 2, 3)) > 2 / 255
    assert changed.sum() > 0.9 * len(x)  # every image gets an edit; only near-identity strengths stay close
    one = random_global_edits(x, max_edits=1, generator=torch.Generator().manual_seed(1))
    many = random_global_edits(x, max_edits=len(EDITS), generator=torch.Generator().manual_seed(1))
    assert (many - x).abs().mean() > 1.5 * (one - x).abs().mean()  # combinations compound


# ---- training task ------------------------------------------------------------------------

def task_args(*extra: str):
    return parse_args(["retouch", "--patch", "32", "--val-patches", "4", *extra])


def test_task_batches_loss_and_export(tmp_path):
    task = RetouchTask(task_args())  # bundled scikit-image photos
    x, target = task.make_batch(task.sampler.sample(4))
    assert x.shape == target.shape == (4, 3, 32, 32)
    model = task.build_model()
    assert sum(p.numel() for p in model.parameters()) == 36_489  # the paper's CSRNet, whatever the edits
    loss = task.loss(model, (x, target))
    loss.backward()
    assert torch.isfinite(loss) and model.base[-1].weight.grad.abs().sum() > 0
    example = task.example_inputs()[0]
    assert max(example.shape[-2:]) > THUMB_SIZE
    scripted = export_torchscript(task.export_module(model), (example,), tmp_path / "retouch.pt")
    assert scripted(example).shape == example.shape


def test_psnr_loss_is_minus_the_mean_photo_psnr_and_trains():
    target = torch.rand(3, 3, 16, 16)
    out = (target + torch.tensor([0.05, 0.1, 0.3]).view(3, 1, 1, 1)).requires_grad_()
    expected = -sum(psnr(o, t) for o, t in zip(out.detach(), target)) / 3
    loss = negative_psnr(out, target)
    assert abs(loss.item() - expected) < 0.01
    loss.backward()
    per_photo = out.grad.abs().flatten(1).sum(1)  # a dB is worth more error on a photo already close
    assert per_photo[0] > per_photo[1] > per_photo[2]
    task = RetouchTask(task_args("--loss", "psnr"))
    model = task.build_model()
    loss = task.loss(model, task.make_batch(task.sampler.sample(4)))
    loss.backward()
    assert torch.isfinite(loss) and model.base[-1].weight.grad.abs().sum() > 0


def test_paired_folders_give_aligned_crops(tmp_path):
    """input/ and target/ with matching names: crops and flips must be the same for both."""
    for sub in ("input", "target"):
        (tmp_path / sub).mkdir()
    for i in range(6):
        img = photo(80 + 3 * i, 70, seed=i)
        img.save(tmp_path / "input" / f"im{i}.png")
        Image.fromarray(255 - np.asarray(img)).save(tmp_path / "target" / f"im{i}.png")  # a known per-pixel map
    task = RetouchTask(task_args("--data", str(tmp_path), "--pairs", "--max-side", "0"))
    x, target = task.make_batch(task.sampler.sample(8))
    assert x.shape == target.shape == (8, 3, 32, 32)
    assert torch.allclose(target, 1 - x, atol=1e-6)
    assert torch.allclose(task.val_batch[1], 1 - task.val_batch[0], atol=1e-6)
