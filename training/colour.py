"""sRGB <-> CIE Lab (D65) in torch, the L-preserving recombination of L with predicted ab, and
the quantised ab space of colorization as classification (Zhang, Isola and Efros, "Colorful
Image Colorization", ECCV 2016): in-gamut ab bins, soft-encoded targets, the class-rebalancing
prior and the annealed-mean readout.

The functions the exported colorizer runs are TorchScript-compatible so it carries its own colour
maths (the serving handler never converts colours). Images are [..., 3, H, W]: RGB in [0, 1],
Lab with L in [0, 100] and a, b roughly in [-110, 110].
"""
from __future__ import annotations

import torch

def _rgb_to_xyz(x: torch.Tensor) -> torch.Tensor:
    """Linear sRGB -> XYZ (D65), over the channel dim (-3)."""
    m = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                      [0.2126729, 0.7151522, 0.0721750],
                      [0.0193339, 0.1191920, 0.9503041]], dtype=x.dtype, device=x.device)
    return torch.einsum("ij,...jhw->...ihw", m, x)


def _xyz_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """The exact inverse of ``_rgb_to_xyz`` (computed in float64)."""
    m = torch.tensor([[3.2404548360214087, -1.5371388501025751, -0.49853154686848083],
                      [-0.9692663898756538, 1.876010928842491, 0.041556082346673524],
                      [0.055643419604213644, -0.20402585426769812, 1.0572251624579287]], dtype=x.dtype, device=x.device)
    return torch.einsum("ij,...jhw->...ihw", m, x)


def _white(x: torch.Tensor) -> torch.Tensor:
    """D65 white taken as the row sums of the matrix, so r = g = b maps to a = b = 0 exactly."""
    return torch.tensor([0.95047, 1.0000001, 1.08883], dtype=x.dtype, device=x.device)[:, None, None]


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= 0.04045, x / 12.92, ((x.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp_min(0.0031308) ** (1.0 / 2.4) - 0.055)


def _f(t: torch.Tensor) -> torch.Tensor:
    delta = 6.0 / 29.0
    return torch.where(t > delta ** 3, t.clamp_min(delta ** 3) ** (1.0 / 3.0), t / (3 * delta ** 2) + 4.0 / 29.0)


def _f_inv(t: torch.Tensor) -> torch.Tensor:
    delta = 6.0 / 29.0
    return torch.where(t > delta, t ** 3, 3 * delta ** 2 * (t - 4.0 / 29.0))


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    fx, fy, fz = _f(_rgb_to_xyz(srgb_to_linear(rgb)) / _white(rgb)).unbind(-3)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)


def lab_to_linear(lab: torch.Tensor) -> torch.Tensor:
    """Lab -> linear RGB, not clipped (out-of-gamut colours leave [0, 1])."""
    l, a, b = lab.unbind(-3)
    fy = (l + 16.0) / 116.0
    f = torch.stack([fy + a / 500.0, fy, fy - b / 200.0], dim=-3)
    return _xyz_to_rgb(_f_inv(f) * _white(lab))


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Lab -> sRGB, simply clipped (changes L for out-of-gamut colours; see ``recombine``)."""
    return linear_to_srgb(lab_to_linear(lab).clamp(0, 1))


def _in_gamut(lin: torch.Tensor, tol: float) -> torch.Tensor:
    return ((lin >= -tol) & (lin <= 1.0 + tol)).all(dim=-3, keepdim=True)


def _chroma_scale(lab: torch.Tensor, steps: int, tol: float) -> torch.Tensor:
    """Per pixel, the largest factor in [0, 1] (to 2^-steps) that brings ``lab``'s ab into the sRGB gamut."""
    lo = torch.zeros_like(lab[:1])
    hi = torch.ones_like(lab[:1])
    for _ in range(steps):
        mid = (lo + hi) / 2
        ok = _in_gamut(lab_to_linear(torch.cat([lab[:1], lab[1:] * mid], dim=0)), tol)
        lo = torch.where(ok, mid, lo)
        hi = torch.where(ok, hi, mid)
    return lo


def recombine(l: torch.Tensor, ab: torch.Tensor, steps: int = 10, tol: float = 1e-6) -> torch.Tensor:
    """sRGB image with exactly the lightness ``l`` [.., 1, H, W] and chroma as close to ``ab`` as fits.

    Clipping an out-of-gamut colour in RGB would change its lightness, so instead each
    out-of-gamut pixel's ab is scaled towards 0 (gray, always in gamut) by the largest factor
    that stays in gamut, found by bisection; hue is kept and L is untouched.
    """
    lab = torch.cat([l, ab], dim=-3)
    lin = lab_to_linear(lab)
    outside = ~_in_gamut(lin, tol)[..., 0, :, :]  # [..., H, W]
    if bool(outside.any()):
        # Bisect only those pixels, gathered as [3, B, 1] so the channel dim stays at -3.
        picked = lab.movedim(-3, -1)[outside].t().unsqueeze(-1)
        scale = _chroma_scale(picked, steps, tol)
        fixed = lab_to_linear(torch.cat([picked[:1], picked[1:] * scale], dim=0))
        lin = lin.movedim(-3, -1).clone()
        lin[outside] = fixed.squeeze(-1).t()
        lin = lin.movedim(-1, -3)
    return linear_to_srgb(lin.clamp(0, 1))


