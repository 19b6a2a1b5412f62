"""Old-print damage for colorize (training/degradations/old_print.py): what the automatic network learns prints from."""
from __future__ import annotations

import numpy as np
import torch

from tests.support import photo
from training.colour import rgb_to_lab
from training.degradations.old_print import PrintConfig, old_print_one, old_prints


def photos(n: int, size: int = 64) -> torch.Tensor:
    return torch.stack([torch.from_numpy(np.asarray(photo(size, size, seed=i), np.float32) / 255).permute(2, 0, 1)
                        for i in range(n)])


def test_same_seed_same_prints_and_only_the_share_is_damaged():
    x = photos(12)
    a, chosen = old_prints(x, np.random.default_rng(3), share=0.5)
    b, again = old_prints(x, np.random.default_rng(3), share=0.5)
    assert torch.equal(a, b) and torch.equal(chosen, again)
    assert 0 < int(chosen.sum()) < 12
    assert torch.equal(a[~chosen], x[~chosen])
    assert not torch.equal(a[chosen], x[chosen])


def test_a_print_has_no_colour_of_its_own_beyond_a_tone_and_is_faded():
    """Untoned prints are grey (R = G = B up to JPEG); toned ones stay near grey; blacks are lifted on average."""
    x = photos(24)
    rng = np.random.default_rng(0)
    untoned = PrintConfig(tone_prob=0.0, jpeg_prob=0.0)
    for i in range(4):
        scan = old_print_one(x[i:i + 1], rng, untoned)
        assert (scan.amax(1) - scan.amin(1)).max() == 0
    toned = PrintConfig(tone_prob=1.0)
    chroma = [float(rgb_to_lab(old_print_one(x[i:i + 1], rng, toned))[:, 1:].norm(dim=1).mean()) for i in range(8)]
    truth = [float(rgb_to_lab(x[i:i + 1])[:, 1:].norm(dim=1).mean()) for i in range(8)]
    assert all(0 < c < 15 for c in chroma) and np.mean(chroma) < np.mean(truth)
    scans = torch.cat([old_print_one(x[i:i + 1], rng) for i in range(24)])
    lows = scans.mean(1).flatten(1).quantile(0.01, dim=1)
    assert float(lows.mean()) > float(x.mean(1).flatten(1).quantile(0.01, dim=1).mean())


def test_the_task_takes_l_from_prints_on_its_share_and_keeps_the_true_ab():
    from tests.test_colorize_model import task_args
    from training.tasks.colorize import ColorizeTask

    task = ColorizeTask(task_args(p_automatic=1.0, print_share=1.0))
    clean = task.sampler.sample(4)
    l, *_, true_ab, rgb = task.make_batch(clean)
    lab = rgb_to_lab(rgb)
    assert torch.allclose(true_ab, lab[:, 1:])
    assert (l - lab[:, :1]).abs().flatten(1).mean(1).min() > 0.5  # every sample's L is the print's, not the photo's
    state = task.rng_state()
    first = task.make_batch(clean)[0]
    task.load_rng_state(state)
    assert torch.equal(task.make_batch(clean)[0], first)  # a resumed run draws the same prints
