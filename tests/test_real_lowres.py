"""Real low-res degradations for superres training (training/degradations/real_lowres.py) and the
clean/real decision on uploads (handlers/input_quality.py). CPU only, a few seconds."""
from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from handlers import input_quality
from training.degradations import real_lowres
from training.degradations.motion_blur import jpeg
from training.degradations.real_lowres import RealLowResConfig
from training.tasks.superres import bicubic_down
from training.train import parse_args

# Only the stages a test names are drawn: the others are switched off.
NONE = dict(blur_prob=0.0, noise_prob=0.0, jpeg_prob=0.0, real_prob=1.0)


def photo_patches(n: int = 4, side: int = 96) -> torch.Tensor:
    """Crops of a real photo (astronaut) as a training batch would have them, [n, 3, side, side] in [0, 1]."""
    img = torch.from_numpy(skimage.data.astronaut().copy()).permute(2, 0, 1).float() / 255
    return torch.stack([img[:, 40 * i + 100: 40 * i + 100 + side, 30 * i + 150: 30 * i + 150 + side] for i in range(n)])


def to_bytes(rgb: np.ndarray, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, **options)
    return buf.getvalue()


def small_photo(name: str = "chelsea") -> np.ndarray:
    """A photo as the clean model's input: an x4 antialiased bicubic downscale, 8 bits."""
    img = torch.from_numpy(getattr(skimage.data, name)().copy()).permute(2, 0, 1)[None].float() / 255
    return (bicubic_down(img)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


# --- degradations ---------------------------------------------------------------------------------

def test_same_seed_same_batch_other_seed_other_batch() -> None:
    clean = photo_patches()
    a, _ = real_lowres.degrade(clean, np.random.default_rng(3))
    b, _ = real_lowres.degrade(clean, np.random.default_rng(3))
    c, _ = real_lowres.degrade(clean, np.random.default_rng(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("side", [96, 98])
def test_sizes_are_a_quarter_and_the_target_is_cropped_to_match(side: int) -> None:
    clean = photo_patches(side=side)
    lr, target = real_lowres.degrade(clean, np.random.default_rng(0))
    assert lr.shape == (4, 3, side // 4, side // 4)
    assert target.shape == (4, 3, side // 4 * 4, side // 4 * 4)
    assert torch.equal(target, clean[..., : side // 4 * 4, : side // 4 * 4])
    assert lr.min() >= 0 and lr.max() <= 1


def test_plain_share_is_todays_clean_input_exactly() -> None:
    clean = photo_patches(n=8)
    rng = np.random.default_rng(5)
    real = np.random.default_rng(5).random(8) < RealLowResConfig.real_prob  # the first draw of degrade()
    assert 0 < real.sum() < 8  # this seed gives both kinds, so both halves of the test mean something
    lr, _ = real_lowres.degrade(clean, rng)
    clean_input = bicubic_down(clean)
    for i in range(8):
        assert torch.equal(lr[i], clean_input[i]) != real[i]
    everything_plain, _ = real_lowres.degrade(clean, np.random.default_rng(0), RealLowResConfig(real_prob=0.0))
    assert torch.equal(everything_plain, clean_input)


def test_noise_when_drawn_is_there() -> None:
    clean = photo_patches()
    cfg = RealLowResConfig(**{**NONE, "noise_prob": 1.0, "poisson_prob": 0.0, "gauss_sigma": (8 / 255, 8 / 255),
                              "shuffle_prob": 0.0})  # noise after the downscale: its full strength stays
    lr, _ = real_lowres.degrade(clean, np.random.default_rng(1), cfg)
    # Without the noise (same draws of the kernel) the only change is 8-bit rounding.
    quiet, _ = real_lowres.degrade(clean, np.random.default_rng(1), dataclasses.replace(cfg, gauss_sigma=(0.0, 0.0)))
    residual = (lr - quiet)[quiet.gt(0.05) & quiet.lt(0.95)]  # away from clipping
    assert residual.std().item() == pytest.approx(8 / 255, rel=0.15)


def test_poisson_noise_grows_with_brightness() -> None:
    flat = torch.cat([torch.full((1, 3, 96, 96), 0.1), torch.full((1, 3, 96, 96), 0.8)])
    cfg = RealLowResConfig(**{**NONE, "noise_prob": 1.0, "poisson_prob": 1.0, "poisson_peak": (500.0, 500.0)})
    lr, _ = real_lowres.degrade(flat, np.random.default_rng(2), cfg)
    dark, bright = lr[0].std().item(), lr[1].std().item()
    assert bright > 2 * dark  # shot noise: std ~ sqrt(signal), sqrt(8) = 2.8
    assert bright == pytest.approx((0.8 / 500) ** 0.5, rel=0.2)


def test_jpeg_when_drawn_is_there_and_twice_differs_from_once() -> None:
    clean = photo_patches(n=2)
    once = RealLowResConfig(**{**NONE, "jpeg_prob": 1.0, "jpeg_quality": (30, 30), "jpeg_twice_prob": 0.0,
                               "down_kernels": ("bicubic",)})
    lr, _ = real_lowres.degrade(clean, np.random.default_rng(0), once)
    plain = real_lowres.quantise(bicubic_down(clean))
    for i in range(2):
        assert torch.equal(lr[i], jpeg(plain[i], 30))  # exactly one q30 round trip of the clean input
    assert (lr - plain).abs().mean() > 2 / 255  # and it is not a no-op at this size
    twice, _ = real_lowres.degrade(clean, np.random.default_rng(0), dataclasses.replace(once, jpeg_twice_prob=1.0))
    for i in range(2):
        assert torch.equal(twice[i], jpeg(jpeg(plain[i], 30), 30))


def test_blur_kernels_sum_to_one_and_blur_softens() -> None:
    cfg = RealLowResConfig()
    rng = np.random.default_rng(0)
    for shrink in (1, 4):
        for _ in range(20):
            k = real_lowres.random_blur_kernel(rng, cfg, shrink)
            assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1 and k.shape[0] <= cfg.kernel_size
            assert k.sum() == pytest.approx(1.0)
    wide = real_lowres.trim(real_lowres.gaussian_kernel(21, 2.4, 2.4, 0.0))
    assert wide.shape[0] >= 2 * 3 * 2.4  # trimming keeps the Gaussian's +-3 sigma
    clean = photo_patches(n=1)
    soft = real_lowres.blur(clean, real_lowres.gaussian_kernel(21, 2.0, 2.0, 0.0))
    assert soft.shape == clean.shape
    assert soft.diff(dim=-1).abs().mean() < 0.6 * clean.diff(dim=-1).abs().mean()


# --- the training task ----------------------------------------------------------------------------

def test_superres_task_degradation_option() -> None:
    from training.tasks.superres import SuperResTask

    assert parse_args(["superres"]).degradation == "clean"
    clean = photo_patches()
    today = SuperResTask(parse_args(["superres", "--val-patches", "2"]))
    lr, target = today.make_batch(clean)
    assert torch.equal(lr, bicubic_down(clean)) and torch.equal(target, clean)
    real = SuperResTask(parse_args(["superres", "--val-patches", "2", "--degradation", "real"]))
    assert "degrade" in real.rng_state() and "degrade" not in today.rng_state()
    lr_real, target_real = real.make_batch(clean)
    assert lr_real.shape == lr.shape and torch.equal(target_real, clean)
    assert not torch.equal(lr_real, lr)


# --- the decision on uploads ----------------------------------------------------------------------

@pytest.mark.parametrize("quality", [35, 50, 75, 95])
def test_jpeg_quality_is_read_back_from_the_tables(quality: int) -> None:
    data = to_bytes(small_photo("astronaut"), "JPEG", quality=quality)
    assert abs(input_quality.measure(data).jpeg_quality - quality) <= 2


def test_quality_estimate_is_not_fooled_by_other_tables() -> None:
    # Tables that are the standard ones x3 (about quality 17) are not any quality Pillow saved at above.
    tables = {0: list(np.minimum(input_quality.STD_LUMA * 3, 255).astype(int))}
    assert abs(input_quality.estimate_jpeg_quality(tables) - 17) <= 1


def test_q50_jpeg_is_real() -> None:
    for name in ("chelsea", "astronaut", "coffee"):
        assert input_quality.decide(input_quality.measure(to_bytes(small_photo(name), "JPEG", quality=50))) == "real"


def test_png_bicubic_downscale_of_a_smooth_photo_is_clean() -> None:
    for name in ("chelsea", "astronaut", "coffee"):
        q = input_quality.measure(to_bytes(small_photo(name), "PNG"))
        assert q.jpeg_quality is None and input_quality.decide(q) == "clean", (name, q)


def test_jpeg_saved_again_as_png_is_real_by_its_blocks() -> None:
    jpeg = Image.open(io.BytesIO(to_bytes(small_photo("chelsea"), "JPEG", quality=50)))
    q = input_quality.measure(to_bytes(np.asarray(jpeg.convert("RGB")), "PNG"))
    assert q.jpeg_quality is None and q.block_grid and q.blockiness > input_quality.GRID_RATIO_ABOVE
    assert input_quality.decide(q) == "real"


def test_a_cropped_jpeg_saved_again_as_png_is_real_by_a_grid_every_strip_agrees_on() -> None:
    jpeg = np.asarray(Image.open(io.BytesIO(to_bytes(small_photo("chelsea"), "JPEG", quality=40))).convert("RGB"))
    q = input_quality.measure(to_bytes(np.ascontiguousarray(jpeg[3:, 5:]), "PNG"))  # grid off phase 7
    assert q.block_grid and input_quality.decide(q) == "real"


def test_texture_that_favours_one_phase_here_and_another_there_is_no_grid() -> None:
    """Each strip's steps peak at another phase (as texture does): no grid, however strong each peak."""
    y = np.zeros((90, 160))  # under 96 rows: only the steps along rows are measured
    for i, phase in enumerate((2, 5, 2)):  # three horizontal strips of 30 rows
        y[i * 30:(i + 1) * 30, phase + 1::8] = 30.0  # a step into column phase+1 and back out of it
    y += np.random.default_rng(0).normal(0, 1, y.shape)
    ratio, grid = input_quality.blockiness(y)
    assert ratio > input_quality.GRID_RATIO_ABOVE and not grid
    y[30:60] = y[:30]  # every strip at phase 2: now a grid
    assert input_quality.blockiness(y)[1]


def test_noisy_png_is_real_by_its_noise() -> None:
    clean = small_photo("chelsea").astype(np.float64)
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 12, clean.shape), 0, 255).round().astype(np.uint8)
    q = input_quality.measure(to_bytes(noisy, "PNG"))
    assert q.noise_sigma > input_quality.NOISE_REAL_ABOVE and input_quality.decide(q) == "real"


def test_the_server_measures_its_decoding_as_the_file_measures() -> None:
    """auto in the handler reads image_io's decoding (pixels and the JPEG tables it keeps): same measures."""
    from image_io import decode

    for fmt, kwargs in (("JPEG", {"quality": 50}), ("PNG", {})):
        data = to_bytes(small_photo("coffee"), fmt, **kwargs)
        image = decode(data, 10_000_000)
        assert input_quality.measure_pixels(image.rgb, image.source.quantization) == input_quality.measure(data)
    assert decode(to_bytes(small_photo("coffee"), "PNG"), 10_000_000).source.quantization is None


def test_a_large_upload_is_measured_on_its_central_crop() -> None:
    big = np.zeros((3000, 2000, 3), np.uint8)
    assert input_quality.central_crop(big).shape == (input_quality.MEASURED_SIDE, input_quality.MEASURED_SIDE, 3)
    assert input_quality.central_crop(big[:500]).shape == (500, input_quality.MEASURED_SIDE, 3)
