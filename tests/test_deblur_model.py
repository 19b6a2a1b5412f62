"""deblur: atrous network architecture, blur synthesis, paired-folder training data, tiling seams."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from self_ensemble import dihedral as serve_dihedral, undo_dihedral
from tiling import run_padded, run_tiled
from training.degradations.motion_blur import (BlurConfig, blur_valid, defocus_disc, degrade, linear_to_srgb,
                                               random_kernel, rasterise, shake_trajectory, srgb_to_linear)
from training.models.atrous_deblur import DILATIONS, PRESETS, AtrousDeblur, atrous_deblur
from training.tasks.deblur import DeblurTask
from training.train import parse_args
from training.warm_start import load_matching_weights

from tests.support import photo


def expected_parameters(blocks: int, filters: int, trunk: int, stem: int, first_kernel: int,
                        mids: tuple[int, ...] = (), gated: bool = False, fuse_init: float = 0.1) -> int:
    """Parameter count from the definition: conv weights + per-channel scale and bias of every ScaledConv
    (``fuse_init`` is a starting value, not a size)."""
    def conv(cin: int, cout: int, k: int) -> int:
        return cin * cout * k * k + 2 * cout

    widths = [stem, *mids, trunk]
    fused = len(DILATIONS) * filters // (2 if gated else 1)  # a gate halves what the fuse conv reads
    attention = fused * fused + fused if gated else 0  # its 1x1 conv with bias
    block = len(DILATIONS) * conv(trunk, filters, 3) + attention + conv(fused, trunk, 3)
    per_level = sum(conv(fine, coarse, 3)  # stride-2 conv down
                    + coarse * fine * 4 * 4 + fine  # ConvTranspose2d(4x4) weight + its plain bias, back up
                    + conv(2 * fine, fine, 3)  # merge with the skip
                    for fine, coarse in zip(widths[:-1], widths[1:]))
    return conv(3, stem, first_kernel) + per_level + blocks * block + conv(stem, 3, 3)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_paper_preset_parameter_count():
    model = atrous_deblur("paper")
    count = n_params(model)
    print(f"paper preset: {count:,} parameters")
    assert abs(count - expected_parameters(**PRESETS["paper"])) <= 0.01 * count
    assert 46e6 < count < 50e6  # the write-up's "about 47M" (20 blocks, F=128, trunk 256)


@pytest.mark.parametrize("preset", ["cpu", "cpu_quarter", "cpu_quarter_deep", "cpu_gated"])
def test_cpu_presets_parameter_count(preset):
    assert n_params(atrous_deblur(preset)) == expected_parameters(**PRESETS[preset])


def trained_looking(preset: str, path) -> tuple[torch.nn.Module, object]:
    """A preset with trained-looking weights (every scale moved from its initial value), saved as a checkpoint."""
    torch.manual_seed(0)
    model = atrous_deblur(preset).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(0.05 * torch.randn_like(p)) if name.endswith("scale") else None
    torch.save({"model": model.state_dict()}, path)
    return model, path


def test_grown_network_starts_where_the_smaller_one_ended(tmp_path):
    """cpu_quarter_deep warm-started from cpu_quarter weights: the extra blocks are the identity at first."""
    small, path = trained_looking("cpu_quarter", tmp_path / "small.pt")
    grown = atrous_deblur("cpu_quarter_deep").eval()
    fresh = load_matching_weights(grown, path)
    assert {k.split(".")[0] for k in fresh} == {"blocks"}
    assert {int(k.split(".")[1]) for k in fresh} == set(range(6, 9))
    x = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        assert torch.equal(grown(x), small(x))
        grown.blocks[7].fuse.scale.fill_(1.0)  # once a new block's scale moves, it takes part
        assert (grown(x) - small(x)).abs().max() > 1e-6


def test_the_fourier_network_starts_where_the_plain_one_ended(tmp_path):
    """cpu_quarter_deep_fft from cpu_quarter_deep weights: its Fourier branches start at zero, then take part."""
    plain, path = trained_looking("cpu_quarter_deep", tmp_path / "plain.pt")
    fft = atrous_deblur("cpu_quarter_deep_fft").eval()
    fresh = load_matching_weights(fft, path)
    assert fresh and all(".fourier." in k for k in fresh)
    x = torch.rand(1, 3, 45, 70)
    scripted = torch.jit.script(fft)
    with torch.no_grad():
        assert torch.allclose(fft(x), plain(x), atol=1e-6)
        assert torch.allclose(scripted(x), fft(x), atol=1e-5)
        fft.blocks[0].fourier.conv2.weight.normal_()  # once the branch learns, it takes part
        assert (fft(x) - plain(x)).abs().max() > 1e-4


@pytest.mark.parametrize("preset,size", [("paper", (22, 31)), ("cpu", (45, 70)), ("cpu_quarter", (45, 70)),
                                         ("cpu_quarter_deep", (45, 70)), ("cpu_gated", (45, 70))])
def test_presets_script_and_match_eager(preset, size):
    torch.manual_seed(0)
    model = atrous_deblur(preset).eval()
    scripted = torch.jit.script(model)
    x = torch.rand(1, 3, *size)
    with torch.inference_mode():
        eager, script = model(x), scripted(x)
    assert script.shape == x.shape
    assert (eager - script).abs().max().item() < 1e-5
    assert scripted.receptive_field == model.receptive_field


@pytest.mark.parametrize("preset", ["cpu", "cpu_quarter", "cpu_gated"])
@pytest.mark.parametrize("size", [(1, 1), (3, 2), (9, 7), (33, 47), (64, 65), (100, 37)])
def test_any_size_gives_same_size(size, preset):
    model = atrous_deblur(preset).eval()
    x = torch.rand(2, 3, *size)
    with torch.inference_mode():
        y = model(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("mids,gated", [((), False), ((6,), False), ((6,), True)])
def test_receptive_field_bounds_the_influence_of_one_pixel(mids, gated):
    """Changing one pixel must leave every output farther than the receptive radius unchanged."""
    torch.manual_seed(0)
    model = AtrousDeblur(blocks=2, filters=4, trunk=8, stem=4, mids=mids, gated=gated).eval()
    radius = (model.receptive_field + 1) // 2
    x = torch.rand(1, 3, 160, 160)
    bumped = x.clone()
    bumped[..., 80, 80] += 0.5
    with torch.inference_mode():
        diff = (model(bumped) - model(x)).abs().amax(dim=(0, 1))
    ys, xs = torch.nonzero(diff > 1e-6, as_tuple=True)
    assert len(ys) > 0
    assert (ys - 80).abs().max() <= radius and (xs - 80).abs().max() <= radius


@pytest.mark.parametrize("mids", [(), (6,)])
def test_tiled_inference_has_no_seams(mids):
    """Tiles with the handler's overlap (twice the receptive radius) reproduce whole-image inference, at stride 2 or 4."""
    torch.manual_seed(0)
    model = AtrousDeblur(blocks=2, filters=4, trunk=8, stem=4, mids=mids).eval()
    stride = model.stride
    overlap = -(-(model.receptive_field + 1) // stride) * stride  # 2 * radius, rounded up to the stride
    x = torch.rand(1, 3, 330, 301)
    with torch.inference_mode():
        whole = run_padded(model, x, stride, 1)
        tiled = run_tiled(model, x, tile=96, overlap=overlap, multiple=stride, scale=1)
    assert tiled.shape == whole.shape == x.shape
    assert (tiled - whole).abs().max().item() < 1e-4


@pytest.mark.parametrize("k", range(8))
def test_ensemble_transforms_invert(k):
    x = torch.rand(1, 3, 6, 10)
    assert torch.equal(undo_dihedral(serve_dihedral(x, k), k), x)


# ---- blur synthesis -------------------------------------------------------------------

def test_kernels_are_normalised_centred_and_sized():
    rng = np.random.default_rng(0)
    cfg = BlurConfig()
    coords = np.arange(cfg.max_kernel)
    for _ in range(200):
        k = random_kernel(rng, cfg)
        assert k.shape == (cfg.max_kernel, cfg.max_kernel)
        assert k.min() >= 0 and abs(k.sum() - 1) < 1e-9
        centre = (cfg.max_kernel - 1) / 2
        # Centre of mass at the centre: blurring must not shift the image against its target.
        assert abs((k.sum(0) * coords).sum() - centre) < 1e-6 and abs((k.sum(1) * coords).sum() - centre) < 1e-6


def _minor_axis_ratio(k: np.ndarray) -> float:
    """Smaller / larger eigenvalue of the kernel's second moments: ~0 for a straight line."""
    ys, xs = np.mgrid[: k.shape[0], : k.shape[1]]
    dx, dy = xs - (k * xs).sum(), ys - (k * ys).sum()
    cov = np.array([[(k * dx * dx).sum(), (k * dx * dy).sum()], [(k * dx * dy).sum(), (k * dy * dy).sum()]])
    low, high = np.linalg.eigvalsh(cov)
    return low / high


def test_shake_kernels_are_not_all_straight_lines():
    rng = np.random.default_rng(1)
    line = rasterise(np.stack([np.linspace(0, 10, 64), np.linspace(0, 4, 64)], 1), 17)
    assert _minor_axis_ratio(line) < 0.02  # the measure does call a line a line
    ratios = [_minor_axis_ratio(rasterise(shake_trajectory(rng), 17)) for _ in range(100)]
    assert np.mean(np.array(ratios) > 0.05) > 0.5


def test_defocus_disc_is_round_and_normalised():
    disc = defocus_disc(9)
    assert abs(disc.sum() - 1) < 1e-9
    assert np.allclose(disc, disc.T) and np.allclose(disc, disc[::-1])
    assert disc[4, 4] > 0 and disc[0, 0] == 0


def test_blur_is_a_true_convolution():
    """A delta one pixel right of centre moves the image one pixel right; the target is cropped to match."""
    img = torch.rand(1, 3, 20, 24)
    kernel = torch.zeros(1, 5, 5)
    kernel[0, 2, 3] = 1
    blurred, target = blur_valid(img, kernel)
    assert blurred.shape == target.shape == (1, 3, 16, 20)
    assert torch.allclose(blurred, img[..., 2:18, 1:21])
    assert torch.equal(target, img[..., 2:18, 2:22])


def test_degrade_is_deterministic_8bit_and_blurry():
    clean = torch.from_numpy(np.array(photo(96, 96, seed=3))).permute(2, 0, 1)[None].float().div(255).repeat(4, 1, 1, 1)
    a, target = degrade(clean, np.random.default_rng(5))
    b, _ = degrade(clean, np.random.default_rng(5))
    assert torch.equal(a, b)
    side = 96 - BlurConfig().max_kernel + 1
    assert a.shape == target.shape == (4, 3, side, side)
    assert a.min() >= 0 and a.max() <= 1 and torch.equal(a, (a * 255).round() / 255)
    # Blur removes high frequencies: neighbouring pixels differ less than in the sharp target.
    grad = lambda t: (t[..., 1:] - t[..., :-1]).abs().mean()  # noqa: E731
    assert grad(a) < grad(target)


def test_srgb_curve_round_trips():
    x = torch.linspace(0, 1, 1001)
    assert (linear_to_srgb(srgb_to_linear(x)) - x).abs().max() < 1e-5
    assert abs(srgb_to_linear(torch.tensor(0.5)).item() - 0.214) < 1e-3  # the standard curve's mid-grey


@pytest.mark.parametrize("linear_light", [True, False])
def test_blur_happens_in_linear_light(linear_light):
    """Random black/white pixels smeared together average half the LIGHT: sRGB ~0.7, not the 0.5 of sRGB averaging."""
    gen = torch.Generator().manual_seed(0)
    clean = (torch.rand(4, 1, 96, 96, generator=gen) > 0.5).float().repeat(1, 3, 1, 1)
    cfg = BlurConfig(noise_sigma=(0.0, 0.0), jpeg_prob=0.0, linear_light=linear_light)
    blurred, _ = degrade(clean, np.random.default_rng(1), cfg)
    mean = blurred.mean().item()
    assert mean > 0.65 if linear_light else abs(mean - 0.5) < 0.03


# ---- paired (GoPro layout) training data ---------------------------------------------------

def test_paired_folders_give_aligned_real_pairs(tmp_path):
    """Each 'blur' file is its sharp partner inverted, so an aligned, equally flipped pair sums to 1."""
    for seq in ("seq1", "seq2"):
        for kind in ("sharp", "blur"):
            (tmp_path / seq / kind).mkdir(parents=True)
        for i in range(3):
            sharp = photo(80, 72, seed=10 * len(seq) + i)
            sharp.save(tmp_path / seq / "sharp" / f"{i:06d}.png")
            Image.eval(sharp, lambda v: 255 - v).save(tmp_path / seq / "blur" / f"{i:06d}.png")
    args = parse_args(["deblur", "--data", str(tmp_path), "--pairs", "--patch", "48", "--val-patches", "2"])
    task = DeblurTask(args)
    blurry, sharp = task.make_batch(task.sampler.sample(6))
    assert blurry.shape == sharp.shape == (6, 3, 48, 48)
    assert torch.allclose(blurry + sharp, torch.ones_like(sharp), atol=1e-6)
