"""Read per-model counters from TorchServe's Prometheus metrics API (``/metrics``).

The frontend labels its own counters ``model_name`` (``ts_inference_requests_total``,
``ts_inference_latency_microseconds``, ``ts_queue_latency_microseconds``); the handler's stage
counters (``DecodeMs``, ``PredictMs``, ...; handlers/image_handler.py) are labelled ``ModelName``.
"""
from __future__ import annotations

import re

import requests


def scrape(metrics_url: str) -> str:
    """The metrics API's text (it needs no key)."""
    reply = requests.get(f"{metrics_url}/metrics", timeout=10)
    reply.raise_for_status()
    return reply.text


def counter(text: str, name: str, model: str) -> float:
    """The value of counter ``name`` for ``model`` in a scrape (summed over its other labels; 0 if absent)."""
    pattern = rf'^{name}\{{[^}}]*(?:model_name|ModelName)="{re.escape(model)}"[^}}]*\}} ([0-9.eE+-]+)$'
    return sum(float(v) for v in re.findall(pattern, text, re.M))
