"""lmxray: an X-ray for causal language models.

    import lmxray
    model = lmxray.load("smollm2")
    trace = model.trace("The capital of France is")
    trace.save("france.jsonl")
"""

from lmxray.capture.plan import CapturePlan
from lmxray.display import mimebundle, trace_html
from lmxray.errors import LmxrayError
from lmxray.flow.result import Flow
from lmxray.models.loader import load
from lmxray.models.model import Model
from lmxray.trace.dense import open_trace
from lmxray.trace.reader import read_trace
from lmxray.trace.types import Trace
from lmxray.version import __version__

Trace._repr_html_ = trace_html  # Jupyter display; trace/ and flow/ stay free of render/ (lmxray/display.py)
Trace._repr_mimebundle_ = Flow._repr_mimebundle_ = mimebundle

__all__ = ["CapturePlan", "LmxrayError", "Model", "Trace", "load", "open_trace", "read_trace", "__version__"]
