"""deblur on real motion (issue 24): real 240 fps windows, camera-path synthesis, sharp exposures, the mix."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from training.degradations import camera_motion
from training.real_motion import RealMotionSampler, load_sequences, validation_crops, window_pair
from training.tasks.deblur import DeblurTask, parse_mix
from training.train import parse_args

from tests.support import photo


def detail(x: torch.Tensor) -> float:
    """Mean absolute difference of horizontal neighbours: what blur takes away."""
    return float((x[..., 1:] - x[..., :-1]).abs().mean())


def textured(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Photo-like crops with sharp detail (a random checkerboard over smooth colour)."""
    gen = torch.Generator().manual_seed(seed)
    checks = torch.rand(n, 1, size // 8, size // 8, generator=gen).repeat_interleave(8, -1).repeat_interleave(8, -2)
    base = torch.stack([torch.from_numpy(np.array(photo(size, size, seed + i))).permute(2, 0, 1) for i in range(n)])
    return (0.6 * base.float() / 255 + 0.4 * checks).clamp(0, 1)


def test_a_one_subframe_exposure_is_its_own_target():
    cfg = camera_motion.CameraConfig(light_prob=0.0)
    clean = textured(1, 64)[0]
    for seed in range(40):  # until the draw gives a sharp single sub-frame
        rng = np.random.default_rng(seed)
        state = rng.bit_generator.state
        if rng.random() < cfg.sharp_prob and int(rng.integers(1, 3)) == 1:
            rng.bit_generator.state = state
            blurred, target = camera_motion.expose(clean, clean, rng, cfg)
            assert torch.allclose(blurred, target, atol=1e-6)
            return
    pytest.fail("no single sub-frame exposure drawn in 40 seeds")


def test_camera_exposures_blur_vary_across_the_frame_and_keep_size():
    clean = textured(4, 96)
    blurred, target = camera_motion.degrade(clean, np.random.default_rng(3),
                                            camera_motion.CameraConfig(sharp_prob=0.0, margin=12))
    assert blurred.shape == target.shape == (4, 3, 72, 72)
    assert detail(blurred) < 0.8 * detail(target)
    assert torch.equal(blurred, (blurred * 255).round() / 255)  # 8-bit, as an upload


def test_a_rotating_camera_blurs_far_from_its_centre_more():
    """Sub-frames rotated about the top-left corner: pixels far from it travel further, so they blur more."""
    clean = textured(1, 128)[0]
    angles = np.deg2rad(6.0) * np.linspace(-0.5, 0.5, 9)
    mats = np.stack([np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]) for a in angles])
    frames = camera_motion._warp(clean, mats).mean(0)
    near, far = (slice(None), slice(8, 40), slice(8, 40)), (slice(None), slice(88, 120), slice(88, 120))
    assert detail(frames[far]) / detail(clean[far]) < detail(frames[near]) / detail(clean[near])


def test_lights_above_one_streak_brighter_than_their_clipped_value():
    """A lamp (white) pixel pushed above 1.0 before averaging leaves a brighter streak than a clipped one."""
    clean = torch.zeros(3, 64, 64)
    clean[:, 30:34, 30:34] = 1.0
    lit = replace(camera_motion.CameraConfig(), travel=(20.0, 20.0), light_prob=1.0, light_gain=(6.0, 6.0),
                  sharp_prob=0.0, object_prob=0)
    dim = replace(lit, light_prob=0.0)
    for seed in range(3):
        streak_lit, _ = camera_motion.expose(clean, clean, np.random.default_rng(seed), lit)
        streak_dim, _ = camera_motion.expose(clean, clean, np.random.default_rng(seed), dim)
        assert (streak_lit > 0.5).sum() > 2 * (streak_dim > 0.5).sum()  # a bright streak, not a grey smear
        assert streak_lit.max() <= 1.0  # clipped after the average, as a sensor saturates


def write_sequences(root: Path, names: list[str], frames: int = 5, size: tuple[int, int] = (80, 64)) -> None:
    """Frames of a bright square moving right by 2 px a frame over a dark background."""
    for name in names:
        (root / name).mkdir(parents=True)
        for f in range(frames):
            arr = np.full((size[1], size[0], 3), 30, np.uint8)
            arr[20:40, 10 + 2 * f:30 + 2 * f] = 220
            Image.fromarray(arr).save(root / name / f"{f}.webp", lossless=True)


def test_window_pairs_average_real_frames_in_linear_light(tmp_path):
    write_sequences(tmp_path, ["seq_01"])
    frames = load_sequences(tmp_path, ("seq_01",))[0]
    assert frames.shape == (5, 3, 64, 80)
    blurred, sharp = window_pair(frames, 1, start=2)
    assert torch.equal(blurred.mul(255).round(), frames[2].float())  # one frame: no blur
    blurred, sharp = window_pair(frames, 5)
    assert torch.equal(sharp, frames[2].float() / 255)  # the middle frame is the target
    linear, _ = window_pair(frames, 5)
    srgb, _ = window_pair(frames, 5, linear=False)
    edge = (slice(None), slice(20, 40), slice(10, 14))  # where the square passed for 1-2 of the frames
    assert linear[edge].mean() > srgb[edge].mean()  # light adds up: brighter than averaged code values


def test_the_mix_draws_real_camera_and_kernel_pairs_of_one_size(tmp_path):
    write_sequences(tmp_path / "motion", [f"seq_{i:02d}" for i in (1, 2, 11, 12, 13, 15)], frames=9,
                    size=(120, 100))
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(6):
        photo(120, 110, seed=i).save(photos / f"p{i}.png")
    args = parse_args(["deblur", "--data", str(photos), "--motion", str(tmp_path / "motion"), "--patch", "70",
                       "--kernel-max", "11", "--val-patches", "8", "--mix", "real=1,camera=1,kernel=1"])
    task = DeblurTask(args)
    assert task.val_batch[0].shape == (8, 3, 60, 60)  # dev-real crops: 2 per held-out sequence
    blurry, sharp = task.make_batch(task.sampler.sample(12))
    assert blurry.shape == sharp.shape == (12, 3, 60, 60)
    assert set(task.mix) == {"real", "camera", "kernel"}
    state = task.rng_state()
    again = task.make_batch(task.sampler.sample(4))
    task.load_rng_state(state)
    assert all(torch.equal(a, b) for a, b in zip(again, task.make_batch(task.sampler.sample(4))))


def test_mix_shares_are_checked():
    assert parse_mix("real=1,camera=3") == {"real": 0.25, "camera": 0.75}
    with pytest.raises(ValueError):
        parse_mix("real=1,gopro=1")


def test_validation_crops_tile_each_frame(tmp_path):
    write_sequences(tmp_path, ["seq_11"], frames=9)
    crops, targets = validation_crops(load_sequences(tmp_path, ("seq_11",)), 4, 32)
    assert crops.shape == targets.shape == (4, 3, 32, 32)
    assert not torch.equal(crops[0], crops[3])  # different places of the frame


def test_real_sampler_crops_are_aligned(tmp_path):
    write_sequences(tmp_path, ["seq_01"], frames=9)
    sampler = RealMotionSampler(load_sequences(tmp_path, ("seq_01",)), 24, seed=1)
    blurry, sharp = sampler.sample(5)
    assert blurry.shape == sharp.shape == (5, 3, 24, 24)
    # the sharp crop's bright pixels lie inside the blur's footprint: aligned, flipped alike
    assert ((sharp.mean(1) > 0.5) & (blurry.mean(1) < 0.2)).sum() == 0
