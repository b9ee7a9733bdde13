"""Capture without an adapter: specs found by inspection, hybrid models, scores with sinks or biases, refusals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from lmxray.capture import CapturePlan, capture
from lmxray.capture.attention import iter_probabilities, Extra
from lmxray.errors import LmxrayError
from lmxray.models.loader import from_hf
from lmxray.models.support import PROMPT, ByteTokenizer, tiny_model

PROB_TOL = 1e-5  # captured fp32 probabilities vs eager attention
BOOK_TOL = 1e-5  # resid_out - (resid_in + attention_output + mlp_output)
FULL = CapturePlan(per_head=True, n_values=None, lens_positions=None)


def _load(model_type: str):
    hf = tiny_model(model_type)
    ids = ByteTokenizer()(PROMPT)["input_ids"]
    with torch.no_grad():
        eager = hf(torch.tensor([ids]), output_attentions=True, use_cache=False)
    return from_hf(hf, ByteTokenizer(), model_type), ids, eager


@pytest.mark.parametrize("model_type", ["opt", "doge", "gpt_oss", "granitemoe", "bloom", "gpt_neo", "mpt"])
def test_inspected_model_traces_like_eager(model_type):
    """OPT projects after its final norm, Doge adds a float mask, GPT-OSS has sinks, GraniteMoE divides its logits;
    BLOOM (ALiBi), GPT-Neo (local windows) and MPT compute attention themselves: a shim routes it (adapters/legacy)."""
    model, ids, eager = _load(model_type)
    assert model.spec.inspected
    trace = model.trace(ids, plan=FULL)
    ref = torch.stack(eager.attentions)[:, 0].numpy()
    drift = float(np.abs(trace.attention_heads - ref).max())
    assert drift <= PROB_TOL, f"{model_type}: per-head probabilities drift {drift:.2e} from eager (tol {PROB_TOL})"
    final = torch.log_softmax(eager.logits[0], -1).max(-1).values.numpy()
    drift = float(np.abs(np.log(trace.lens.target_prob[-1]) - final).max())
    assert drift <= 1e-4, f"{model_type}: the last layer's lens drifts {drift:.2e} from the model's log-probs"


def test_inspected_components_keep_the_residual_bookkeeping():
    model, ids, _ = _load("opt")
    c = model.trace(ids, plan=FULL).components
    resid_in = np.concatenate([c["input_embedding"].values, c["residual"].values[:-1]])
    drift = float(np.abs(resid_in + c["attention_output"].values + c["mlp_output"].values - c["residual"].values).max())
    assert drift <= BOOK_TOL, f"opt: resid_out != resid_in + attn + mlp, drift {drift:.2e}"


def test_components_are_dropped_where_a_module_adds_the_residual_itself():
    model, ids, _ = _load("bloom")  # BloomAttention and BloomMLP return their output plus the residual
    trace = model.trace(ids)
    assert model.spec.attn_contribution is None and model.spec.mlp_contribution is None
    assert "attention_output" not in trace.components and "mlp_output" not in trace.components


def test_components_inspection_cannot_locate_are_dropped_and_recorded():
    model, ids, _ = _load("granitemoe")  # a mixture of experts has no single MLP down projection
    assert model.spec.mlp_down is None
    trace = model.trace(ids)
    assert "mlp_hidden" not in trace.components and "mlp_hidden" not in trace.capture["components"]
    assert "residual" in trace.components


def test_hybrid_traces_its_attention_layers_and_refuses_the_others():
    model, ids, eager = _load("qwen3_next")  # layer 0 is linear attention, layer 1 full attention
    assert model.spec.attention_layers == (1,)
    trace = model.trace(ids, plan=FULL)
    assert trace.layers == [1]
    drift = float(np.abs(trace.attention_heads[0] - eager.attentions[0][0].numpy()).max())
    assert drift <= PROB_TOL, f"qwen3_next: probabilities drift {drift:.2e}"
    with pytest.raises(LmxrayError, match=r"layer 0 of this model has no attention .* capture its attention layers: 1"):
        model.trace(ids, plan=CapturePlan(layers=(0,)))


@pytest.mark.parametrize("model_type, words", [
    ("mamba", "it has no attention: a state-space or recurrent model (MambaMixer)"),
    ("cpmant", "its attention (CpmAntSelfAttentionBlock) is computed inside the module"),
    ("bart", "it is an encoder-decoder model"),
    ("bert", "it is an encoder family"),
    ("bert-generation", "it is an encoder family"),
])
def test_untraceable_models_are_refused_in_one_line(model_type, words):
    from lmxray.models.tiny import tiny_config
    import transformers

    config = tiny_config(model_type)
    if model_type in ("mamba", "cpmant"):
        hf = transformers.AutoModelForCausalLM.from_config(config)
    else:
        hf = torch.nn.Module()
        hf.config = config
    with pytest.raises(LmxrayError) as err:
        from_hf(hf, ByteTokenizer())
    message = str(err.value)
    assert f"cannot trace model type '{model_type}'" in message and words in message and "\n" not in message
    assert "models --support" in err.value.fix


def test_multimodal_config_is_refused_before_loading():
    from transformers import CONFIG_MAPPING

    from lmxray.adapters import check_scope

    with pytest.raises(LmxrayError, match="it is a multimodal model"):
        check_scope(CONFIG_MAPPING["gemma3"]())


def test_flow_refuses_an_inspected_model():
    from lmxray.flow import flow

    model, _, _ = _load("opt")
    with pytest.raises(LmxrayError, match="flow has no linear maps for model type 'opt'") as err:
        flow(model, PROMPT)
    assert "llama" in err.value.fix


def test_an_attention_that_bypasses_the_function_is_an_error_not_empty_maps():
    model, ids, _ = _load("opt")
    wrong = dataclasses.replace(model, spec=dataclasses.replace(model.spec, attention="fc1"))
    with pytest.raises(LmxrayError, match="the attention of layer 0 did not go through"):
        capture(wrong, [ids], CapturePlan())


def test_sinks_bias_and_float_mask_match_the_eager_formula():
    """Scores + float mask + bias, softmax over the keys plus one sink logit per head, the sink dropped."""
    torch.manual_seed(0)
    q, k = torch.randn(2, 4, 6, 8), torch.randn(2, 2, 6, 8)
    sinks, bias = torch.randn(4), 0.3 * torch.randn(1, 4, 6, 6)
    mask = torch.zeros(2, 1, 6, 6).masked_fill(torch.ones(6, 6, dtype=torch.bool).triu(1), torch.finfo(torch.float32).min)
    mask[0, :, :, 0] += -1.5  # a float mask with a soft bias, as Doge builds
    scores = torch.matmul(q, k.repeat_interleave(2, 1).transpose(-1, -2)) * 0.3 + bias + mask
    ref = torch.softmax(torch.cat([scores, sinks.view(1, 4, 1, 1).expand(2, 4, 6, 1)], -1), -1)[..., :-1]
    for rows in (6, 2):
        got = torch.cat([c.probs for c in iter_probabilities(q, k, mask, 0.3, None, rows, extra=Extra(sinks, bias))], 2)
        drift = float((got - ref).abs().max())
        assert drift <= 1e-6, f"sink/bias/float-mask probabilities drift {drift:.2e} ({rows} rows per chunk)"
