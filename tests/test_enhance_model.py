"""enhance: FiLM² model (shapes, presets, FiLM conditioning, decoders, export) and glare synthesis."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from torchvision.models.resnet import Bottleneck, ResNet

from training.data import bundled_photo_paths, load_rgb, to_float
from training.degradations.glare import (add_glare, fft_blur, ghosts, glow, heavy_tail_psf, linear_to_srgb,
                                         srgb_to_linear, streaks, veil)
from training.metrics import psnr
from training.models.film2 import FiLM, FiLM2, PRESETS, film2

from tests.support import ROOT

WEIGHTS = ROOT / "archives" / "enhance" / "enhance.pt"


@pytest.fixture(scope="module")
def model() -> FiLM2:
    torch.manual_seed(0)
    net = film2("cpu").eval()
    # Non-zero condition output: the zero-initialised last layer would hide any FiLM bug.
    torch.nn.init.normal_(net.condition.mlp[-1].weight, std=0.05)
    return net


@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (1, 3, 17, 31), (2, 3, 33, 16), (1, 3, 64, 48)])
def test_any_size_in_same_size_out(model, shape):
    x = torch.rand(shape)
    with torch.no_grad():
        main, light = model.branches(x)
        out = model(x)
    assert out.shape == main.shape == light.shape == x.shape
    assert torch.isfinite(out).all()


def test_output_is_the_average_of_the_two_decoders(model):
    x = torch.rand(1, 3, 40, 24)
    with torch.no_grad():
        main, light = model.branches(x)
        assert torch.allclose(model(x), 0.5 * main + 0.5 * light, atol=1e-6)
        assert not torch.allclose(main, light, atol=1e-3)  # two different estimates


def test_light_decoder_only_removes_light(model):
    x = torch.rand(2, 3, 35, 29)
    with torch.no_grad():
        _, light = model.branches(x)
    assert (light <= x + 1e-6).all()


def test_film_identity_leaves_features_unchanged():
    x = torch.randn(2, 5, 7, 3)
    assert torch.equal(FiLM()(x, torch.ones(2, 5), torch.zeros(2, 5)), x)
    gamma, beta = torch.rand(2, 5), torch.randn(2, 5)
    expected = x * gamma[:, :, None, None] + beta[:, :, None, None]
    assert torch.allclose(FiLM()(x, gamma, beta), expected)


def test_condition_starts_as_identity_modulation():
    net = film2("cpu").eval()
    with torch.no_grad():
        feats = net.features(torch.rand(1, 3, 32, 32))
        gammas, betas = net.condition(feats[-1])
    assert [g.shape[1] for g in gammas] == net.encoder.channels
    assert all(torch.equal(g, torch.ones_like(g)) for g in gammas)
    assert all(torch.equal(b, torch.zeros_like(b)) for b in betas)


def test_changing_gamma_or_beta_changes_the_output(model):
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        feats = model.features(x)
        gammas, betas = model.condition(feats[-1])
        base = model.decode(x, model.modulate(feats, gammas, betas))[0]
        for scale in range(len(feats)):
            g2 = [g * 1.5 if i == scale else g for i, g in enumerate(gammas)]
            b2 = [b + 0.5 if i == scale else b for i, b in enumerate(betas)]
            # Deep scales reach the output through long paths of random weights: small but real changes.
            assert (model.decode(x, model.modulate(feats, g2, betas))[0] - base).abs().max() > 1e-6
            assert (model.decode(x, model.modulate(feats, gammas, b2))[0] - base).abs().max() > 1e-6


def test_condition_depends_on_the_whole_image(model):
    """Global pooling: light added far from a region changes the modulation applied everywhere."""
    x = torch.rand(1, 3, 64, 64) * 0.3
    lit = x.clone()
    lit[..., 48:, 48:] += 0.7
    with torch.no_grad():
        g1, _ = model.condition(model.features(x)[-1])
        g2, _ = model.condition(model.features(lit)[-1])
    assert not torch.allclose(g1[0], g2[0], atol=1e-5)


def test_scripted_matches_eager_both_outputs(model):
    scripted = torch.jit.script(model)
    x = torch.rand(2, 3, 45, 37)
    with torch.inference_mode():
        assert torch.allclose(scripted(x), model(x), atol=1e-5)
        for a, b in zip(scripted.branches(x), model.branches(x)):
            assert torch.allclose(a, b, atol=1e-5)


def _torchvision_name(key: str) -> str:
    """Our encoder's parameter name -> the torchvision ResNet's."""
    for ours, theirs in (("stem.0.", "conv1."), ("stem.1.", "bn1.")):
        if key.startswith(ours):
            return theirs + key[len(ours):]
    _, index, rest = key.split(".", 2)  # stages.<i>.<rest>
    return f"layer{int(index) + 1}.{rest}"


def test_paper_preset_is_torchvision_resnext101_32x8d_and_runs():
    torch.manual_seed(0)
    net = film2("paper").eval()
    reference = {k: v.shape for k, v in torchvision.models.resnext101_32x8d(weights=None).state_dict().items()
                 if not k.startswith("fc.")}
    assert {_torchvision_name(k): v.shape for k, v in net.encoder.state_dict().items()} == reference
    assert net.stride == 32
    scripted = torch.jit.script(net)
    x = torch.rand(1, 3, 40, 56)
    with torch.inference_mode():
        out = scripted(x)
        assert out.shape == x.shape
        assert torch.allclose(out, net(x), atol=1e-4)


def test_local_encoder_weights_are_loaded(tmp_path: Path):
    cfg = PRESETS["cpu"]
    torch.manual_seed(1)
    imagenet_like = ResNet(Bottleneck, list(cfg["layers"]), groups=cfg["groups"], width_per_group=cfg["width_per_group"])
    path = tmp_path / "encoder.pth"
    torch.save(imagenet_like.state_dict(), path)
    net = film2("cpu", encoder_weights=path)
    assert torch.equal(net.encoder.stem[0].weight, imagenet_like.conv1.weight)
    assert torch.equal(net.encoder.stages[2][0].conv2.weight, imagenet_like.layer3[0].conv2.weight)


# ---- glare synthesis ---------------------------------------------------------------------


def test_srgb_linear_round_trip():
    x = torch.linspace(0, 1, 1001)
    assert torch.allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-5)
    assert srgb_to_linear(torch.tensor(0.5)).item() == pytest.approx(0.214, abs=1e-3)


def test_psf_is_normalised_and_centred():
    psf = heavy_tail_psf(31, 41, torch.tensor([2.0, 8.0]), torch.tensor([1.2, 1.6]))
    assert torch.allclose(psf.sum((-2, -1)), torch.ones(2, 1))
    assert psf[0, 0].argmax().item() == 15 * 41 + 20
    assert psf[1, 0, 15, 30] > psf[0, 0, 15, 30]  # a wider core spreads light further


def test_fft_blur_is_linear_convolution_not_circular():
    img = torch.zeros(1, 1, 20, 20)
    img[..., 10, 10] = 1
    psf = heavy_tail_psf(40, 40, torch.tensor([1.0]), torch.tensor([1.5]))
    out = fft_blur(img, psf)
    assert torch.allclose(out[0, 0], psf[0, 0, 10:30, 10:30], atol=1e-6)
    edge = torch.zeros(1, 1, 20, 20)
    edge[..., 0, 0] = 1  # light at one corner must not wrap round to the opposite one
    assert fft_blur(edge, psf)[0, 0, -1, -1] < 1e-3 * fft_blur(edge, psf)[0, 0, 0, 0]


def _scene() -> torch.Tensor:
    """Dark photo-like scene with one bright light source at (12, 40)."""
    x = torch.full((1, 3, 64, 64), 0.15)
    x[..., 10:15, 38:43] = 1.0
    return x


def test_glow_surrounds_the_bright_region():
    lin = srgb_to_linear(_scene())
    halo = glow(lin, torch.Generator().manual_seed(0)).mean(1)[0]
    assert (halo >= 0).all()
    assert halo[12, 30] > halo[12, 5] > 0  # falls off with distance from the source
    assert halo[40, 40] < halo[20, 40]


def test_streaks_and_ghosts_come_from_the_light_source():
    lin = srgb_to_linear(_scene())
    gen = torch.Generator().manual_seed(0)
    cy, cx = torch.tensor([12.0]), torch.tensor([40.0])
    star = streaks(lin, cy, cx, gen).mean(1)[0]
    assert star.flatten().argmax().item() == 12 * 64 + 40
    assert (ghosts(lin, cy, cx, gen) >= 0).all() and ghosts(lin, cy, cx, gen).sum() > 0


def test_veil_lifts_the_blacks_and_lowers_contrast():
    x = torch.full((1, 3, 64, 64), 0.5)
    x[..., 50:, :10] = 0.0
    lin = srgb_to_linear(x)
    lifted = linear_to_srgb(lin + veil(lin, torch.Generator().manual_seed(0)))
    assert (lifted[..., 50:, :10] > 0.01).all()
    assert (lifted[..., 40, 40] - lifted[..., 60, 5] < x[..., 40, 40] - x[..., 60, 5]).all()


def test_add_glare_degrades_never_darkens_and_is_reproducible():
    clean = torch.rand(6, 3, 48, 40) * 0.6
    clean[:, :, 5:9, 5:9] = 1.0
    deg = add_glare(clean, torch.Generator().manual_seed(3))
    assert deg.shape == clean.shape and deg.min() >= 0 and deg.max() <= 1
    assert torch.equal(deg, torch.round(deg * 255) / 255)  # 8-bit, like an uploaded photo
    assert (deg >= clean - 0.5 / 255).all()  # stray light only adds
    assert all(psnr(deg[i], clean[i]) < 45 for i in range(6))  # every image is degraded
    assert torch.equal(deg, add_glare(clean, torch.Generator().manual_seed(3)))
    assert not torch.equal(deg, add_glare(clean, torch.Generator().manual_seed(4)))


@pytest.mark.skipif(not WEIGHTS.exists(), reason="archives/enhance/enhance.pt not trained yet")
@pytest.mark.parametrize("name", ["chelsea.png", "coffee.png"])
def test_shipped_weights_remove_synthetic_glare(name):
    """A real photo the model never saw (bundled with scikit-image), degraded four ways."""
    scripted = torch.jit.load(str(WEIGHTS))
    path = next(p for p in bundled_photo_paths() if p.name == name)
    clean = to_float(load_rgb(path, 256))[None].expand(4, -1, -1, -1)
    degraded = add_glare(clean, torch.Generator().manual_seed(0))
    with torch.inference_mode():
        out = scripted(degraded).clamp(0, 1)
    assert out.shape == degraded.shape
    assert psnr(out, clean) > psnr(degraded, clean) + 1.0
