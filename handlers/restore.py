"""TorchServe handler for ``restore``: several endpoints' models in one call, e.g. ``steps=deblur,superres``.

``steps`` (multipart field or ``X-Steps`` header) is a comma-separated chain of endpoint names, run in
that order; a step may repeat. Each step's own options are sent prefixed with its name
(``deblur.ensemble=true``, ``colorize.hints=[...]``, header ``X-Deblur.Ensemble: true``) and apply to
every occurrence of that step; ``format`` and ``quality`` (unprefixed) are the answer's.

Each step is that endpoint's own handler (handlers/<step>.py) over the same TorchScript file and
model-config.yaml, carried in this archive as ``<step>/`` (archives/build.py): the same options,
limits, precision and tiling. The chain runs on tensors in this one worker: only the upload is
decoded and only the answer encoded. Between steps the image is rounded to 8 bits, as a PNG between
separate calls would round it (and, for a grayscale upload, to the luma each step's grayscale answer
holds), so the answer equals the separate calls' within 1/255 (without the rounding it differs by up
to 4/255 on deblur,enhance,retouch,superres). Every step's input and output
size is checked against that step's limits before anything runs: a chain that outgrows them (say
superres twice on a large photo) is refused with 400 ``ChainTooLarge``, as are an empty chain, an
unknown step (``InvalidSteps``) and options for a step that is not in the chain (``UnknownField``).
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import os
from typing import Any

import numpy as np
import torch
import yaml
from ts.context import Context

from image_handler import ImageHandler, Request
from image_io import DecodedImage, RequestError
from options import COMMON, Option


class RestoreHandler(ImageHandler):
    class StepsOption(Option):
        """``steps``: a comma-separated list of the archive's steps (``choices``), in order."""

        def parse(self, raw: bytes) -> tuple[str, ...]:
            names = tuple(name.strip().lower() for name in bytes(raw).decode("utf-8").split(","))
            if names == ("",):
                raise ValueError("the chain is empty: name at least one step, e.g. steps=deblur,superres")
            unknown = [name for name in names if name not in self.choices]
            if unknown:
                raise ValueError(f"unknown step(s) {', '.join(map(repr, unknown))}; the steps are: "
                                 f"{', '.join(self.choices)} (comma-separated, in order)")
            return names

    def initialize(self, context) -> None:
        self.configure(context)
        model_dir = context.system_properties.get("model_dir")
        names = sorted(d for d in os.listdir(model_dir) if os.path.isfile(os.path.join(model_dir, d, f"{d}.pt")))
        self.steps = {name: self._load_step(name, context) for name in names}
        steps = self.StepsOption("steps", "choice", None, "Comma-separated endpoints to run in order, e.g. "
                                 "deblur,enhance,retouch,superres.", choices=tuple(names), error="InvalidSteps")
        prefixed = tuple(dataclasses.replace(option, name=f"{name}.{option.name}")
                         for name, step in self.steps.items() for option in step.options if option not in COMMON)
        self.options = (*COMMON, steps, *prefixed)
        torch.set_num_threads(int(self.config["threads"]))  # each step set its own while loading
        self.initialized = True

    def _load_step(self, name: str, context) -> ImageHandler:
        """``name``'s own handler, initialised from <model_dir>/<name>/ (its weights and model-config.yaml)."""
        module = importlib.import_module(name)  # the step's handler file travels at the archive's top level
        cls = next(c for _, c in inspect.getmembers(module, inspect.isclass)
                   if c.__module__ == module.__name__ and issubclass(c, ImageHandler))
        folder = os.path.join(context.system_properties.get("model_dir"), name)
        with open(os.path.join(folder, "model-config.yaml")) as f:
            config = yaml.safe_load(f)
        step = cls()
        props = context.system_properties
        step.initialize(Context(name, folder, {"model": {"serializedFile": f"{name}.pt"}}, 1, props.get("gpu_id"),
                                props.get("server_version"), model_yaml_config=config))
        return step

    # ---- 1. decode: the whole chain is checked here, before anything runs ----------------------
    def parse_request(self, raw: dict, headers: dict[str, bytes] | None = None) -> Request:
        request = super().parse_request(raw, headers)
        sent = {name.split(".", 1)[0] for name in (*raw, *(headers or {})) if "." in name}
        strays = sorted(sent - set(request.options["steps"]))
        if strays:
            raise RequestError(400, "UnknownField", f"options for step(s) not in the chain: {', '.join(strays)}")
        return request

    def check_output_size(self, height: int, width: int) -> None:
        """Nothing to check before the chain is known: :meth:`check_options` checks every step's sizes."""

    def check_options(self, options: dict[str, Any], image: DecodedImage) -> dict[str, Any]:
        """The answer's options, ``steps``, and ``chain``: each step's name and its checked options
        (as sorted items, hashable where the values are, so equal requests may share a batch)."""
        if not options["steps"]:
            raise RequestError(400, "InvalidSteps", "no steps: send steps=deblur,superres (field or X-Steps header)")
        chain = []
        height, width = image.size
        for i, name in enumerate(options["steps"]):
            step = self.steps[name]
            where = f"step {i + 1} ({name}) of {','.join(options['steps'])}"
            limit = int(step.config["max_input_pixels"])
            if height * width > limit:
                raise RequestError(400, "ChainTooLarge",
                                   f"{where} would get {width}x{height} pixels; its limit is {limit}")
            try:
                step.check_output_size(height, width)
                own = {option.name: options.get(f"{name}.{option.name}", option.default) for option in step.options}
                own = step.check_options(own, image if i == 0 else self._shape_only(height, width))
            except RequestError as err:
                code, kind = (400, "ChainTooLarge") if err.code == 413 else (err.code, err.kind)
                raise RequestError(code, kind, f"{where}: {err.message}") from None
            chain.append((name, tuple(sorted(own.items()))))
            height, width = height * step.metadata.scale, width * step.metadata.scale
        answer = {name: options[name] for name in ("format", "quality", "colorspace", "metadata", "depth")}
        return {**answer, "steps": options["steps"], "chain": tuple(chain), "grayscale": image.grayscale,
                "levels": 65535 if self.answer_depth(options, image) == 16 else 255}

    @staticmethod
    def _shape_only(height: int, width: int) -> DecodedImage:
        """A stand-in with a later step's input size (no pixels: only the size is known before running; a
        step that needs them, superres's ``input=auto``, decides on its input when it runs)."""
        return DecodedImage(np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (height, width, 3)), None, False,
                            placeholder=True)

    def output_scale(self, options: dict[str, Any]) -> int:
        return math.prod(self.steps[name].metadata.scale for name in options["steps"])

    # ---- 3. predict: the steps on tensors, one after another ---------------------------------
    @torch.inference_mode()
    def predict(self, x: torch.Tensor, options: dict[str, Any]) -> torch.Tensor:
        last = len(options["chain"]) - 1
        grayscale = options["grayscale"]
        for i, (name, items) in enumerate(options["chain"]):
            step = self.steps[name]
            x = x.half().contiguous(memory_format=torch.channels_last) if step.half else x.float()
            x = step.predict(x, dict(items))  # float32 in [0, 1]: the step's padding, tiling and precision
            grayscale = grayscale and step.keep_grayscale
            if i < last:
                x = self._as_answered(x, grayscale, options["levels"])
        return x

    @staticmethod
    def _as_answered(x: torch.Tensor, grayscale: bool, peak: int = 255) -> torch.Tensor:
        """``x`` as the step's own endpoint would answer it: 8 bits (``peak`` 65535: the 16 bits of a
        16-bit answer), and Pillow's "L" (ITU-R 601-2 luma in 16-bit fixed point) for a grayscale upload,
        which the next call then reads back as gray RGB."""
        levels = x.mul_(float(peak)).round_()
        if grayscale:
            weights = torch.tensor([19595, 38470, 7471], dtype=torch.int64, device=x.device).view(1, 3, 1, 1)
            luma = (levels.to(torch.int64) * weights).sum(1, keepdim=True).add_(32768).bitwise_right_shift_(16)
            levels = luma.to(x.dtype).expand_as(x).contiguous()
        return levels.div_(float(peak))

    # ---- 4. encode ---------------------------------------------------------------------------
    def encode_one(self, idx: int, request: Request, out: torch.Tensor) -> bytes:
        """A grayscale upload stays grayscale unless a step answers in colour (colorize)."""
        steps = request.options["steps"]
        image = dataclasses.replace(request.image, grayscale=request.image.grayscale and all(
            self.steps[name].keep_grayscale for name in steps))
        return super().encode_one(idx, dataclasses.replace(request, image=image), out)
