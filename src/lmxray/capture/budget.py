"""Memory budget of a capture: what the recorder's buffers will hold, checked against free memory first.

A per-head trace of a long prompt can need tens of GiB; finding that out by
being killed for memory is the worst way. The estimate follows the recorder's
allocations exactly (tests compare the two) and the check runs before the forward.
"""

from __future__ import annotations

import torch

from lmxray.capture.plan import CapturePlan
from lmxray.errors import LmxrayError
from lmxray.trace.fields import field_bytes

HEADROOM = 0.9  # use at most this share of the memory that is free


class CaptureTooBig(LmxrayError):
    """A capture whose buffers would not fit in free memory; callers may re-raise it with their own fix."""


def buffer_bytes(config, plan: CapturePlan, *, batch: int, seq_len: int, kept_rows: int, n_layers: int,
                 n_heads_kept: int, lens_itemsize: int) -> dict[str, int]:
    """Bytes of each recorder buffer for one forward pass (what ``Recorder`` allocates), by readable name.

    The buffers are the trace's fields with a batch axis in front, so their sizes come from the
    field table (``trace.fields.field_bytes``); only the lens residuals are not a trace field.
    """
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    d_model = text.hidden_size
    n_heads = text.num_attention_heads
    n_kv = global_value(text, "num_key_value_heads") or n_heads
    d_head = global_value(text, "head_dim") or d_model // n_heads
    d_mlp = global_value(text, "intermediate_size") or global_value(text, "n_inner") or 4 * d_model
    kept = (lambda width: width) if plan.n_values is None else (lambda width: min(plan.n_values, width))
    sizes = {"layer": n_layers, "embedding_layer": 1, "q_pos": kept_rows, "k_pos": seq_len, "pos": seq_len,
             "head": n_heads_kept, "model_head": n_heads, "kv_head": n_kv, "model_values": kept(d_model),
             "head_values": kept(d_head), "mlp_values": kept(d_mlp)}
    wanted = [name for name, on in (("attention", plan.attention), ("attention_heads", plan.per_head),
                                    ("entropy", plan.row_stats)) if on]
    wanted += [f"components.{c}.{part}" for c in plan.components for part in ("norm", "values")]
    fields = {name: batch * n for name, n in field_bytes(sizes, wanted).items()}
    return {
        "attention maps": fields.get("attention", 0),
        "per-head attention maps": fields.get("attention_heads", 0),
        "row entropy": fields.get("entropy", 0),
        "logit-lens residuals": batch * n_layers * seq_len * d_model * lens_itemsize if plan.lens else 0,
        "component summaries": sum(n for name, n in fields.items() if name.startswith("components.")),
    }


def global_value(config, name: str):
    """A config attribute, or None when the config lacks it or it varies per layer (transformers then refuses to
    give one value; the recorder checks each layer's real shapes)."""
    try:
        value = getattr(config, name, None)
    except Exception:  # transformers' AmbiguousGlobalPerLayerAttributeError
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def free_bytes(device: torch.device) -> tuple[int | None, int | None]:
    """(free host memory, free device memory or None on CPU); None where the system does not say."""
    host = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    host = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    gpu = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None
    return host, gpu


def check_fits(parts: dict[str, int], device: torch.device, n_prompts: int, seq_len: int,
               copies_on_host: int = 1) -> None:
    """Refuse a capture whose buffers do not fit. On CPU, traces of a capture that keeps every row are
    views of the buffers (one copy); kept-row buffers are spread into full arrays (``copies_on_host=2``)."""
    total = sum(parts.values())
    host, gpu = free_bytes(device)
    needs = [(gpu, 1, "GPU memory")] if gpu is not None else []
    needs.append((host, 1 if gpu is not None else copies_on_host, "memory"))
    for free, copies, what in needs:
        if free is not None and copies * total > HEADROOM * free:
            name, biggest = max(parts.items(), key=lambda item: item[1])
            held = f"{_gib(total)}, held twice while the trace is built; " if copies == 2 else ""
            prompts = "1 prompt" if n_prompts == 1 else f"{n_prompts} prompts"
            raise CaptureTooBig(
                f"this capture needs about {_gib(copies * total)} of {what} ({held}{name}: {_gib(biggest)}) "
                f"for {prompts} of up to {seq_len} tokens, but only {_gib(free)} is free",
                "keep less: drop --per-head, capture fewer layers (--layers) or a shorter prompt; in Python, "
                "CapturePlan(layers=..., positions=..., heads=...)",
            )


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"
