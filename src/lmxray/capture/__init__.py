"""Capture: one traced forward pass through lmxray's registered attention function and hooks.

``capture()`` is the single entry point; ``build_traces()`` turns its result into Traces.
"""

from lmxray.capture.api import Captured, capture
from lmxray.capture.batch import pad_token_id, resolve_position
from lmxray.capture.plan import CapturePlan

__all__ = ["Captured", "CapturePlan", "capture", "pad_token_id", "resolve_position"]