# ---- ab as classes (Zhang et al. 2016) ---------------------------------------------------
AB_GRID = 10.0  # ab bin size, as in the paper
AB_SIGMA = 5.0  # Gaussian width (ab units) of the soft encoding and of the prior's smoothing
ANNEALED_T = 0.38  # the paper's readout temperature
REBALANCE_LAMBDA = 0.5  # weight of the uniform distribution mixed into the prior


def ab_bins(grid: float = AB_GRID) -> torch.Tensor:
    """[Q, 2] centres (a, b) of the grid cells that some sRGB colour falls into (nearest centre).

    A cell counts when any of 5x5 points across it, at any of 101 lightnesses, is in gamut: 262
    cells for a grid of 10 (finer sampling finds no more; the paper's 313 were counted on ImageNet's
    pixels instead). Deterministic and ~0.1 s, so every model computes its own."""
    ticks = torch.arange(-11, 12, dtype=torch.float64) * grid
    centres = torch.cartesian_prod(ticks, ticks)  # [529, 2]: the grid covers |a|, |b| <= 115
    offsets = torch.cartesian_prod(*(torch.linspace(-grid / 2, grid / 2, 5, dtype=torch.float64),) * 2)
    points = (centres[:, None] + offsets[None]).reshape(-1, 2)  # [529 * 25, 2]
    l = torch.linspace(0, 100, 101, dtype=torch.float64)
    lab = torch.stack([l[None].expand(len(points), -1), points[:, :1].expand(-1, len(l)),
                       points[:, 1:].expand(-1, len(l))])  # [3, P, L]: an "image" of P x L pixels
    inside = _in_gamut(lab_to_linear(lab), 0.0)[0].any(-1).reshape(len(centres), -1).any(-1)
    return centres[inside].float()


def _sq_distances(ab: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """[P, Q] squared distances from every pixel of ``ab`` [N, 2, H, W] (pixels in N, H, W order)
    to every centre [Q, 2], as |p|^2 - 2 p.c + |c|^2: one matrix product, no [P, Q, 2] difference."""
    pixels = ab.float().permute(0, 2, 3, 1).reshape(-1, 2)
    c = centres.to(pixels)
    return (pixels.square().sum(1, keepdim=True) - 2 * pixels @ c.T + c.square().sum(1)).clamp_(min=0)


def soft_encode(ab: torch.Tensor, centres: torch.Tensor, neighbours: int = 5, sigma: float = AB_SIGMA) -> torch.Tensor:
    """[N, Q, H, W] target distributions: each pixel's ``neighbours`` nearest centres weighted by a
    Gaussian of their distance, summing to 1 (the paper's soft encoding). Computed with the bins
    last (a channels-last result), where top-k and scatter run along contiguous memory."""
    n, _, h, w = ab.shape
    d2, idx = _sq_distances(ab, centres).topk(neighbours, dim=1, largest=False)
    weights = torch.softmax(-d2 / (2 * sigma ** 2), dim=1)
    target = torch.zeros(d2.shape[0], len(centres), device=ab.device).scatter_(1, idx, weights)
    return target.reshape(n, h, w, -1).permute(0, 3, 1, 2)


def ab_histogram(ab: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """[Q] how many pixels of ``ab`` [N, 2, H, W] have each centre as their nearest."""
    nearest = _sq_distances(ab, centres).argmin(1)
    return torch.bincount(nearest, minlength=len(centres)).double()


def smoothed_prior(counts: torch.Tensor, centres: torch.Tensor, sigma: float = AB_SIGMA) -> torch.Tensor:
    """[Q] the empirical bin distribution smoothed by a Gaussian over ab, summing to 1."""
    d2 = ((centres[:, None].double() - centres[None].double()) ** 2).sum(-1)
    smooth = torch.exp(-d2 / (2 * sigma ** 2)) @ counts.double()
    return (smooth / smooth.sum()).float()


def rebalancing_weights(prior: torch.Tensor, lam: float = REBALANCE_LAMBDA) -> torch.Tensor:
    """[Q] class weights ``((1 - lam) prior + lam / Q)^-1``, scaled so their mean under ``prior`` is 1:
    rare (saturated) colours weigh more, so the loss stops rewarding the desaturated average."""
    weights = 1.0 / ((1 - lam) * prior + lam / prior.numel())
    return weights / (prior * weights).sum()


def annealed_mean(logits: torch.Tensor, centres: torch.Tensor, temperature: float = ANNEALED_T) -> torch.Tensor:
    """[N, 2, H, W] ab from class logits [N, Q, H, W]: the mean of the distribution sharpened to
    ``temperature`` (1 = the mean, -> 0 = the mode): vivid like the mode, smooth like the mean."""
    probs = torch.softmax(logits / temperature, dim=1)
    return torch.einsum("nqhw,qc->nchw", probs, centres.to(probs.dtype))
