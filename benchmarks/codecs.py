"""Codec micro-benchmark: the lossless PNG encoders the handler could use, and what it uses.

    python -m benchmarks.codecs [--repeats 7] [--quick]

For a 512x512 photo (scikit-image's astronaut), its grayscale and RGBA versions, and a 16 MP photo-like
image (a real photo upscaled to 4608x3456 plus sensor-like noise), every encoder available here writes
the same pixels: median encode and decode (with Pillow, the handler's and most clients' decoder) times,
file size, and whether the decoded pixels equal the input. Times are wall-clock ms and CPU ms of this
process: on a loaded machine the wall times stretch with the scheduler, the CPU times much less, so
compare encoders there by CPU ms. Encoders run interleaved (one call of each per round).
``served`` is image_io's own PNG path (fpng for RGB/RGBA when installed), ``served, Pillow fallback`` the
Pillow settings it uses otherwise. Writes benchmarks/results/codecs.json.
--quick: the 512x512 images only, 3 rounds.
"""
from __future__ import annotations

import argparse
import importlib
import io
import statistics
import time
from typing import Callable

import numpy as np
from PIL import Image
from skimage import data as photos

from benchmarks.common import write_results
from handlers.image_io import encode_png, encode_png_pillow

Encoder = Callable[[np.ndarray], bytes]


def pillow(level: int) -> Encoder:
    """Pillow's PNG at a zlib level, default strategy."""
    def run(samples: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(samples).save(buf, "PNG", compress_level=level)
        return buf.getvalue()
    return run


def pillow_jpeg(samples: np.ndarray) -> bytes:
    """Lossy reference point: what a JPEG answer costs."""
    buf = io.BytesIO()
    Image.fromarray(samples[..., :3] if samples.ndim == 3 else samples).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def optional_encoders() -> dict[str, tuple[Encoder, tuple[int, ...]]]:
    """Encoders from packages that may be absent, with the channel counts each takes (1 = [H, W])."""
    found: dict[str, tuple[Encoder, tuple[int, ...]]] = {}
    try:
        fpng = importlib.import_module("fpng")
        found["fpng"] = (lambda s: fpng.from_ndarray(np.ascontiguousarray(s)), (3, 4))
    except ImportError:
        pass
    try:
        codecs = importlib.import_module("imagecodecs")
        found["imagecodecs png level 1"] = (lambda s: codecs.png_encode(s, level=1), (1, 2, 3, 4))
        # The settings imagecodecs documents as OpenCV's fast ones: level 1, RLE strategy, SUB filter.
        found["imagecodecs png fast"] = (lambda s: codecs.png_encode(s, level=1, strategy=3, filter=16), (1, 2, 3, 4))
        found["imagecodecs spng level 1"] = (lambda s: codecs.spng_encode(s, level=1), (1, 2, 3, 4))
    except ImportError:
        pass
    try:
        cv2 = importlib.import_module("cv2")

        def opencv(samples: np.ndarray) -> bytes:
            order = {3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}
            bgr = cv2.cvtColor(samples, order[samples.shape[2]]) if samples.ndim == 3 else samples
            return cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes()
        found["opencv png level 1"] = (opencv, (1, 3, 4))
    except ImportError:
        pass
    return found


def encoders() -> dict[str, tuple[Encoder, tuple[int, ...]]]:
    return {"served": (encode_png, (1, 2, 3, 4)),
            "pillow level 1": (pillow(1), (1, 2, 3, 4)), "pillow level 4": (pillow(4), (1, 2, 3, 4)),
            "served, Pillow fallback": (encode_png_pillow, (1, 2, 3, 4)),
            **optional_encoders(),
            "pillow jpeg q95 (lossy)": (pillow_jpeg, (1, 3, 4))}


def sample_images(quick: bool) -> dict[str, np.ndarray]:
    astronaut = photos.astronaut()
    alpha = np.linspace(0, 255, astronaut.shape[1]).astype(np.uint8)[None, :].repeat(astronaut.shape[0], 0)
    images = {"512x512 RGB photo": astronaut,
              "512x512 grayscale photo": np.asarray(Image.fromarray(astronaut).convert("L")),
              "512x512 RGBA photo": np.dstack((astronaut, alpha))}
    if not quick:
        big = np.asarray(Image.fromarray(photos.coffee()).resize((4608, 3456), Image.Resampling.BICUBIC))
        noise = np.random.default_rng(0).normal(0, 2.0, big.shape)
        images["4608x3456 RGB (16 MP)"] = np.clip(big + noise, 0, 255).astype(np.uint8)
    return images


def pillow_decode(body: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(body))
    img.load()
    return np.asarray(img)


def channels(samples: np.ndarray) -> int:
    return 1 if samples.ndim == 2 else samples.shape[2]


def timed(fn: Callable[[], object]) -> tuple[object, float, float]:
    """(result, wall ms, CPU ms of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, (time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3


def measure(samples: np.ndarray, repeats: int) -> dict[str, dict]:
    """Interleaved rounds: each encoder encodes and decodes once per round."""
    usable = {name: enc for name, (enc, takes) in encoders().items() if channels(samples) in takes}
    times: dict[str, dict[str, list[float]]] = {name: {} for name in usable}
    bodies: dict[str, bytes] = {}
    for round_ in range(repeats + 1):  # round 0 warms every encoder up and is not counted
        for name, encoder in usable.items():
            bodies[name], enc_wall, enc_cpu = timed(lambda: encoder(samples))  # noqa: B023 - called at once
            decoded, dec_wall, dec_cpu = timed(lambda: pillow_decode(bodies[name]))  # noqa: B023
            if round_:
                for key, value in (("encode_ms", enc_wall), ("encode_cpu_ms", enc_cpu),
                                   ("decode_ms", dec_wall), ("decode_cpu_ms", dec_cpu)):
                    times[name].setdefault(key, []).append(value)
            else:
                times[name]["lossless"] = bool(np.array_equal(decoded, samples))
    return {name: {**{key: round(statistics.median(values), 2) for key, values in rows.items() if key != "lossless"},
                   "bytes": len(bodies[name]), "lossless": rows["lossless"]}
            for name, rows in times.items()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="512x512 images only, 3 rounds")
    parser.add_argument("--note", default="", help="how the machine was loaded, stored with the results")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    results: dict[str, dict] = {}
    for label, samples in sample_images(args.quick).items():
        results[label] = measure(samples, repeats)
        print(f"\n{label}: median of {repeats} interleaved rounds")
        print(f"  {'encoder':26} {'encode ms':>10} {'(CPU)':>8} {'decode ms':>10} {'(CPU)':>8} {'KiB':>8}  lossless")
        for name, row in sorted(results[label].items(), key=lambda item: item[1]["encode_cpu_ms"]):
            print(f"  {name:26} {row['encode_ms']:10.2f} {row['encode_cpu_ms']:8.2f} {row['decode_ms']:10.2f} "
                  f"{row['decode_cpu_ms']:8.2f} {row['bytes'] / 1024:8.1f}  {row['lossless']}")
    path = write_results("codecs", {"repeats": repeats, "note": args.note, "images": results})
    print(f"\nwrote {path}")
    return results


if __name__ == "__main__":
    main()
