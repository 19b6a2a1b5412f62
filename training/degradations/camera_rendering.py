"""From a finished photo back to the flat camera rendering a retoucher starts from: one direction only.

A real retouch goes one way (MIT-Adobe FiveK: Bychkovsky et al., CVPR 2011, the camera's rendering ->
an expert's edit), while ``global_edits`` draws every edit in both directions, so a model trained on it
learns an ambiguous average (issue 27: hazy, flat answers next to the experts'). Measured on the 15
``fivek_dev`` pairs (``../shared/data``, input against expert C): the camera renderings' blacks sit at
0.05-0.18 where the experts' sit at 0.00-0.08 (1st luma percentile), their whites at 0.45-1.0 against
0.41-0.99, their mean luma is lower on 10 of 15 (by up to 0.26), their luma contrast (std) 0.5-1.0x and
their saturation 0.4-1.0x the experts', with white-balance shifts either way. So, per photo, each with its
own probability and a uniform strength (from nothing to the measured extremes):

- exposure down (up to 1.3 stops) or, less often and less, up (0.3);
- midtone contrast flattened (an inverse S-curve) and luma contrast lowered;
- saturation lowered;
- white balance and tint shifted either way (the only two-sided edit: casts go both ways);
- blacks lifted and whites dimmed (levels).

An ``identity_fraction`` of the photos is left as it is, so a finished photo comes back unchanged.
Tensors are [N, 3, H, W] in [0, 1]; one ``torch.Generator`` gives every draw.
"""
from __future__ import annotations

import torch

from training.degradations.global_edits import Generator, contrast, exposure, fade, quantise, s_curve, saturation, white_balance

EDIT_PROB = 0.7  # each edit's chance on a non-identity photo


def _uniform(n: int, low: float, high: float, gen: Generator, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, 1, 1, 1, generator=gen, device=device)


def _applies(n: int, gen: Generator, device) -> torch.Tensor:
    """Per photo: whether an edit applies (``EDIT_PROB``), [N, 1, 1, 1] bool."""
    return torch.rand(n, 1, 1, 1, generator=gen, device=device) < EDIT_PROB


def camera_rendering(finished: torch.Tensor, identity_fraction: float = 0.15, generator: Generator = None) -> torch.Tensor:
    """The flat camera rendering of each finished photo (module docstring), quantised to 8 bits."""
    x, n, dev, g = finished, finished.shape[0], finished.device, generator
    keep = torch.rand(n, 1, 1, 1, generator=g, device=dev) < identity_fraction
    darker = torch.rand(n, 1, 1, 1, generator=g, device=dev) < 0.8
    stops = torch.where(darker, -_uniform(n, 0.0, 1.3, g, dev), _uniform(n, 0.0, 0.3, g, dev))
    edits = (
        lambda t: exposure(t, stops),
        lambda t: s_curve(t, -_uniform(n, 0.0, 0.5, g, dev)),
        lambda t: contrast(t, _uniform(n, 0.6, 1.0, g, dev)),
        lambda t: saturation(t, _uniform(n, 0.4, 1.0, g, dev)),
        lambda t: white_balance(t, _uniform(n, -0.35, 0.35, g, dev), _uniform(n, -0.15, 0.15, g, dev)),
        lambda t: fade(t, _uniform(n, 0.0, 0.15, g, dev), _uniform(n, 0.0, 0.3, g, dev)),
    )
    for edit in edits:  # the camera's order: exposure, tone, colour, then the rendering's levels
        x = torch.where(_applies(n, g, dev), edit(x), x)
    return quantise(torch.where(keep, finished, x))
