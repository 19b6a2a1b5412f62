"""Every endpoint's request options, declared once as data; parsing and the JSON schema derive from it.

An option has a name, a kind (``bool``, ``int``, ``float``, ``choice``, ``json`` or ``file``), a
default, its allowed values or range, and help text. Clients send an option as a multipart field
of its name or (all kinds but ``file``) as an ``X-<Name>`` header; the image itself is the raw
body or the multipart field ``data``.

Importable outside TorchServe, with nothing but the standard library::

    from handlers.options import schema      # from the repository root
    schema("deblur")   # {"endpoint": "deblur", "image_field": "data", "options": [{"name": "format", ...}, ...]}
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable

KINDS = ("bool", "int", "float", "choice", "json", "file")
IMAGE_FIELD = "data"
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class Option:
    name: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()  # choice: the allowed values
    aliases: dict[str, str] = field(default_factory=dict)  # choice: other spellings accepted
    minimum: float | None = None  # int/float: inclusive range
    maximum: float | None = None
    check: Callable[[Any], None] | None = None  # json: raises ValueError when the document's shape is wrong
    error: str = "InvalidOption"  # the error type a bad value answers with

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"option {self.name}: kind must be one of {', '.join(KINDS)}")
        if (self.kind == "choice") != bool(self.choices):
            raise ValueError(f"option {self.name}: choices go with (and only with) kind 'choice'")

    @property
    def header(self) -> str | None:
        """The request header that may carry the option (files only travel as multipart fields)."""
        return None if self.kind == "file" else "X-" + "-".join(p.capitalize() for p in self.name.split("_"))

    def parse(self, raw: bytes) -> Any:
        """The value of a field or header as sent; raises ValueError saying what is expected."""
        if self.kind == "file":
            return bytes(raw)
        text = bytes(raw).decode("utf-8")
        return getattr(self, f"_parse_{self.kind}")(text)

    def _parse_bool(self, text: str) -> bool:
        lowered = text.strip().lower()
        if lowered in TRUE or lowered in FALSE:
            return lowered in TRUE
        raise ValueError("expected true or false")

    def _parse_int(self, text: str) -> int:
        return self._in_range(int(text), "an integer")

    def _parse_float(self, text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise ValueError("expected a finite number")
        return self._in_range(value, "a number")

    def _parse_choice(self, text: str) -> str:
        value = text.strip().lower()
        value = self.aliases.get(value, value)
        if value not in self.choices:
            raise ValueError(f"expected one of {', '.join(self.choices)}")
        return value

    def _parse_json(self, text: str) -> Any:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
        except RecursionError:  # "[[[[..." nested deeper than the parser's stack: a bad value, not a server fault
            raise ValueError("JSON nested too deeply") from None
        if self.check is not None:
            self.check(value)
        return value

    def _in_range(self, value, what: str):
        low, high = self.minimum, self.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"expected {what} from {low:g} to {high:g}")
        return value

    def describe(self) -> dict[str, Any]:
        """The JSON-ready declaration (what a form generator or a client needs)."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "default": self.default, "help": self.help}
        if self.choices:
            out["choices"] = list(self.choices)
        if self.minimum is not None:
            out["minimum"], out["maximum"] = self.minimum, self.maximum
        if self.header:
            out["header"] = self.header
        return out


# ---- colorize hints: the JSON document's shape (bounds against the image are checked after decoding) ----
MAX_HINTS = 256


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_hints(hints: Any) -> None:
    if not isinstance(hints, list):
        raise ValueError('must be a JSON list of {"x": int, "y": int, "rgb": [r, g, b]}')
    if len(hints) > MAX_HINTS:
        raise ValueError(f"{len(hints)} hints; at most {MAX_HINTS} are accepted")
    for i, hint in enumerate(hints):
        if not isinstance(hint, dict) or set(hint) != {"x", "y", "rgb"}:
            raise ValueError(f'hint {i} must be an object with exactly the keys "x", "y" and "rgb"')
        if not (_is_int(hint["x"]) and _is_int(hint["y"])):
            raise ValueError(f"hint {i}: x and y must be integers, got ({hint['x']!r}, {hint['y']!r})")
        rgb = hint["rgb"]
        if not isinstance(rgb, list) or len(rgb) != 3 or not all(_is_int(c) and 0 <= c <= 255 for c in rgb):
            raise ValueError(f"hint {i}: rgb must be a list of three integers in 0..255, got {rgb!r}")


