"""Direct logit attribution: each source's share of a token's final logit, through the frozen final norm.

The final norm's scale is frozen, so ``logit(t) = sum over sources of
scale * (w * centre(c_s)) . W_U[t]`` plus constants (norm bias, unembedding
bias) on the bias source. A final-logit softcap ``c * tanh(z / c)`` is frozen
as the ratio ``softcapped / z`` of the true logit, so the sum stays exact.
"""

from __future__ import annotations

import torch

from lmxray.flow.maps import Affine, Norm


@torch.no_grad()
def attribute_logits(final: torch.Tensor, scale: torch.Tensor, norm: Norm, unembed: Affine,
                     normed: torch.Tensor, softcap: float | None) -> torch.Tensor:
    """Contributions ``[token, source]`` to the final logits of ``unembed``'s rows (bias source last).

    ``final`` [source, d_model]: contributions at the position; ``scale``: the final norm's frozen
    scale there; ``normed`` [d_model]: the true final-norm output (for the softcap ratio).
    """
    x = final - final.mean(-1, keepdim=True) if norm.centre else final
    w_u = unembed.weight.float()  # [token, d_model]
    parts = (x * (scale * norm.weight.float())) @ w_u.T  # [source, token]
    constant = torch.zeros(w_u.shape[0], device=final.device)
    if norm.bias is not None:
        constant += w_u @ norm.bias.float()
    if unembed.bias is not None:
        constant += unembed.bias.float()
    parts[-1] += constant
    if softcap:
        z = w_u @ normed.float() + (0.0 if unembed.bias is None else unembed.bias.float())
        ratio = torch.where(z != 0, torch.tanh(z / softcap) * softcap / torch.where(z != 0, z, 1.0), 1.0)
        parts *= ratio
    return parts.T.contiguous()
