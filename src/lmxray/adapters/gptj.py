"""GPT-J: attention and a plain GELU MLP in parallel on one LayerNorm, rotary on the first rotary_dim dimensions.

GPT-J computes its attention itself (``GPTJAttention._attn``); the loader binds
``attn`` in its place, which hands the post-rotary q/k/v to transformers'
attention interface, so lmxray's registered function records it.
"""

from lmxray.adapters.base import ArchSpec


def attn(self, query, key, value, attention_mask=None):
    """``GPTJAttention._attn`` through the attention interface: ``[batch, head, pos, d_head]`` in and out."""
    output, _ = self.lmxray_attention(self, query, key, value, attention_mask, scaling=1.0 / self.scale_attn)
    return output.transpose(1, 2), None


SPEC = ArchSpec(
    family="gptj",
    model_types=("gptj",),
    layers="transformer.h",
    final_norm="transformer.ln_f",
    unembed="lm_head",
    attention="attn",
    attn_contribution="attn",
    mlp_contribution="mlp",
    mlp_down="mlp.fc_out",
    norm_kind="layer",
    mlp_kind="plain",
    parallel_residual=True,
    attention_shim=attn,
    shim_method="_attn",
    input_norm="ln_1",
    mlp_norm="ln_1",
    value_proj="attn.v_proj",
    out_proj="attn.out_proj",
    mlp_up="mlp.fc_in",
    mlp_act="mlp.act",
    norm_eps_attr="eps",
)