# ---- the declarations ------------------------------------------------------------------------------------
COMMON = (
    Option("format", "choice", "png", "Answer's image format: png (lossless), jpeg or webp.",
           choices=("png", "jpeg", "webp"), aliases={"jpg": "jpeg"}),
    Option("quality", "int", 95, "JPEG/WebP quality (ignored for png).", minimum=1, maximum=100),
    # docs/files.md: what each of these keeps, and how the colour conversion was chosen
    Option("colorspace", "choice", "source", "source: the answer in the upload's ICC profile, tagged with it "
           "(untagged uploads are sRGB); srgb: converted to sRGB and tagged sRGB.", choices=("source", "srgb")),
    Option("metadata", "choice", "keep", "keep: the upload's EXIF, XMP and IPTC in the answer (orientation 1, "
           "the answer's size, no thumbnail); strip: none; nogps: all but the GPS position.",
           choices=("keep", "strip", "nogps")),
    Option("depth", "choice", "auto", "Bits per sample of the answer: auto (16 for a 16-bit PNG/TIFF upload "
           "answered as png, else 8), 8, or 16; jpeg and webp answers hold 8 bits.", choices=("auto", "8", "16")),
)
MODEL_OPTIONS: dict[str, tuple[Option, ...]] = {
    "superres": (
        # handlers/input_quality.py: the rule auto follows, and its calibration
        Option("input", "choice", "auto", "Which x4 network answers: clean (for clean downscales and renders), real "
               "(for JPEG'd, noisy or soft photos, as small photos arrive) or auto (chosen from the upload: a JPEG's "
               "quality, its 8x8 blockiness and noise).", choices=("auto", "clean", "real")),
    ),
    "deblur": (
        Option("ensemble", "bool", False, "Average the model over the 8 flips/rotations of the photo (8x the time)."),
    ),
    "enhance": (
        Option("decoder", "choice", "ensemble", "ensemble (the 0.5/0.5 average) or one decoder's estimate alone: "
               "main (residual) or light (subtracted light layer), for inspection.",
               choices=("ensemble", "main", "light")),
    ),
    "retouch": (
        Option("strength", "float", 1.0, "How far to go from the photo (0) to the full retouch (1).",
               minimum=0.0, maximum=1.0),
    ),
    "colorize": (
        # image by default: on 64 held-out photos it measured best (automatic 21.91 dB like ensemble's, 10 hints
        # 25.84 against 25.78, reference equal; benchmarks/results/colorize_split_16000.json) for half the work.
        Option("mode", "choice", "image", "image: one pass at the working size; patch: overlapping patches; "
               "ensemble: the average of both.", choices=("image", "ensemble", "patch")),
        Option("hints", "json", None, 'Colour hints: a JSON list of {"x": int, "y": int, "rgb": [r, g, b]} in the '
               f"photo's pixel coordinates (at most {MAX_HINTS}).", check=check_hints, error="InvalidHints"),
        Option("reference", "file", None, "A colour image whose colours to borrow (PNG, JPEG, WebP, TIFF or BMP)."),
    ),
}
ENDPOINTS = tuple(MODEL_OPTIONS)


def options_for(endpoint: str) -> tuple[Option, ...]:
    """Every option an endpoint accepts: the common output options, then the model's own."""
    return COMMON + MODEL_OPTIONS[endpoint]


def schema(endpoint: str) -> dict[str, Any]:
    """JSON-serializable description of an endpoint's request: where the image goes and every option."""
    return {"endpoint": endpoint, "image_field": IMAGE_FIELD,
            "options": [option.describe() for option in options_for(endpoint)]}
