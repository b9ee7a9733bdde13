"""Loading and tracing leave the process as they found it: environment, torch's RNG, transformers' settings."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

import lmxray
from tiny_models import save_tiny


def test_load_and_trace_leave_environment_rng_and_progress_bars_alone(tmp_path):
    from transformers.utils import logging as hf_logging

    folder = save_tiny("llama", tmp_path / "tiny")
    env = dict(os.environ)
    torch.manual_seed(1234)
    expected_draw = torch.rand(3)
    torch.manual_seed(1234)
    bars = hf_logging.is_progress_bar_enabled()
    model = lmxray.load(str(folder))
    twin = lmxray.load(str(folder), init="random", seed=7)
    model.trace("hello world", plan=lmxray.CapturePlan(per_head=True))
    assert dict(os.environ) == env, f"environment changed: {set(os.environ.items()) ^ set(env.items())}"
    assert torch.equal(torch.rand(3), expected_draw), "loading or tracing moved torch's global RNG"
    assert hf_logging.is_progress_bar_enabled() == bars, "transformers' progress-bar setting changed"
    again = lmxray.load(str(folder), init="random", seed=7)
    for (name, a), (_, b) in zip(twin.hf.state_dict().items(), again.hf.state_dict().items()):
        assert torch.equal(a, b), f"the random twin is not a function of its seed ({name} differs)"


def test_importing_lmxray_changes_no_environment_variable():
    code = "import os; before = dict(os.environ); import lmxray, lmxray.cli; print(dict(os.environ) == before)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True", out.stderr
