"""Spreading one model over several devices with accelerate's device maps, so a model bigger than one GPU still
runs in one worker: each block runs where its weights are, and capture sees the same forward pass."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import tempfile
import weakref
from typing import Callable

from lmxray.adapters import get_path
from lmxray.errors import LmxrayError
from lmxray.models.model import Model

STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")  # accelerate's names
INSTALL_FIX = "pip install 'lmxray[ray]' (it brings accelerate)"


def parse_device_map(text: str | None) -> str | dict | None:
    """``--device-map``: a strategy name or a JSON object {module path: device} (a GPU index, "cpu" or "disk")."""
    if text is None or text in STRATEGIES:
        return text
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError:
        mapping = None
    if not isinstance(mapping, dict) or not mapping or not all(
            isinstance(k, str) and (isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)))
            for k, v in mapping.items()):
        raise LmxrayError(f"--device-map '{text}' is neither {', '.join(STRATEGIES)} nor a JSON object of module "
                          "paths to devices", 'pass --device-map auto, or e.g. \'{"model.layers.0": 0, "": 1}\'')
    return mapping


def check_accelerate() -> None:
    """Refuse a device map at once when accelerate is missing (before any model is loaded)."""
    if importlib.util.find_spec("accelerate") is None:
        raise LmxrayError("--device-map needs the accelerate package, which is not installed", INSTALL_FIX)


def check_devices(device_map: dict) -> None:
    """Every device of a map is "cpu", "disk", or a GPU this process sees (an index or "cuda:N")."""
    import torch

    gpus = torch.cuda.device_count()
    for module, device in device_map.items():
        if device in ("cpu", "disk"):
            continue
        match = re.fullmatch(r"cuda:(\d+)", device) if isinstance(device, str) else None
        index = device if isinstance(device, int) else (int(match.group(1)) if match else None)
        if index is None or not 0 <= index < gpus:
            have = f"GPU 0..{gpus - 1}" if gpus else "no GPU"
            raise LmxrayError(f"--device-map puts {module or 'the model'} on {device!r}, and this process has {have}",
                              f"map modules to cpu, disk{' or a GPU index' if gpus else ''}")


def check_map(device_map: dict, hf) -> None:
    """The map fits ``hf`` (weightless is enough): every parameter falls under one of its module paths, every path
    holds a parameter or a buffer, and weights shared by several modules (tied embeddings) stay on one device."""
    named = list(hf.named_parameters(remove_duplicate=False))
    names = [name for name, _ in named]
    left = next((name for name in names if _place(name, device_map) is None), None)
    if left is not None:
        raise LmxrayError(f"--device-map places no module that holds {left}",
                          'add its module (or "" for all the rest) to the map, or pass --device-map auto')
    held = names + [name for name, _ in hf.named_buffers()]
    unknown = next((path for path in device_map if not any(_under(name, path) for name in held)), None)
    if unknown is not None:
        raise LmxrayError(f"--device-map names {unknown!r}, which holds no weight of this model",
                          "use the module paths of the model's named_parameters(), or pass --device-map auto")
    shared: dict[int, list[str]] = {}
    for name, weight in named:
        shared.setdefault(id(weight), []).append(name)
    for tied in shared.values():
        places = {str(_place(name, device_map)) for name in tied}
        if len(places) > 1:
            raise LmxrayError(f"--device-map puts one shared weight on {' and '.join(sorted(places))}: "
                              f"{' and '.join(tied)} are tied", "map the modules that hold them to the same device")


def disjoint(device_map: dict, hf) -> dict:
    """The map with each module path that holds another of its paths (e.g. ``""`` beside ``"model.layers.1"``)
    replaced by its children and own weights, on its device: accelerate places a map of disjoint modules only."""
    out = dict(device_map)
    while (outer := next((p for p in out if any(q != p and _under(q, p) for q in out)), None)) is not None:
        device = out.pop(outer)
        module = hf.get_submodule(outer)
        own = [name for name, _ in module.named_parameters(recurse=False)] + \
              [name for name, _ in module.named_buffers(recurse=False)]
        for name in own + [name for name, _ in module.named_children()]:
            path = f"{outer}.{name}" if outer else name
            out.setdefault(path, device)  # a path the map names keeps its own device
    return out


def _under(name: str, path: str) -> bool:
    return path == "" or name == path or name.startswith(path + ".")


def _place(name: str, device_map: dict):
    """The device the map gives the parameter ``name``: its longest module path's; None when no path holds it."""
    paths = [path for path in device_map if _under(name, path)]
    return device_map[max(paths, key=len)] if paths else None


def load_placed(load: Callable[..., Model], device_map: str | dict, weightless: Model | None) -> Model:
    """Pretrained weights read from their files straight to the devices of ``device_map`` (transformers' big-model
    loading: the host never holds the whole model); ``load`` is models.loader.load with the spec bound,
    ``weightless`` its card (engines/model_ref.py), whose modules a map is checked against."""
    check_accelerate()
    if isinstance(device_map, dict):
        check_devices(device_map)
        check_map(device_map, weightless.hf)
        device_map = disjoint(device_map, weightless.hf)
    # a strategy may put what fits nowhere else on disk (transformers then needs a folder for it)
    offload = _offload_folder() if isinstance(device_map, str) or _to_disk(device_map) else None
    try:
        model = load(placement={"device_map": device_map, "offload_folder": offload})
    except BaseException:
        if offload:
            shutil.rmtree(offload, ignore_errors=True)
        raise
    if offload:
        _remove_with(model.hf, offload)
    return model


def spread(model: Model, device_map: str | dict) -> Model:
    """Dispatch a model built on the host (random weights) by ``device_map`` (a strategy spreads the blocks over the
    visible GPUs, whole blocks only); modules mapped to "disk" are read from a temporary folder removed with it."""
    check_accelerate()
    from accelerate import dispatch_model, infer_auto_device_map
    from accelerate.utils import get_balanced_memory

    hf = model.hf
    block = type(get_path(hf, model.spec.layers)[0]).__name__  # a block never straddles two devices
    if isinstance(device_map, str):
        balanced = None if device_map == "sequential" else get_balanced_memory(
            hf, no_split_module_classes=[block], dtype=hf.dtype, low_zero=device_map == "balanced_low_0")
        device_map = infer_auto_device_map(hf, max_memory=balanced, no_split_module_classes=[block], dtype=hf.dtype)
    check_devices(device_map)
    check_map(device_map, hf)
    device_map = disjoint(device_map, hf)
    offload = _offload_folder() if _to_disk(device_map) else None
    if offload:
        _remove_with(hf, offload)
    try:
        dispatch_model(hf, device_map=device_map, offload_dir=offload)
    except (ValueError, KeyError, RuntimeError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise LmxrayError(f"cannot place the model by --device-map ({reason})",
                          "map every module to a GPU index, cpu or disk, or pass --device-map auto") from None
    return model


def _offload_folder() -> str:
    return tempfile.mkdtemp(prefix="lmxray-offload-")


def _remove_with(hf, folder: str) -> None:
    """Remove the offload ``folder`` when the model that reads from it is gone."""
    weakref.finalize(hf, shutil.rmtree, folder, ignore_errors=True)


def _to_disk(device_map: str | dict) -> bool:
    return isinstance(device_map, dict) and "disk" in device_map.values()
