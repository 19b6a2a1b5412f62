"""What one fuzzed input came to: ``image``, ``<4xx code> <error type>``, or ``CRASH ...`` (a bug)."""
from __future__ import annotations

import io
import json
import warnings

from PIL import Image

from image_io import RequestError, decode

MAX_PIXELS = 40_000_000  # the handlers' largest limit (DEFAULTS in handlers/image_handler.py)


def is_crash(outcome: str) -> bool:
    return outcome.startswith("CRASH")


def decode_outcome(data: bytes, max_pixels: int = MAX_PIXELS) -> str:
    """The decoder's verdict on ``data``: a picture, or a 4xx RequestError; anything else is a crash."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about odd EXIF before failing or not: only the result counts
            image = decode(data, max_pixels)
    except RequestError as err:
        return f"{err.code} {err.kind}" if 400 <= err.code < 500 else f"CRASH RequestError {err.code} {err.kind}"
    except Exception as exc:  # noqa: BLE001 - what the fuzzer is looking for
        return f"CRASH {type(exc).__name__}: {str(exc)[:120]}"
    h, w = image.size
    depth = {"uint8": 8, "uint16": 16}.get(image.rgb.dtype.name)  # 16-bit PNG/TIFF keep their 16 bits
    if depth != image.source.depth or image.rgb.shape != (h, w, 3) or h * w == 0:
        return f"CRASH bad array {image.rgb.dtype} {image.rgb.shape}"
    if image.alpha is not None and (image.alpha.shape != (h, w) or image.alpha.dtype != image.rgb.dtype):
        return f"CRASH bad alpha {image.alpha.shape}"
    return "image"


def answer_outcome(status: int, content_type: str | None, body: bytes) -> str:
    """A server's answer to one request: an image that decodes, or a JSON 4xx saying what was wrong."""
    content_type = content_type or ""
    if status == 200 and content_type.startswith("image/"):
        try:
            with Image.open(io.BytesIO(body)) as img:
                img.load()
        except Exception as exc:  # noqa: BLE001
            return f"CRASH undecodable {content_type} answer: {exc}"
        return "image"
    try:
        answer = json.loads(body)
    except ValueError:
        return f"CRASH {status} {content_type} not JSON: {bytes(body)[:80]!r}"
    if not (400 <= status < 500) or not isinstance(answer, dict) or answer.get("code") != status:
        return f"CRASH {status} {str(answer)[:120]}"
    if not answer.get("message"):
        return f"CRASH {status} {answer.get('type')} without a message"
    return f"{status} {answer.get('type')}"
