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
    titles: Sequence[str], similarity: np.ndarray, title: str = _DEFAULT_TITLE, *, dpi: int = 100
) -> bytes:
    """Render ``similarity`` (``n x n``, rows/columns in ``titles`` order) as PNG.

    Each cell is annotated with its value; titles label both axes (x labels
    rotated 45 degrees); a colorbar shows the scale, which is ``[0, 1]`` for
    non-negative data and symmetric ``[-1, 1]`` otherwise (widened if values
    fall outside). Returns the PNG file's bytes.
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

    longest = max(len(label) for label in labels)
    side = max(5.0, 0.7 * n + 0.09 * longest + 2.0)
    fig = Figure(figsize=(side + 1.2, side), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(sim, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)

    ax.set_xticks(np.arange(n))
    ax.set_yticks(np.arange(n))
    ax.set_xticklabels(labels, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticklabels(labels)
    ax.set_title(title)
    # Thin white grid between cells.
    ax.set_xticks(np.arange(n + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(n + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1)
    ax.tick_params(which="minor", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)

    fontsize = 9 if n <= 12 else max(4, 9 - (n - 12) // 3)
    for i in range(n):
        for j in range(n):
            value = sim[i, j]
            r, g, b, _ = image.cmap(image.norm(value)) if np.isfinite(value) else (1, 1, 1, 1)
            luminance = 0.299 * r + 0.587 * g + 0.114 * b
            ax.text(
                j,
                i,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=fontsize,
                color="white" if luminance < 0.5 else "black",
            )

    buf = BytesIO()
    # Constrained layout plus a tight bounding box: long, rotated labels are never clipped.
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white", bbox_inches="tight", pad_inches=0.2)
    return buf.getvalue()


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
