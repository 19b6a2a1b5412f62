"""Is an upload a clean small image or a real low-res photo (JPEG'd, noisy)? Decides which x4 network fits.

Measured on the uploaded bytes, cheaply (no network):

- ``jpeg_quality``: for a JPEG, the IJG quality its own quantization tables were made with. The IJG
  library (libjpeg, Pillow, most phones' and messengers' encoders) scales the standard tables of the
  JPEG spec (ITU-T T.81 Annex K) by ``5000 / q`` below quality 50 and ``200 - 2 q`` above; we compare
  the file's luma (and chroma) tables with the tables of every quality 1-100 and keep the nearest,
  in the spirit of ImageMagick's ``identify -format %Q`` (which compares table sums). Non-IJG tables (some cameras, Photoshop)
  get the nearest IJG quality, which is what matters here: how coarse the quantization is.
- ``blockiness`` and ``block_grid``: for any upload, how much stronger the luma steps are across one of
  the eight column (and row) phases of an 8-pixel grid than across the typical phase: per direction,
  the largest over phases of the mean absolute difference between neighbours, divided by the median
  over phases (``blockiness``: the mean over directions; a clean image scores about 1). A JPEG's block
  edges make one phase stand out *in the same place*: ``block_grid`` is true when, in every measured
  direction, the ratio exceeds ``GRID_RATIO_ABOVE`` (1.1) at phase 7 (the edge between pixels 7 and 8:
  a JPEG re-saved losslessly as it was) or at a phase that all three strips of the image agree on (a
  JPEG cropped before it was re-saved). Texture also makes a phase stand out, but at a phase that
  differs from strip to strip and is rarely 7 in both directions.
- ``noise_sigma``: luma noise std in [0, 255] units, after Immerkaer ("Fast Noise Variance
  Estimation", CVIU 1996): the response to the 3x3 mask [[1,-2,1],[-2,4,-2],[1,-2,1]] cancels
  smooth image content and leaves 6 sigma of white noise; we take its RMS on 8x8 tiles and keep
  the 10th percentile over tiles, so edges and texture (a small photo is mostly texture) do not
  count as noise: the estimate is the noise of the flattest tenth (0.8 sigma on pure mid-grey noise,
  less where the flattest tiles are clipped black or white, as skies and backgrounds often are).

The rule (``decide``), thresholds chosen so that a JPEG'd upload is caught where its artifacts show
at x4 while the clean model's inputs (bicubic or area downscales saved losslessly) stay ``clean``:

1. a JPEG whose estimated quality is below ``JPEG_REAL_BELOW`` (90) -> ``real``; at 90 and above
   the blocks are below the 8-bit noise floor of a small photo, so the pixel measures decide;
2. ``block_grid`` -> ``real`` (a JPEG re-saved losslessly; measured along sides of at least 96 px only);
3. ``noise_sigma`` above ``NOISE_REAL_ABOVE`` (4.5 of 255) -> ``real`` (sensor or scan noise);
4. otherwise ``clean``.

Calibration of the quality estimate and the noise rule (x4 bicubic downscales, 75x112 to 640x480, of 3
scikit-image photos and 12 of ``../shared/data`` photos and faces): the quality estimate was exact at 35,
50, 75 and 95. Clean PNGs scored noise 0.3-3.4 (the high ones are fine texture that no 8x8 tile is free
of); Gaussian noise of std 8 added to them scored 3.4-5.7, std 4 scored 1.9-4.2: the noise rule catches
strong noise only; a smaller threshold would send textured clean photos to ``real``. On 200 training
photos' downscales (the calibration below) the threshold was raised from 3.5 to 4.5: clean PNGs above it
13% -> 6% (the median scored 0.9), with Gaussian noise of std 8 added 96% -> 81%, std 4 24% -> 11%. No blockiness below
96 px: on 64 px crops clean images scored up to 1.35.

Calibration of ``block_grid`` (``python -m benchmarks.superres_auto_rule``, on 200 training photos of
``../shared/data``, x4 bicubic downscales; held-out figures in docs/superres_real.md): the earlier rule
(mean ratio above 1.2 at any phase) called 14% of clean PNGs ``real``, the finely textured 120x80 BSDS
photos above all, and caught 78% of JPEGs q35-65 re-saved as PNG and 70% of those cropped first;
``block_grid`` calls 6% of clean PNGs ``real`` and catches 82% and 50%. A JPEG file, the common case,
is decided by its tables whatever its pixels.

The server measures the upload it decoded (its sRGB pixels, and the JPEG tables ``image_io.decode`` keeps
in ``Source.quantization``); ``measure`` does the same from a file's bytes.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

JPEG_REAL_BELOW = 90
GRID_RATIO_ABOVE = 1.1
JPEG_GRID_PHASE = 7  # np.diff index of the step from a block's last pixel to the next block's first
GRID_STRIPS = 3
NOISE_REAL_ABOVE = 4.5
MIN_BLOCKINESS_SIDE = 96  # 12 blocks: below that, texture alone scores like JPEG (1.3 on clean 64 px crops)
MEASURED_SIDE = 1024  # the pixel measures read the central crop of at most this side

# ITU-T T.81 Annex K, tables K.1 (luminance) and K.2 (chrominance), in natural (row-major) order,
# which is the order Pillow's ``Image.quantization`` gives them in.
STD_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64)
STD_CHROMA = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
    *[99] * 32], dtype=np.float64)

Decision = Literal["clean", "real"]


@dataclass(frozen=True)
class InputQuality:
    jpeg_quality: int | None  # estimated IJG quality for JPEGs, else None
    blockiness: float  # ~1 clean; larger with an 8x8 block grid
    block_grid: bool  # one grid phase stands out in every direction at the JPEG phase or in every strip
    noise_sigma: float  # luma noise std, 0-255 units


def ijg_table(std: np.ndarray, quality: int) -> np.ndarray:
    """The table libjpeg's ``jpeg_set_quality`` writes (baseline: clamped to 1-255)."""
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return np.clip(np.floor((std * scale + 50) / 100), 1, 255)


