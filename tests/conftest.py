"""Shared fixtures for the test suite."""

from __future__ import annotations

import pytest

from tiny_models import save_tiny


@pytest.fixture(scope="session", autouse=True)
def quiet_transformers():
    """No progress bars from the tests' own save_pretrained calls in the output the CLI tests read."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A tiny llama saved as an HF directory (config + safetensors + tokenizer)."""
    return save_tiny("llama", tmp_path_factory.mktemp("tiny-llama"))
