"""Shared fixtures for the test suite."""

from __future__ import annotations

import pytest

from tiny_models import tiny_model, tiny_tokenizer


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A tiny llama saved as an HF directory (config + safetensors + tokenizer)."""
    path = tmp_path_factory.mktemp("tiny-llama")
    tiny_model("llama").save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return path
