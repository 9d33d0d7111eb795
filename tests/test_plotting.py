"""Similarity heatmaps (domaintune.reporting.plotting) and the tutorial titles."""

from __future__ import annotations

import struct
import sys

import numpy as np
import pytest

from domaintune.data.titles import TUTORIAL_TITLES
from domaintune.errors import UserError
from domaintune.reporting import plotting

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def block_embeddings(n_blocks: int = 3, per_block: int = 3, dim: int = 16) -> np.ndarray:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(n_blocks, dim)) * 3
    rows = [c + rng.normal(scale=0.3, size=dim) for c in centers for _ in range(per_block)]
    return np.stack(rows).astype(np.float32)


def test_tutorial_titles():
    assert len(TUTORIAL_TITLES) == 9
    assert len(set(TUTORIAL_TITLES)) == 9
    assert TUTORIAL_TITLES[0] == "Data Scientist"
    assert TUTORIAL_TITLES[-1] == "Product Marketing Manager"
    assert plotting.TUTORIAL_TITLES is TUTORIAL_TITLES


def test_cosine_similarity_matrix_values():
    emb = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [-3.0, 0.0], [0.0, 0.0]])
    sim = plotting.cosine_similarity_matrix(emb)
    assert sim.shape == (5, 5)
    np.testing.assert_allclose(sim, sim.T)
    np.testing.assert_allclose(np.diag(sim)[:4], 1.0)
    assert sim[0, 1] == pytest.approx(0.0)
    assert sim[0, 2] == pytest.approx(1 / np.sqrt(2))
    assert sim[0, 3] == pytest.approx(-1.0)
    # A zero vector is similar to nothing, and never NaN.
    assert np.all(sim[4] == 0.0) and np.all(np.isfinite(sim))
    assert sim.max() <= 1.0 and sim.min() >= -1.0


def test_cosine_similarity_matrix_rejects_1d():
    with pytest.raises(ValueError, match="2-D"):
        plotting.cosine_similarity_matrix(np.ones(3))


def test_heatmap_png_bytes():
    sim = plotting.cosine_similarity_matrix(block_embeddings())
    png = plotting.similarity_heatmap_png(TUTORIAL_TITLES, sim, title="Base model")
    assert png.startswith(PNG_SIGNATURE)
    width, height = png_size(png)
    assert 300 <= width <= 3000 and 300 <= height <= 3000


def test_heatmap_png_card_size():
    """For a TensorBoard card (~350-450 px wide): compact, long titles cut."""
    sim = plotting.cosine_similarity_matrix(block_embeddings())
    png = plotting.similarity_heatmap_png(TUTORIAL_TITLES, sim, "trial-3", card=True)
    width, height = png_size(png)
    assert 350 <= width <= 650 and 250 <= height <= 450
    long_titles = [f"title {i} " + "x" * 60 for i in range(20)]
    rng = np.random.default_rng(1)
    many = plotting.cosine_similarity_matrix(rng.normal(size=(20, 8)))
    width, height = png_size(plotting.similarity_heatmap_png(long_titles, many, card=True))
    assert width <= 800 and height <= 700


def test_card_cell_text():
    assert [plotting._cell_text(v, card=True) for v in (0.824, -0.14, 1.0, -1.0, 0.0)] == [
        ".82",
        "-.14",
        "1",
        "-1",
        ".00",
    ]
    assert plotting._cell_text(0.824, card=False) == "0.82"


def test_heatmap_png_negative_values_and_small_input():
    sim = np.array([[1.0, -0.4], [-0.4, 1.0]])
    png = plotting.similarity_heatmap_png(["a", "b"], sim)
    assert png.startswith(PNG_SIGNATURE)
    assert min(png_size(png)) > 100


def test_heatmap_png_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        plotting.similarity_heatmap_png(["a", "b", "c"], np.eye(2))


def test_save_heatmap_atomic(tmp_path):
    sim = plotting.cosine_similarity_matrix(block_embeddings())
    target = tmp_path / "heatmap.png"
    target.write_bytes(b"old")
    out = plotting.save_similarity_heatmap(target, TUTORIAL_TITLES, sim)
    assert out == target
    data = target.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    assert [p.name for p in tmp_path.iterdir()] == ["heatmap.png"]  # no temp file left


def test_save_heatmap_missing_parent(tmp_path):
    target = tmp_path / "missing" / "heatmap.png"
    with pytest.raises(UserError, match="does not exist"):
        plotting.save_similarity_heatmap(target, ["a"], np.ones((1, 1)))
    assert not target.parent.exists()


def test_save_heatmap_onto_directory(tmp_path):
    with pytest.raises(UserError, match="directory"):
        plotting.save_similarity_heatmap(tmp_path, ["a"], np.ones((1, 1)))


_PYPLOT_PROBE = """
import sys
import numpy as np
{setup}
from domaintune.reporting import plotting
sim = plotting.cosine_similarity_matrix(np.eye(3, dtype=np.float32))
png = plotting.similarity_heatmap_png(["a", "b", "c"], sim, title="probe")
assert png.startswith(b"\\x89PNG")
{check}
print("ok")
"""


@pytest.mark.parametrize(
    "setup, check",
    [
        # The package never imports pyplot itself...
        ("", "assert 'matplotlib.pyplot' not in sys.modules, 'plotting imported pyplot'"),
        # ...and leaves a user's pyplot session as it was: backend and open figures.
        (
            "import matplotlib; matplotlib.use('svg')\n"
            "import matplotlib.pyplot as plt\nplt.figure()",
            "assert plt.get_backend() == 'svg', plt.get_backend()\n"
            "assert plt.get_fignums() == [1], plt.get_fignums()",
        ),
    ],
)
def test_heatmap_leaves_pyplot_alone(setup, check):
    """In a fresh interpreter: what pyplot state exists before, exists after."""
    import subprocess

    code = _PYPLOT_PROBE.format(setup=setup, check=check)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
