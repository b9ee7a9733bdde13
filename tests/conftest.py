"""Shared fixtures for the test suite."""

from __future__ import annotations

import pytest

from tiny_models import save_tiny


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A tiny llama saved as an HF directory (config + safetensors + tokenizer)."""
    return save_tiny("llama", tmp_path_factory.mktemp("tiny-llama"))
