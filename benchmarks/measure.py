"""Measurement helpers shared by the benchmark scripts: timing, peak memory, machine and source identity."""

from __future__ import annotations

import contextlib
import cProfile
import gc
import io
import os
import platform
import pstats
import subprocess
import time

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def out_of_memory(exc: BaseException) -> str:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return f"out of memory: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"


def time_modes(modes: dict, device: torch.device, repeats: int) -> tuple[dict, dict, dict]:
    """Wall and process-CPU seconds per call for each mode: one warm-up each, then ``repeats`` rounds,
    modes interleaved so drift and other load hit every mode alike. A mode that runs out of memory
    is dropped (its error returned) and the others go on."""
    errors: dict[str, str] = {}
    for name, fn in modes.items():
        try:
            fn()
        except torch.cuda.OutOfMemoryError as exc:
            errors[name] = out_of_memory(exc)
    sync(device)
    live = {m: fn for m, fn in modes.items() if m not in errors}
    wall: dict[str, list[float]] = {m: [] for m in live}
    cpu: dict[str, list[float]] = {m: [] for m in live}
    for _ in range(repeats):
        for name, fn in live.items():
            if name in errors:
                continue
            sync(device)
            start, start_cpu = time.perf_counter(), time.process_time()
            try:
                fn()
                sync(device)
            except torch.cuda.OutOfMemoryError as exc:
                errors[name] = out_of_memory(exc)
                continue
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    wall = {m: v for m, v in wall.items() if m not in errors}
    cpu = {m: v for m, v in cpu.items() if m not in errors}
    return wall, cpu, errors


def cuda_memory(fn, device: torch.device) -> tuple[float, float]:
    """(absolute peak MiB, peak minus memory allocated before the call) of one call on CUDA."""
    gc.collect()
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    return peak / 2**20, (peak - before) / 2**20


# -- CPU memory: the RSS high-water mark of this process ---------------------------------------
def proc_status(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_rss_peak() -> bool:
    """Reset the RSS high-water mark (Linux >= 4.0), so loading the model does not hide the mode's peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# -- profiling --------------------------------------------------------------------------
def profile_mode(fn, top: int) -> str:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


def rounded(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(x, nd)


def safe_ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else round(a / b, 3)


def source_state() -> dict:
    """The git commit of the checkout and whether src/ has uncommitted changes (None outside git)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=root, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "src_dirty": None}
    return {"commit": sha, "src_dirty": bool(dirty)}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    return f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
