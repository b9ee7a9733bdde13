"""ArchSpec: a declarative description of one architecture family.

Module paths are dotted attribute paths (``"model.layers"``), relative to the
causal-LM module for model-level parts and to one decoder layer for the rest.
Shared code reads these fields; it never branches on the model type.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArchSpec:
    family: str  # human name, e.g. "llama"
    model_types: tuple[str, ...]  # HF config.model_type values this spec covers
    layers: str  # model-level path to the list of decoder layers
    final_norm: str  # model-level path to the norm before the unembedding
    unembed: str  # model-level path to the unembedding (lm head)
    attention: str  # layer-level path to the attention module (calls the attention interface)
    attn_contribution: str  # layer-level module whose output is what attention adds to the residual
    mlp_contribution: str  # layer-level module whose output is what the MLP adds to the residual
    mlp_down: str  # layer-level path to the MLP's output projection; its input is the MLP hidden state
    norm_kind: str  # "rms" or "layer"
    mlp_kind: str  # "glu" (gate * up) or "plain" (act(up))
    parallel_residual: bool = False  # attention and MLP read the same residual (GPT-NeoX)
    post_norms: bool = False  # norms applied to the attention / MLP outputs (Gemma 2/3)
    learned_positions: bool = False  # absolute position embeddings added to the input (GPT-2)
    logit_softcap_attr: str | None = None  # config attribute holding a final-logit softcap


def get_path(root, path: str):
    """Follow a dotted attribute path (integers index into module lists)."""
    obj = root
    for part in path.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj
