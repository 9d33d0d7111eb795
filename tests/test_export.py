"""What an export says about itself: the trial, its objective, the STS-B guard,
the embedding size, a serving signature whose output is ``embeddings``, and
how to load it (``import tensorflow_text`` first)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import domaintune as dt
from domaintune.export import MODEL_CARD, SIGNATURE_OUTPUT

from .conftest import REPO, run_cli

FAST = dict(max_trials=2, epochs=1, seed=1, hp={"batch_size": 32, "learning_rate": (1e-3, 1e-1)})


def _sts_dir(folder: Path) -> Path:
    """A small STS-B style dev split."""
    folder.mkdir()
    lines = [
        f"main-news\tx\t2012\t{i}\t{i % 6}\ta nurse works at night {i}\ta night nurse {i % 3}"
        for i in range(12)
    ]
    (folder / "sts-dev.csv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def offline(tmp_path_factory, tiny_model_dir):
    """A search without STS-B, and its best trial exported by the CLI."""
    folder = tmp_path_factory.mktemp("offline")
    result = dt.search(base=tiny_model_dir, sts="none", project_dir=folder / "p", **FAST)
    printed = run_cli("export", folder / "p", "--out", folder / "export")
    return result, folder / "export", printed


def test_the_card_says_the_guard_was_off(offline):
    result, export, _ = offline
    card = json.loads((export / MODEL_CARD).read_text())
    best = result.best
    assert card["trial_id"] == best.trial_id
    assert card["embedding_dim"] == 16 and card["domain_metric"] == "mse"
    assert card["sts_guard"]["on"] is False
    assert card["sts_guard"]["status"].startswith("STS-B guard OFF")
    assert "--sts PATH" in card["sts_guard"]["status"]
    assert card["sts_guard"]["tolerance"] is None and card["sts_guard"]["sts_delta"] is None
    # Not claimed as if the guard ran: no tolerance under the objective, no sts_* metric.
    assert "tolerance" not in card["objective"]
    assert card["objective"]["name"] == "guarded" and card["objective"]["reads"] == "val_mse"
    assert card["objective"]["value"] == pytest.approx(best.objective)
    assert card["objective"]["base_value"] == 1.0
    assert not [k for k in card["metrics"] if k.startswith("sts_")]
    assert card["base_metrics"]["sts_pearson"] is None
    assert card["signature"]["outputs"] == {"embeddings": "float32 [batch, 16], L2-normalised"}
    assert "import tensorflow_text" in card["load"] and "SentencepieceOp" in card["requires"]


def test_the_export_command_prints_the_trial_objective_and_load_snippet(offline):
    result, export, printed = offline
    out = printed.stdout
    prose = " ".join(out.split())  # the sentences are wrapped at 100 columns
    assert prose.startswith(f"Exported trial {result.best.trial_id} to {export}: objective ")
    assert "guarded on val_mse, lower is better; the untuned base: 1)" in prose
    assert "16-dimensional embeddings" in prose and "STS-B guard OFF" in prose
    assert "    import tensorflow_text" in out
    assert f"    encoder = hub.KerasLayer('{export}')" in out
    assert "SentencepieceOp" in out
    assert printed.stderr == ""


def test_serving_signature_output_is_named_embeddings(offline):
    _, export, _ = offline
    from domaintune import tf_runtime

    rt = tf_runtime.load()
    texts = rt.tf.constant(["nurse", "chef de cuisine"])
    loaded = rt.tf.saved_model.load(str(export))
    signature = loaded.signatures["serving_default"]
    assert list(signature.structured_outputs) == [SIGNATURE_OUTPUT] == ["embeddings"]
    assert list(signature.structured_input_signature[1]) == ["texts"]
    served = signature(texts=texts)["embeddings"].numpy()
    # The same embeddings through every way of loading it.
    assert abs(served - loaded(texts).numpy()).max() < 1e-6
    assert abs(served - rt.hub.KerasLayer(str(export))(texts).numpy()).max() < 1e-6
    assert served.shape == (2, 16)


def test_the_card_of_a_guarded_search_has_the_tolerance_and_sts_delta(tmp_path, tiny_model_dir):
    sts = _sts_dir(tmp_path / "sts")
    result = dt.search(base=tiny_model_dir, sts=str(sts), project_dir=tmp_path / "p", **FAST)
    path = result.export(tmp_path / "export")
    card = json.loads((path / MODEL_CARD).read_text())
    best = result.best.metrics
    guard = card["sts_guard"]
    assert guard["on"] is True and guard["tolerance"] == 0.005 and guard["weight"] == 1.0
    assert guard["status"].startswith("STS-B guard ON")
    assert guard["sts_delta"] == pytest.approx(
        best["sts_pearson"] - card["base_metrics"]["sts_pearson"]
    )
    assert guard["violated"] is (best["guard_violated"] == 1.0)


def test_loading_without_tensorflow_text_fails_as_the_card_says(use_m3_dir):
    """The error the README and the card explain is the one TensorFlow gives."""
    from domaintune.export import TENSORFLOW_TEXT_NOTE

    probe = "import sys, tensorflow as tf; tf.saved_model.load(sys.argv[1])"
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(use_m3_dir)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode != 0
    # Which SentencePiece op TensorFlow names first varies from load to load.
    (op,) = re.findall(r"Op type not registered '(Sentencepiece\w*Op)'", proc.stderr)
    assert "tf.contrib" in proc.stderr
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for text in (TENSORFLOW_TEXT_NOTE, readme):
        assert f"'{op}'" in text and "tf.contrib" in text and "import tensorflow_text" in text
