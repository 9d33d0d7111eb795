"""``domaintune evaluate --split test``: the README's STS-B ``--split dev|test``.

The shared reference data has no test split, so a small STS-B style folder
and archive stand in for it; the Pearson is recomputed here from the test
file's pairs, so the score must come from that file. (A folder without
``sts-test.csv`` and an offline ``--sts auto`` are in test_bad_inputs.py.)
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import pearsonr

from domaintune import tf_runtime
from domaintune.cli import main

WORDS = ["nurse", "night", "chef", "kitchen", "driver", "truck", "data", "teacher", "school"]


def _split(n: int, offset: int) -> list[tuple[float, str, str]]:
    """``n`` (score, sentence 1, sentence 2) in the STS-B layout's ranges."""
    rng = np.random.default_rng(offset)
    return [
        (
            round(float(rng.uniform(0, 5)), 2),
            " ".join(rng.choice(WORDS, 3)),
            " ".join(rng.choice(WORDS, 3)),
        )
        for _ in range(n)
    ]


def _csv(rows: list[tuple[float, str, str]]) -> str:
    return "".join(
        f"main-news\tx\t2017\t{i:04d}\t{s}\t{a}\t{b}\n" for i, (s, a, b) in enumerate(rows)
    )


def _angular_pearson(model: Path, rows: list[tuple[float, str, str]]) -> float:
    rt = tf_runtime.load()
    layer = rt.hub.KerasLayer(str(model))
    a = layer(rt.tf.constant([r[1] for r in rows])).numpy().astype(np.float64)
    b = layer(rt.tf.constant([r[2] for r in rows])).numpy().astype(np.float64)
    cos = np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    angular = 1 - np.arccos(np.clip(cos, -1, 1)) / np.pi
    return float(pearsonr(angular, [r[0] for r in rows])[0])


@pytest.mark.parametrize("layout", ["folder", "archive"])
def test_split_test_scores_the_test_file(tmp_path, tiny_model_dir, monkeypatch, layout):
    monkeypatch.setenv("DOMAINTUNE_CACHE", str(tmp_path / "cache"))  # the archive's extraction
    dev, test = _split(12, 1), _split(15, 2)
    files = {"sts-dev.csv": _csv(dev), "sts-test.csv": _csv(test)}
    if layout == "folder":
        spec = tmp_path / "stsbenchmark"
        spec.mkdir()
        for name, text in files.items():
            (spec / name).write_text(text, encoding="utf-8")
    else:
        spec = tmp_path / "Stsbenchmark.tar.gz"
        with tarfile.open(spec, "w:gz") as tar:
            for name, text in files.items():
                member = tarfile.TarInfo(f"stsbenchmark/{name}")
                member.size = len(text.encode())
                tar.addfile(member, io.BytesIO(text.encode()))

    def evaluate(*split: str) -> dict:
        args = ["evaluate", "--model", str(tiny_model_dir), "--sts", str(spec), "--json", *split]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    expected = {"test": _angular_pearson(tiny_model_dir, test)}
    expected["dev"] = _angular_pearson(tiny_model_dir, dev)
    assert abs(expected["test"] - expected["dev"]) > 0.05  # the two splits tell apart
    scored = evaluate("--split", "test")
    assert (scored["sts_split"], scored["n_pairs"]) == ("test", 15)
    # (to float32 round-off: the evaluation embeds and compares in float32)
    assert scored["sts_pearson"] == pytest.approx(expected["test"], abs=1e-3)
    default = evaluate()  # dev, unless asked
    assert (default["sts_split"], default["n_pairs"]) == ("dev", 12)
    assert default["sts_pearson"] == pytest.approx(expected["dev"], abs=1e-3)