def estimate_jpeg_quality(tables: dict[int, list[int]]) -> int:
    """The IJG quality (1-100) whose tables are nearest (mean absolute difference) to these."""
    luma = np.asarray(tables[0], dtype=np.float64)
    chroma = np.asarray(tables[1], dtype=np.float64) if 1 in tables else None

    def distance(q: int) -> float:
        d = np.abs(luma - ijg_table(STD_LUMA, q)).mean()
        return d + (np.abs(chroma - ijg_table(STD_CHROMA, q)).mean() if chroma is not None else 0.0)

    return min(range(1, 101), key=distance)


def luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma in 0-255 as float, as Pillow's "L" computes it from 8-bit RGB (16-bit fixed point,
    so the calibrated thresholds hold); 16-bit samples are brought to the 0-255 scale unrounded."""
    if rgb.dtype == np.uint8:
        weighted = rgb.astype(np.int32) @ np.array([19595, 38470, 7471], dtype=np.int32)
        return ((weighted + 32768) >> 16).astype(np.float64)
    return (rgb.astype(np.float64) / 257.0) @ np.array([0.299, 0.587, 0.114])


def central_crop(rgb: np.ndarray, side: int = MEASURED_SIDE) -> np.ndarray:
    """At most side x side pixels from the middle: the measures are statistics, and a large upload's cost stays bounded."""
    h, w = rgb.shape[:2]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return rgb[top:top + side, left:left + side]


def _phase_means(steps: np.ndarray, period: int) -> np.ndarray:
    return np.array([steps[:, p::period].mean() for p in range(period)])


def blockiness(y: np.ndarray, period: int = 8, min_side: int = MIN_BLOCKINESS_SIDE) -> tuple[float, bool]:
    """(mean over directions of the strongest phase's step over the median phase's, ``block_grid``).

    A direction shorter than ``min_side`` is not measured ((1.0, False) if neither is): with few
    columns per phase, a handful of strong texture edges make one phase stand out in clean images too.
    """
    ratios, grid = [], []
    for steps in (np.abs(np.diff(y, axis=1)), np.abs(np.diff(y, axis=0)).T):
        if steps.shape[1] + 1 < min_side:
            continue
        per_phase = _phase_means(steps, period)
        peak = int(per_phase.argmax())
        ratios.append(per_phase.max() / max(np.median(per_phase), 1e-3))
        in_strips = {int(_phase_means(strip, period).argmax()) for strip in np.array_split(steps, GRID_STRIPS)}
        grid.append(ratios[-1] > GRID_RATIO_ABOVE and (peak == JPEG_GRID_PHASE or in_strips == {peak}))
    if not ratios:
        return 1.0, False
    return float(np.mean(ratios)), all(grid)


def noise_sigma(y: np.ndarray, tile: int = 8, percentile: float = 10.0) -> float:
    """Immerkaer's mask response, per tile RMS, a low percentile over tiles: the flat tiles' noise, not texture."""
    if min(y.shape) < tile + 2:
        return 0.0
    r = (y[:-2, :-2] - 2 * y[:-2, 1:-1] + y[:-2, 2:]
         - 2 * y[1:-1, :-2] + 4 * y[1:-1, 1:-1] - 2 * y[1:-1, 2:]
         + y[2:, :-2] - 2 * y[2:, 1:-1] + y[2:, 2:]) / 6  # the mask's gain on white noise is 6
    h, w = r.shape[0] // tile * tile, r.shape[1] // tile * tile
    rms = np.sqrt((r[:h, :w] ** 2).reshape(h // tile, tile, w // tile, tile).mean(axis=(1, 3)))
    return float(np.percentile(rms, percentile))


def measure_pixels(rgb: np.ndarray, quantization: dict[int, list[int]] | None) -> InputQuality:
    """The measures for decoded [H, W, 3] RGB (uint8 or uint16) and, for a JPEG upload, its quantization tables."""
    quality = estimate_jpeg_quality(quantization) if quantization else None
    y = luma(central_crop(rgb))
    return InputQuality(quality, *blockiness(y), noise_sigma(y))


def measure(data: bytes) -> InputQuality:
    """The measures for an image file's bytes (tools and tests; the server measures the image it decoded)."""
    img = Image.open(io.BytesIO(data))
    tables = getattr(img, "quantization", None) if img.format == "JPEG" else None
    return measure_pixels(np.asarray(img.convert("RGB")), tables)


def decide(q: InputQuality) -> Decision:
    """The rule of the module docstring."""
    if q.jpeg_quality is not None and q.jpeg_quality < JPEG_REAL_BELOW:
        return "real"
    if q.block_grid or q.noise_sigma > NOISE_REAL_ABOVE:
        return "real"
    return "clean"


def classify(rgb: np.ndarray, quantization: dict[int, list[int]] | None) -> Decision:
    """``clean`` or ``real`` for a decoded upload: which x4 network answers ``input=auto`` (handlers/superres.py)."""
    return decide(measure_pixels(rgb, quantization))
