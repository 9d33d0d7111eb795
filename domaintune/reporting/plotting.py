"""Similarity heatmaps of sentence embeddings, as PNG.

Kept apart from the rest of domaintune (like ``optuna.visualization``):
matplotlib is imported lazily inside the functions, and only through its
object-oriented API with an explicit Agg canvas, so importing this module is
cheap and plotting never touches pyplot's global backend or figure state
(safe in headless runs and in threads).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np

from domaintune._io import write_atomic
from domaintune.data.titles import TUTORIAL_TITLES
from domaintune.errors import UserError
from domaintune.evaluation.similarity import cosine_similarity_matrix  # re-exported

__all__ = [
    "TUTORIAL_TITLES",
    "cosine_similarity_matrix",
    "save_similarity_heatmap",
    "similarity_heatmap_png",
]

_DEFAULT_TITLE = "Cosine similarity"


def _check_inputs(titles: Sequence[str], similarity: np.ndarray) -> tuple[list[str], np.ndarray]:
    labels = [str(t) for t in titles]
    sim = np.asarray(similarity, dtype=np.float64)
    n = len(labels)
    if n == 0:
        raise ValueError("need at least one title")
    if sim.shape != (n, n):
        raise ValueError(f"similarity must have shape ({n}, {n}) for {n} titles, got {sim.shape}")
    return labels, sim


def similarity_heatmap_png(
    titles: Sequence[str],
    similarity: np.ndarray,
    title: str = _DEFAULT_TITLE,
    *,
    dpi: int = 100,
    card: bool = False,
) -> bytes:
    """Render ``similarity`` (``n x n``, rows/columns in ``titles`` order) as PNG.

    Each cell is annotated with its value; titles label both axes (x labels
    rotated 45 degrees); a colorbar shows the scale, which is ``[0, 1]`` for
    non-negative data and symmetric ``[-1, 1]`` otherwise (widened if values
    fall outside). Returns the PNG file's bytes.

    ``card=True`` draws for a small display, e.g. a TensorBoard image card
    (about 400-500 pixels wide): a compact figure (about 560 pixels wide for
    up to 12 titles), larger type, labels cut to :data:`CARD_LABEL_CHARS`
    characters, and the columns numbered like the rows instead of labelled.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels, sim = _check_inputs(titles, similarity)
    n = len(labels)

    finite = sim[np.isfinite(sim)]
    lo = float(finite.min()) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 1.0
    if lo >= 0.0:
        cmap, vmin, vmax = "YlOrRd", 0.0, max(1.0, hi)
    else:
        bound = max(1.0, abs(lo), abs(hi))
        cmap, vmin, vmax = "RdBu_r", -bound, bound

    if card:
        style = _card_style(labels)
    else:
        longest = max(len(label) for label in labels)
        side = max(5.0, 0.7 * n + 0.09 * longest + 2.0)
        fontsize = 9 if n <= 12 else max(4, 9 - (n - 12) // 3)
        style = _Style((side + 1.2, side), labels, labels, 45, fontsize, None, None)
    fig = Figure(figsize=style.figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(sim, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    # A card has no room for a colorbar: the cells show their values.
    colorbar = None if card else fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)

    ax.set_xticks(np.arange(n))
    ax.set_yticks(np.arange(n))
    ax.set_xticklabels(
        style.x_labels,
        rotation=style.x_rotation,
        ha="right" if style.x_rotation else "center",
        rotation_mode="anchor",
    )
    ax.set_yticklabels(style.y_labels)
    ax.set_title(title, fontsize=style.title_size, loc="left" if card else "center")
    if style.tick_size:
        ax.tick_params(which="major", labelsize=style.tick_size)
    if colorbar is not None and style.tick_size:
        colorbar.ax.tick_params(labelsize=style.tick_size - 1)
    # Thin white grid between cells.
    ax.set_xticks(np.arange(n + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(n + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1)
    ax.tick_params(which="minor", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)

    for i in range(n):
        for j in range(n):
            value = sim[i, j]
            r, g, b, _ = image.cmap(image.norm(value)) if np.isfinite(value) else (1, 1, 1, 1)
            luminance = 0.299 * r + 0.587 * g + 0.114 * b
            ax.text(
                j,
                i,
                _cell_text(value, card),
                ha="center",
                va="center",
                fontsize=style.cell_size,
                color="white" if luminance < 0.5 else "black",
            )

    buf = BytesIO()
    # Constrained layout plus a tight bounding box: long, rotated labels are never clipped.
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white", bbox_inches="tight", pad_inches=0.2)
    return buf.getvalue()


def _cell_text(value: float, card: bool) -> str:
    """``0.82``; on a card ``.82`` (``-.14``, ``1``): narrower, so the type can be larger."""
    text = f"{value:.2f}"
    if not card:
        return text
    if text in ("1.00", "-1.00"):
        return text[:-3]
    return text.replace("0.", ".", 1) if text.lstrip("-").startswith("0.") else text


#: ``card=True``: longer titles are cut to this many characters (with an ellipsis).
CARD_LABEL_CHARS = 26


@dataclass(frozen=True)
class _Style:
    figsize: tuple[float, float]
    x_labels: list[str]
    y_labels: list[str]
    x_rotation: int
    cell_size: float
    tick_size: float | None
    title_size: float | None


def _card_style(labels: list[str]) -> _Style:
    """A figure about 420 pixels wide at 100 dpi, the width of a TensorBoard
    image card: rows "Data Scientist 1", columns "1".."n"."""
    n = len(labels)
    cut = [
        label if len(label) <= CARD_LABEL_CHARS else label[: CARD_LABEL_CHARS - 1] + "\u2026"
        for label in labels
    ]
    size = 10.0 if n <= 12 else max(5.0, 10.0 - (n - 12) / 3)
    cell = 0.34 if n <= 12 else max(0.15, 4.1 / n)
    label_width = 0.068 * size / 10 * (max(len(label) for label in cut) + len(str(n)) + 1)
    return _Style(
        figsize=(cell * n + label_width + 0.2, cell * n + 0.55),
        x_labels=[str(i) for i in range(1, n + 1)],
        y_labels=[f"{label} {i}" for i, label in enumerate(cut, start=1)],
        x_rotation=0,
        cell_size=size,
        tick_size=size,
        title_size=size + 1,
    )


def save_similarity_heatmap(
    path: str | os.PathLike[str],
    titles: Sequence[str],
    similarity: np.ndarray,
    title: str = _DEFAULT_TITLE,
) -> Path:
    """Write :func:`similarity_heatmap_png` to ``path`` atomically; return the path.

    The PNG goes to a temporary file next to ``path`` and is renamed over it,
    so readers never see a partial image. The parent directory must exist.
    """
    target = Path(path)
    parent = target.parent
    if not parent.is_dir():
        raise UserError(
            f"cannot write heatmap {target}: directory {parent} does not exist; create it first"
        )
    if target.is_dir():
        raise UserError(
            f"cannot write heatmap to {target}: it is a directory; give a .png file name"
        )
    write_atomic(target, similarity_heatmap_png(titles, similarity, title), fsync=True)
    return target
