"""Every architecture transformers' GGUF reader handles loads through `--model file.gguf` (tiny files written by
the gguf writer, tests/gguf_fixture.write_tiny_gguf) and traces; what it cannot read is one clear line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lmxray
from lmxray.errors import LmxrayError
from cli_helpers import run
from gguf_fixture import GGUF_ARCHS, write_tiny_gguf

LOGIT_TOL = 1e-5  # the converted model's logits vs the model whose weights were written (fp32)
# transformers 5.23's reader still names GPT-OSS experts one by one; the model fuses them (and has sinks)
UNREAD = {"gpt-oss": "missing ['model.layers.0.mlp.experts.gate_up_proj'"}
TRACED = sorted(set(GGUF_ARCHS) - set(UNREAD) - {"mamba"})


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMXRAY_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.mark.parametrize("arch", TRACED)
def test_gguf_architecture_loads_and_traces(cache, arch):
    path = cache / f"{arch}.gguf"
    written = write_tiny_gguf(path, arch)
    arch_type = written.config.model_type
    model = lmxray.load(str(path), device="cpu", dtype="float32")
    # llama.cpp writes Mistral models as llama: they load as llama, whose layers are the same
    assert model.info.source == "gguf" and model.info.architecture == ("llama" if arch == "mistral" else arch_type)
    ids = torch.tensor([model.encode("the capital")])
    with torch.no_grad():
        drift = float((model.hf(ids).logits - written(ids).logits).abs().max())
    assert drift <= LOGIT_TOL, f"{arch}: converted logits drift {drift:.2e} from the written model (tol {LOGIT_TOL})"
    trace = model.trace("the capital")
    rows = trace.attention[:, -1].sum(-1)  # each head's row sums to 1: the head-summed row to the head count
    assert np.allclose(rows, model.info.n_heads, atol=1e-4), f"{arch}: last rows sum to {rows}"


def test_gguf_trace_from_the_cli(cache, capsys):
    path = cache / "qwen2moe.gguf"
    write_tiny_gguf(path, "qwen2moe")
    code, out, _ = run(capsys, "trace", "the capital", "--model", path, "--json")
    assert code == 0 and '"architecture": "qwen2_moe"' in out


@pytest.mark.parametrize("arch", sorted(UNREAD))
def test_gguf_the_reader_cannot_map_is_one_clear_error(cache, arch):
    path = cache / f"{arch}.gguf"
    write_tiny_gguf(path, arch)
    with pytest.raises(LmxrayError, match=f"cannot convert {arch}.gguf: weights do not match") as err:
        lmxray.load(str(path), device="cpu")
    assert UNREAD[arch] in str(err.value) and "\n" not in str(err.value)


def test_gguf_state_space_model_loads_and_is_refused(cache):
    path = cache / "mamba.gguf"
    write_tiny_gguf(path, "mamba")
    with pytest.raises(LmxrayError, match="cannot trace model type 'mamba': it has no attention"):
        lmxray.load(str(path), device="cpu")
