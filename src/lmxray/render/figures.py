"""What every figure shares: token labels, atomic PNG/SVG saving, index selection.

Figures are built as ``matplotlib.figure.Figure`` objects without pyplot, so no
display and no global backend are involved (Agg renders PNG, the SVG backend SVG).
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from lmxray.atomic import atomic_output
from lmxray.errors import LmxrayError

FORMATS = {".png": "png", ".svg": "svg"}
DPI = 120
# Text stays text in SVG (searchable, selectable) and "$" in a token is never read as math.
RC = {"svg.fonttype": "none", "text.parse_math": False, "svg.hashsalt": "lmxray"}
EXPECTED_COLOR = "#2ca02c"  # green
UNEXPECTED_COLOR = "#e6550d"  # orange-red
NEUTRAL_COLOR = "#8c8c8c"  # no expectation given for the position
LINE_SPACING = 1.2  # matplotlib's default line height, in font sizes
TICK_SPACE = 7 / 72  # inches between an axis and its tick labels: tick length 3.5 pt + pad 3.5 pt


def token_label(text: str) -> str:
    """A token's text for an axis label: escapes (\\n, \\t) visible, leading spaces kept."""
    return repr(text)[1:-1] if text else "∅"


def figure_format(path: Path) -> str:
    """'png' or 'svg' from the output file's suffix; anything else is a user error."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise LmxrayError(f"cannot write figure {path}: unknown format {Path(path).suffix or '(no suffix)'!r}",
                          "name the output file .png or .svg")
    return fmt


def save_figure(fig: Figure, path, fmt: str | None = None) -> None:
    """Write ``fig`` to ``path`` atomically (temp file in the same directory, then rename)."""
    import matplotlib

    path = Path(path)
    fmt = fmt or figure_format(path)
    with atomic_output(path, "wb") as f, matplotlib.rc_context(RC):
        fig.savefig(f, format=fmt, dpi=DPI, metadata=_no_dates(fmt))


def figure_bytes(fig: Figure, fmt: str = "png") -> bytes:
    """The figure encoded as PNG or SVG bytes (for embedding in the HTML report)."""
    import io

    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format=fmt, dpi=DPI, metadata=_no_dates(fmt))
    return buf.getvalue()


def _no_dates(fmt: str) -> dict:
    """Metadata without creation dates or links, so output is reproducible and holds no URL."""
    if fmt == "svg":
        return {"Date": None, "Creator": None, "Format": None, "Type": None}
    return {"Software": None}


def text_inches(texts, fontsize: float) -> tuple[float, float]:
    """(widest line, tallest block) of ``texts`` at ``fontsize`` points, in inches, as Agg measures them.

    For fixed figure margins: one font measurement per line instead of a layout engine's per-artist passes.
    """
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    renderer, font = RendererAgg(1, 1, DPI), FontProperties(size=fontsize)
    width, lines = 0.0, 0
    for text in texts:
        parts = str(text).split("\n")
        lines = max(lines, len(parts))
        for part in parts:
            if part:
                width = max(width, renderer.get_text_width_height_descent(part, font, ismath=False)[0])
    return width / DPI, lines * fontsize * LINE_SPACING / 72


def rect(size: tuple[float, float], x: float, y: float, w: float, h: float) -> list[float]:
    """[left, bottom, width, height] in fractions of a figure of ``size`` inches, from inches."""
    return [x / size[0], y / size[1], w / size[0], h / size[1]]


def sample_indices(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``0..n-1`` (first and last included, halves rounded up)."""
    if n <= k:
        return list(range(n))
    if k == 1:
        return [0]
    return sorted({(2 * i * (n - 1) + (k - 1)) // (2 * (k - 1)) for i in range(k)})


def resolve_choice(wanted: list[int], n: int, available: list[int], what: str, option: str, fix: str) -> list[int]:
    """Model indices (negative count from the end) checked against the model's ``n`` and what was captured."""
    chosen = []
    for i in wanted:
        j = i + n if i < 0 else i
        if not 0 <= j < n:
            raise LmxrayError(f"{what} {i} is out of range (the model has {n} {what}s)",
                              f"pass {option} with values in 0..{n - 1} or -1..-{n}")
        if j not in available:
            have = ", ".join(map(str, available)) or "none"
            raise LmxrayError(f"{what} {j} is not in the trace (it has {what}s {have})", fix)
        if j not in chosen:
            chosen.append(j)
    return chosen
