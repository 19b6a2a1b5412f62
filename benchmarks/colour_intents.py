"""Which LittleCMS rendering intent for the wide-gamut -> sRGB working conversion (docs/files.md), and its cost.

For each wide-gamut profile (tests/icc.py), a photo whose colours fill that gamut is converted to 8-bit sRGB
with relative colorimetric + black-point compensation and with perceptual. Printed: mean CIE76 dE of the sRGB
version against the original (what the model sees, how far from the photo), of in-gamut pixels alone (what
an intent must leave alone), and of the answer back in the upload's profile with the clipped part restored
(handlers/file_info.py), for an unchanged photo. Then the seconds a 12 MP upload's conversion takes.

    .venv/bin/python benchmarks/colour_intents.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "handlers")]

from file_info import FLAGS, SRGB, gamut_residual, with_gamut  # noqa: E402
from tests.icc import SPACES, mean_delta_e, profile, rgb_profile, to_lab  # noqa: E402
from tests.test_files import saturated  # noqa: E402

INTENTS = {"relative+BPC": (ImageCms.Intent.RELATIVE_COLORIMETRIC, FLAGS),
           "perceptual": (ImageCms.Intent.PERCEPTUAL, ImageCms.Flags.NONE)}


def convert(img: Image.Image, src, dst, intent, flags) -> Image.Image:
    return ImageCms.profileToProfile(img, src, dst, renderingIntent=intent, outputMode="RGB", flags=flags)


def main() -> None:
    img = saturated(512, 384)
    for space in SPACES:
        icc = rgb_profile(space)
        src = profile(icc)
        original = to_lab(img, icc)
        for name, (intent, flags) in INTENTS.items():
            srgb = convert(img, src, SRGB, intent, flags)
            back = np.asarray(convert(srgb, SRGB, src, intent, flags))
            inside = np.abs(back.astype(int) - np.asarray(img, int)).max(-1) <= 1  # sRGB could hold these
            de = np.sqrt(((original - to_lab(srgb, None)) ** 2).sum(-1))
            kept = Image.fromarray(with_gamut(back, gamut_residual(img, srgb, icc)), "RGB")
            print(f"{space:18} {name:13} sRGB vs photo mean dE {de.mean():5.2f}, in-gamut pixels "
                  f"{de[inside].mean():5.2f} ({inside.mean():.0%} of them); answer back {mean_delta_e(original, to_lab(kept, icc)):.2f}")
    big = saturated(4000, 3000)
    icc = rgb_profile("Display P3")
    started = time.perf_counter()
    srgb = convert(big, profile(icc), SRGB, *INTENTS["relative+BPC"])
    gamut = gamut_residual(big, srgb, icc)
    decode_s = time.perf_counter() - started
    started = time.perf_counter()
    with_gamut(np.asarray(convert(srgb, SRGB, profile(icc), *INTENTS["relative+BPC"])), gamut)
    print(f"12 MP Display P3: to sRGB + gamut residual {decode_s:.2f} s, back + residual {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
