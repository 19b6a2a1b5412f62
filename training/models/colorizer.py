"""Guided colorization in Lab space: a small U-Net predicts ab from L, user hints and a reference.

- Hints as in Zhang et al., "Real-Time User-Guided Image Colorization with Learned Deep
  Priors" (SIGGRAPH 2017) and iColoriT (Yun et al., WACV 2023): a sparse ab map plus a mask
  channel are extra inputs.
- Reference guidance: the reference's colour statistics (a soft ab histogram, ab means per
  lightness band, global ab mean/std) go through an MLP into FiLM scales/shifts of every
  decoder stage (Perez et al., "FiLM", AAAI 2018), so colours transfer even when the content
  differs. A per-pixel prior, the reference's mean ab at the pixel's lightness (luminance
  matching as in Welsh et al., "Transferring Color to Greyscale Images", SIGGRAPH 2002), is
  fed in as two more input channels with its confidence.
- Hint propagation priors, so that a few clicks recolour whole regions without a huge
  receptive field: the hints' mean ab per lightness band over the image, and the same
  restricted to nearby hints by a coarse bilateral grid (splat, blur, slice; Chen et al.,
  "Real-time Edge-Aware Image Processing with the Bilateral Grid", SIGGRAPH 2007).
- ``ColorizeService`` is what gets exported and served: RGB in, RGB out with the input's L
  kept exactly (``training.colour.recombine``); ab is predicted at a working resolution and
  upsampled (chroma is smooth), image-wise, patch-wise (overlapping tiles, less "context
  confusion" in busy scenes) or as the ensemble of both.
- Heads: ab by regression (trained with L1: safe, but the average of plausible colours is
  desaturated, brown), and/or a distribution over the in-gamut ab bins (Zhang, Isola and Efros,
  "Colorful Image Colorization", ECCV 2016: trained with class-rebalanced cross-entropy on
  soft-encoded targets, read out as the annealed mean at T = 0.38). With both, the served ab is
  ``mix`` x annealed mean + (1 - mix) x regression in automatic mode and ``guided_mix`` x annealed
  mean + (1 - guided_mix) x regression where hints or a reference guide the colour (they decide it
  there; the vivid mean is the remedy for the automatic mode's brown average). ``temperature``,
  ``mix`` and ``guided_mix`` are plain attributes, so a benchmark can try others on the exported module.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from training.colour import ANNEALED_T, ab_bins, annealed_mean, recombine, rgb_to_lab

L_SCALE, AB_SCALE = 100.0, 110.0  # Lab units -> the network's ~[-1, 1] ranges
L_BANDS, AB_BINS = 8, 8
DESCRIPTOR = AB_BINS * AB_BINS + 3 * L_BANDS + 4 + 1
GRID_CELL = 16  # working pixels per cell of the hints' bilateral grid
# L, hint ab (2), hint mask, then (ab, confidence) from the reference, from all hints and from nearby hints.
IN_CHANNELS = 4 + 3 * 3

HEADS = ("regression", "classes", "both")
READOUT = ("temperature", "mix", "guided_mix", "confidence")  # how the heads are read out: plain attributes, no weights
UPSAMPLING = ("edge_radius", "edge_eps")  # how the service brings ab to the photo's size: plain attributes too

PRESETS: dict[str, dict] = {
    "tiny": {"width": 16},  # ~0.33 M parameters, for tests and quick sanity runs
    "small": {"width": 24},  # the weights shipped before issue 14 (~0.71 M parameters)
    "base": {"width": 32},
    # Zhang et al. 2016 on the small network: ab bins alone, rebalanced, annealed mean at T = 0.38.
    "small-zhang2016": {"width": 24, "head": "classes"},
    # Both heads: automatic output half annealed mean (colour) and half regression (PSNR); the
    # regression alone where hints or a reference guide.
    "small-mixed": {"width": 24, "head": "both", "mix": 0.5, "guided_mix": 0.0},
}


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, 1, 1), nn.ReLU(inplace=True))


def _gauss(x: torch.Tensor, centres: torch.Tensor, sigma: float) -> torch.Tensor:
    return torch.exp(-0.5 * ((x - centres) / sigma) ** 2)


def _up_cat(y: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    return torch.cat([F.interpolate(y, size=skip.shape[-2:], mode="nearest"), skip], 1)


def _film(y: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    return y * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]


class Colorizer(nn.Module):
    """U-Net (4 downsamplings, the first at the input; any input size) with FiLM-modulated decoder stages.

    Inputs in Lab units: ``l`` [N, 1, H, W], ``hint_ab`` [N, 2, H, W] (0 where no hint),
    ``hint_mask`` [N, 1, H, W], ``ref_lab`` [N, 3, h, w], ``has_ref`` [N] (0 = no reference).
    Output: predicted ab [N, 2, H, W] in Lab units.
    """

    def __init__(self, width: int = 24, hidden: int = 64, head: str = "regression", temperature: float = ANNEALED_T,
                 mix: float = 1.0, guided_mix: float | None = None, confidence: float = 0.0,
                 class_prior: torch.Tensor | None = None) -> None:
        """``head``: one of HEADS. ``mix``: the annealed mean's share of the output with both heads;
        ``guided_mix``: the same where hints or a reference are given (default: ``mix``).
        ``confidence``: the class distribution's confidence (1 - its entropy / log Q) at and above which the
        annealed mean keeps its chroma; below it the chroma shrinks in proportion, so a pixel whose colour the
        network does not know (a flat distribution: a wall, a uniform) stays near grey instead of taking the
        sharpened mean's arbitrary vivid hue; 0 keeps the chroma everywhere.
        ``class_prior``: the smoothed empirical distribution of the training photos over the ab bins
        (``training.colour.smoothed_prior``), kept with the weights of a class head for the
        rebalanced loss; uniform if not given."""
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}")
        c = width
        # The first block already halves the resolution: chroma is smooth, and it quarters the cost.
        self.enc1, self.enc2, self.enc3 = _block(IN_CHANNELS, c, 2), _block(c, 2 * c, 2), _block(2 * c, 4 * c, 2)
        self.mid = _block(4 * c, 4 * c, 2)
        self.dec3, self.dec2, self.dec1 = _block(8 * c, 4 * c), _block(6 * c, 2 * c), _block(3 * c, c)
        # The regression head keeps its old name, so checkpoints from before the class head still load.
        self.head = nn.Conv2d(c, 2, 3, 1, 1) if head != "classes" else None
        centres = ab_bins()
        self.classes = nn.Conv2d(c, len(centres), 1) if head != "regression" else None  # 1x1: the cheap choice
        self.register_buffer("ab_centres", centres, persistent=False)  # [Q, 2] in Lab units, from code
        if self.classes is not None:  # (a regression model's state stays as before the class head)
            if class_prior is None:
                class_prior = torch.full((len(centres),), 1.0 / len(centres))
            if class_prior.shape != (len(centres),):
                raise ValueError(f"class_prior must have one value per ab bin ({len(centres)})")
            self.register_buffer("class_prior", class_prior.float())
        self.temperature = temperature
        self.confidence = confidence
        self.mix = mix if head == "both" else float(head == "classes")
        self.guided_mix = (mix if guided_mix is None else guided_mix) if head == "both" else self.mix
        self.film_sizes = [4 * c, 2 * c, c]
        self.film = nn.Sequential(nn.Linear(DESCRIPTOR, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, 2 * sum(self.film_sizes)))
        nn.init.zeros_(self.film[-1].weight)  # start as identity modulation
        nn.init.zeros_(self.film[-1].bias)
        self.l_scale, self.ab_scale, self.grid_cell = L_SCALE, AB_SCALE, GRID_CELL
        self.register_buffer("band_centres", torch.linspace(0, 1, L_BANDS), persistent=False)
        self.register_buffer("bin_centres", torch.linspace(-0.7, 0.7, AB_BINS), persistent=False)

    def band_sums(self, l: torch.Tensor, ab: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """[N, K, 3]: per lightness band, the weighted sum of ab and the weight, over pixels [N, C, P]."""
        bands = _gauss(l / self.l_scale, self.band_centres[None, :, None], 0.1) * weight  # [N, K, P]
        count = weight.sum(-1, keepdim=True).clamp_min(1.0)
        return torch.cat([torch.einsum("nkp,ncp->nkc", bands, ab), bands.sum(-1, keepdim=True)], -1) / count

    def reference_stats(self, ref_lab: torch.Tensor, has_ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-band [sum ab, weight] [N, K, 3], FiLM descriptor [N, D]); all zero without a reference."""
        n = ref_lab.shape[0]
        l = ref_lab[:, :1].reshape(n, 1, -1)
        ab = ref_lab[:, 1:].reshape(n, 2, -1) / self.ab_scale
        band_sum = self.band_sums(l, ab, torch.ones_like(l))
        band_mean = band_sum[..., :2] / (band_sum[..., 2:] + 1e-3)
        wa = _gauss(ab[:, :1], self.bin_centres[None, :, None], 0.1)  # [N, B, P]
        wb = _gauss(ab[:, 1:], self.bin_centres[None, :, None], 0.1)
        joint = wa[:, :, None] * wb[:, None, :]  # [N, B, B, P]
        hist = (joint / (joint.sum((1, 2), keepdim=True) + 1e-6)).mean(-1).reshape(n, -1)
        spread = ab.std(-1, unbiased=False)  # biased: a 1-pixel reference must not give NaN
        desc = torch.cat([hist * 4.0, band_mean.reshape(n, -1), band_sum[..., 2], ab.mean(-1), spread,
                          torch.ones(n, 1, dtype=ab.dtype, device=ab.device)], 1)
        has = has_ref.to(ab.dtype)
        return band_sum * has[:, None, None], desc * has[:, None]

    def prior(self, l: torch.Tensor, band_sum: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W]: the mean ab (normalised) of ``band_sum`` at each pixel's lightness, and its confidence."""
        bands = _gauss(l / self.l_scale, self.band_centres[None, :, None, None], 0.1)  # [N, K, H, W]
        mixed = torch.einsum("nkhw,nkc->nchw", bands, band_sum)
        return torch.cat([mixed[:, :2] / (mixed[:, 2:] + 1e-3), mixed[:, 2:]], 1)

    def local_prior(self, l: torch.Tensor, hint_ab: torch.Tensor, hint_mask: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W]: mean ab of the hints near each pixel in space and lightness, and its confidence.
        H and W must divide by GRID_CELL."""
        n, _, h, w = l.shape
        bands = _gauss(l / self.l_scale, self.band_centres[None, :, None, None], 0.1)  # [N, K, H, W]
        weighted = bands * hint_mask
        splat = F.avg_pool2d(torch.cat([weighted * hint_ab[:, :1], weighted * hint_ab[:, 1:], weighted], 1), self.grid_cell)
        for _ in range(2):  # two 5x5 box blurs: each hint reaches ~5 cells away
            splat = F.avg_pool2d(splat, 5, 1, 2, count_include_pad=False)
        grid = F.interpolate(splat, size=(h, w), mode="bilinear", align_corners=False).reshape(n, 3, -1, h, w)
        mixed = (grid * bands[:, None]).sum(2)
        return torch.cat([mixed[:, :2] / (mixed[:, 2:] + 1e-5), mixed[:, 2:] / (mixed[:, 2:] + 1e-3)], 1)

    def decode(self, l: torch.Tensor, hint_ab: torch.Tensor, hint_mask: torch.Tensor,
               band_sum: torch.Tensor, desc: torch.Tensor) -> torch.Tensor:
        """The last decoder stage's features, at half the input size padded to GRID_CELL."""
        n, _, h, w = l.shape
        pad = (0, -w % self.grid_cell, 0, -h % self.grid_cell)
        l = F.pad(l, pad, mode="replicate")
        hint_ab = F.pad(hint_ab / self.ab_scale * hint_mask, pad)  # hints are not replicated into the padding
        hint_mask = F.pad(hint_mask, pad)
        hint_sum = self.band_sums(l.reshape(n, 1, -1), hint_ab.reshape(n, 2, -1), hint_mask.reshape(n, 1, -1))
        x = torch.cat([l / self.l_scale, hint_ab, hint_mask, self.prior(l, band_sum), self.prior(l, hint_sum),
                       self.local_prior(l, hint_ab, hint_mask)], 1)
        g3, g2, g1, b3, b2, b1 = self.film(desc).split(self.film_sizes + self.film_sizes, dim=1)
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        y = _film(self.dec3(_up_cat(self.mid(e3), e3)), g3, b3)
        y = _film(self.dec2(_up_cat(y, e2)), g2, b2)
        return _film(self.dec1(_up_cat(y, e1)), g1, b1)

    def heads(self, y: torch.Tensor) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """(regression ab normalised by AB_SCALE [N, 2, ...], class logits [N, Q, ...]); None without that head."""
        regression: Optional[torch.Tensor] = None
        logits: Optional[torch.Tensor] = None
        if self.head is not None:
            regression = self.head(y)
        if self.classes is not None:
            logits = self.classes(y)
        return regression, logits

    def readout(self, y: torch.Tensor, guided: torch.Tensor) -> torch.Tensor:
        """Normalised ab from decoder features: regression, annealed mean, or their mix (``mix``, or
        ``guided_mix`` for the samples where ``guided`` [N] is true)."""
        regression, logits = self.heads(y)
        if logits is None:
            assert regression is not None
            return regression
        colourful = annealed_mean(logits, self.ab_centres, self.temperature) / self.ab_scale
        if self.confidence > 0:
            colourful = colourful * (class_confidence(logits) / self.confidence).clamp(max=1.0)
        if regression is None:
            return colourful
        share = (self.mix + (self.guided_mix - self.mix) * guided.to(y.dtype))[:, None, None, None]
        return share * colourful + (1.0 - share) * regression

    def predict(self, l: torch.Tensor, hint_ab: torch.Tensor, hint_mask: torch.Tensor,
                band_sum: torch.Tensor, desc: torch.Tensor, guided: torch.Tensor) -> torch.Tensor:
        """ab [N, 2, H, W] in Lab units for lightness ``l`` [N, 1, H, W] and the guidance; ``guided`` [N]
        (from ``is_guided`` over the whole image, so every tile of a photo is read out alike)."""
        h, w = l.shape[-2], l.shape[-1]
        y = self.decode(l, hint_ab, hint_mask, band_sum, desc)
        ab = F.interpolate(self.readout(y, guided), scale_factor=2.0, mode="bilinear", align_corners=False)
        return ab[..., :h, :w] * self.ab_scale

    def forward(self, l: torch.Tensor, hint_ab: torch.Tensor, hint_mask: torch.Tensor,
                ref_lab: torch.Tensor, has_ref: torch.Tensor) -> torch.Tensor:
        band_sum, desc = self.reference_stats(ref_lab, has_ref)
        return self.predict(l, hint_ab, hint_mask, band_sum, desc, is_guided(hint_mask, has_ref))

    def training_outputs(self, l: torch.Tensor, hint_ab: torch.Tensor, hint_mask: torch.Tensor, ref_lab: torch.Tensor,
                         has_ref: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """What the losses compare: (regression ab [N, 2, H, W] in Lab units, class logits
        [N, Q, ceil(H/2), ceil(W/2)]), each None without its head."""
        h, w = l.shape[-2:]
        band_sum, desc = self.reference_stats(ref_lab, has_ref)
        regression, logits = self.heads(self.decode(l, hint_ab, hint_mask, band_sum, desc))
        if regression is not None:
            regression = F.interpolate(regression, scale_factor=2.0, mode="bilinear", align_corners=False)
            regression = regression[..., :h, :w] * self.ab_scale
        if logits is not None:
            logits = logits[..., :(h + 1) // 2, :(w + 1) // 2]
        return regression, logits


def class_confidence(logits: torch.Tensor) -> torch.Tensor:
    """[N, 1, H, W] in [0, 1]: 1 - the normalised entropy of the class distribution (1: one bin, 0: uniform)."""
    log_p = F.log_softmax(logits.float(), 1)
    entropy = -(log_p.exp() * log_p).sum(1, keepdim=True)
    return (1.0 - entropy / math.log(logits.shape[1])).to(logits.dtype)


def is_guided(hint_mask: torch.Tensor, has_ref: torch.Tensor) -> torch.Tensor:
    """[N] bool: the samples with at least one hint or a reference."""
    return (hint_mask.flatten(1).amax(1) > 0) | (has_ref > 0)


def _resize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    if x.shape[-2] == h and x.shape[-1] == w:
        return x
    return F.interpolate(x, size=(h, w), mode="area")


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over a (2 radius + 1)^2 box, over the pixels inside the image at the border."""
    return F.avg_pool2d(x, 2 * radius + 1, 1, radius, count_include_pad=False)


def _ramp(length: int, overlap: int, device: torch.device) -> torch.Tensor:
    """Tile blending weights: rise over ``overlap`` pixels at both ends, never zero."""
    pos = torch.arange(length, device=device, dtype=torch.float32)
    return torch.minimum(torch.minimum(pos + 1, length - pos), torch.full_like(pos, float(overlap))) / overlap


def _starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


class ColorizeService(nn.Module):
    """The served colorizer: RGB photo + guidance in, RGB out with the photo's L kept exactly.

    ``image`` [N, 3, H, W] in [0, 1] (colour is discarded, only L is used); ``hint_rgb``
    [N, 3, H, W] the hint colours, read where ``hint_mask`` [N, 1, H, W] is 1 (one pixel per
    hint is enough: hints are widened at the working resolution); ``reference`` [N, 3, h, w]
    in [0, 1], used where ``has_reference`` [N] is 1; ``mode`` is "image", "patch" or "ensemble".

    ``automatic``: a second network for the photos with neither hints nor a reference. Vivid automatic
    colour and faithful guidance pull one small network apart (issue 14), so each can have its own;
    ``net`` then serves guided photos only. Without it, ``net`` serves both.
    """

    def __init__(self, net: Colorizer, work_side: int = 256, tile: int = 128, overlap: int = 32,
                 ref_side: int = 128, automatic: Colorizer | None = None, edge_radius: int = 0,
                 edge_eps: float = 1e-3) -> None:
        """``edge_radius`` > 0: ab goes from the working size to the photo's with a guided filter on L (its
        box radius in working pixels, ``edge_eps`` its regulariser on L in [0, 1]) instead of bilinearly, so
        colour edges follow the photo's edges; a plain attribute, like the readout's."""
        super().__init__()
        self.net = net
        self.split = automatic is not None
        self.automatic = automatic if automatic is not None else net  # TorchScript wants a module either way
        self.work_side, self.tile, self.overlap, self.ref_side = work_side, tile, overlap, ref_side
        self.edge_radius, self.edge_eps = edge_radius, edge_eps
        self.band_rows = 256

    def _work_size(self, h: int, w: int, side: int) -> tuple[int, int]:
        scale = min(1.0, side / float(max(h, w)))
        return max(1, int(round(h * scale))), max(1, int(round(w * scale)))

    def _hints(self, hint_rgb: torch.Tensor, hint_mask: torch.Tensor, h: int,
               w: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Hints moved to the working size (the mean colour of the hints falling in a cell), then
        widened to 3x3 cells, like the patch hints seen in training."""
        mask = (hint_mask > 0).to(hint_rgb.dtype)
        cover = _resize(mask, h, w)
        hit = (cover > 0).to(cover.dtype)
        ab = rgb_to_lab(_resize(hint_rgb * mask, h, w) / cover.clamp_min(1e-8))[:, 1:] * hit
        wide = F.avg_pool2d(hit, 3, 1, 1)
        ab_wide = F.avg_pool2d(ab, 3, 1, 1) / wide.clamp_min(1e-8)
        return torch.where(hit > 0, ab, ab_wide), (wide > 0).to(ab.dtype)

    def _predict(self, l: torch.Tensor, hint_ab: torch.Tensor, hint_mask: torch.Tensor,
                 band_sum: torch.Tensor, desc: torch.Tensor, guided: torch.Tensor) -> torch.Tensor:
        """``net``'s answer for guided photos, ``automatic``'s for the others (each runs only if needed)."""
        if not self.split or bool(guided.all()):
            return self.net.predict(l, hint_ab, hint_mask, band_sum, desc, guided)
        automatic = self.automatic.predict(l, hint_ab, hint_mask, band_sum, desc, guided)
        if not bool(guided.any()):
            return automatic
        return torch.where(guided[:, None, None, None],
                           self.net.predict(l, hint_ab, hint_mask, band_sum, desc, guided), automatic)

    def _patchwise(self, l: torch.Tensor, hint_ab: torch.Tensor, hint_mask: torch.Tensor,
                   band_sum: torch.Tensor, desc: torch.Tensor, guided: torch.Tensor) -> torch.Tensor:
        h, w = l.shape[-2], l.shape[-1]
        out = torch.zeros(l.shape[0], 2, h, w, dtype=l.dtype, device=l.device)
        total = torch.zeros(1, 1, h, w, dtype=l.dtype, device=l.device)
        th, tw = min(self.tile, h), min(self.tile, w)
        weight = _ramp(th, self.overlap, l.device)[:, None] * _ramp(tw, self.overlap, l.device)[None, :]
        stride = self.tile - self.overlap
        for y in _starts(h, self.tile, stride):
            for x in _starts(w, self.tile, stride):
                ab = self._predict(l[..., y:y + th, x:x + tw], hint_ab[..., y:y + th, x:x + tw],
                                   hint_mask[..., y:y + th, x:x + tw], band_sum, desc, guided)
                out[..., y:y + th, x:x + tw] += ab * weight
                total[..., y:y + th, x:x + tw] += weight
        return out / total

    def forward(self, image: torch.Tensor, hint_rgb: torch.Tensor, hint_mask: torch.Tensor,
                reference: torch.Tensor, has_reference: torch.Tensor, mode: str = "ensemble") -> torch.Tensor:
        if mode not in ["image", "patch", "ensemble"]:
            raise ValueError("mode must be image, patch or ensemble")
        l_full = rgb_to_lab(image)[:, :1]
        h, w = self._work_size(image.shape[-2], image.shape[-1], self.work_side)
        l = _resize(l_full, h, w)
        hint_ab, mask = self._hints(hint_rgb, hint_mask, h, w)
        rh, rw = self._work_size(reference.shape[-2], reference.shape[-1], self.ref_side)
        band_sum, desc = self.net.reference_stats(rgb_to_lab(_resize(reference, rh, rw)), has_reference)
        guided = is_guided(mask, has_reference)
        if mode == "image" or (h <= self.tile and w <= self.tile):  # one tile: patch and ensemble are image mode
            ab = self._predict(l, hint_ab, mask, band_sum, desc, guided)
        elif mode == "patch":
            ab = self._patchwise(l, hint_ab, mask, band_sum, desc, guided)
        else:
            ab = 0.5 * (self._predict(l, hint_ab, mask, band_sum, desc, guided)
                        + self._patchwise(l, hint_ab, mask, band_sum, desc, guided))
        return self._recombine(l_full, l, ab)

    def _edge_fit(self, l: torch.Tensor, ab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The guided filter's coefficients (He, Sun, Tang, "Guided Image Filtering", TPAMI 2013), at the working
        size: per pixel, ab ~ scale * L + offset fitted over a box around it, both boxed again. Upsampled and
        applied to the full-size L, they give He and Sun's fast guided upsampling (arXiv 1505.00996)."""
        r = self.edge_radius
        g = l / 100.0
        mean_g, mean_ab = _box(g, r), _box(ab, r)
        scale = (_box(g * ab, r) - mean_g * mean_ab) / (_box(g * g, r) - mean_g * mean_g + self.edge_eps)
        return _box(scale, r), _box(mean_ab - scale * mean_g, r)

    def _recombine(self, l_full: torch.Tensor, l: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """ab upsampled to the full size (bilinearly, or guided by L) and joined with the full-size L, in bands
        of rows to bound memory on large photos."""
        size = [l_full.shape[-2], l_full.shape[-1]]
        if self.edge_radius > 0:
            scale, offset = self._edge_fit(l, ab)
            scale = F.interpolate(scale, size=size, mode="bilinear", align_corners=False)
            ab = F.interpolate(offset, size=size, mode="bilinear", align_corners=False)
            ab += scale * (l_full / 100.0)
        else:
            ab = F.interpolate(ab, size=size, mode="bilinear", align_corners=False)
        out = l_full.new_empty([l_full.shape[0], 3, l_full.shape[-2], l_full.shape[-1]])
        rows = self.band_rows
        for y in range(0, l_full.shape[-2], rows):
            out[..., y:y + rows, :] = recombine(l_full[..., y:y + rows, :], ab[..., y:y + rows, :])
        return out


def colorizer(preset: str = "small", class_prior: torch.Tensor | None = None, **readout: float) -> Colorizer:
    """Build a named preset (see PRESETS); ``class_prior`` and ``readout`` (temperature, mix, guided_mix: they change
    no weights, so a trained model can be exported with others) as in ``Colorizer``."""
    return Colorizer(**{**PRESETS[preset], **readout}, class_prior=class_prior)
