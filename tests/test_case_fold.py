"""The ``case_fold`` hyperparameter end to end, on a case-sensitive tiny model:
the siamese model folds before the tower, a trial is scored folded, its export
folds by itself, and ``evaluate --case-fold`` folds a base used untuned."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from domaintune import tf_runtime
from domaintune.cli import main
from domaintune.data.pairs import sample_path
from domaintune.reporting.results import load_base_metrics, load_trials
from tests.tiny_model import build_tiny_saved_model

TITLES = [
    "abogado",
    "data scientist",
    "software developer",
    "nurse",
    "baker",
    "truck driver",
    "civil engineer",
    "primary school teacher",
    "accountant",
    "electrician",
    "chef",
    "pharmacist",
]


@pytest.fixture(scope="module")
def case_sensitive(tmp_path_factory) -> Path:
    return build_tiny_saved_model(tmp_path_factory.mktemp("cs") / "model", lowercase=False)


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(main, [*map(str, args)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def _embed(model_dir: Path, texts: list[str]) -> np.ndarray:
    rt = tf_runtime.load()
    return np.asarray(rt.hub.KerasLayer(str(model_dir))(rt.tf.constant(texts)))


def test_siamese_model_folds_every_text_before_the_tower(case_sensitive):
    from domaintune.models.siamese import build_model
    from domaintune.models.trainable_encoder import TrainableEncoder

    tf = tf_runtime.load().tf
    values = {"learning_rate": 1e-3, "clipnorm": 1.0, "clip_epsilon": 1e-5}
    upper, lower = tf.constant(["ABOGADO", "DATA SCIENTIST"]), tf.constant(TITLES[:2])
    similarity = {}
    for fold in (False, True):
        tower = TrainableEncoder(case_sensitive).keras_layer(trainable=True)
        model = build_model({**values, "case_fold": fold}, tower)
        similarity[fold] = model((upper, lower)).numpy()
        # The loss the model trains and validates on sees the folded texts too.
        loss, _ = model._loss((upper, lower), tf.constant([1.0, 1.0]), training=True)
        if fold:
            assert float(loss) < 1e-4
    np.testing.assert_allclose(similarity[True], 1.0, atol=2e-3)  # clipped at 1 - epsilon
    assert similarity[False].max() < 0.9


def _upper_val(path: Path) -> Path:
    """Validation pairs (TEXT, text) at 1.0: folded, each pair is one text."""
    lines = ["base,ref,similarity", *(f"{t.upper()},{t},1.0" for t in TITLES)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _search_and_export(tmp_path: Path, base: Path, fold: bool) -> tuple[Path, Path]:
    project = tmp_path / f"p{fold}"
    _invoke(
        "search",
        "--base",
        base,
        "--train",
        sample_path(),
        "--val",
        _upper_val(tmp_path / "val.csv"),
        "--sts",
        "none",
        "--project-dir",
        project,
        "--max-trials",
        "1",
        "--epochs",
        "1",
        "--hp",
        "batch_size=32",
        "--hp",
        f"case_fold={str(fold).lower()}",
    )
    out = tmp_path / f"export{fold}"
    _invoke("export", project, "--out", out)
    return project, out


def test_case_fold_trial_is_scored_folded_and_its_export_folds(tmp_path, case_sensitive):
    project, out = _search_and_export(tmp_path, case_sensitive, fold=True)
    (trial,) = load_trials(project)
    assert trial["hyperparameters"]["case_fold"] is True
    # Scored folded: each validation pair is one text, so its similarity is 1.
    assert trial["val_mse"] < 1e-6
    # The base metrics are the untuned base's as given, unfolded.
    assert load_base_metrics(project)["val_mse"] > 0.01

    folded = _embed(out, ["ABOGADO", "abogado", "Abogado", "DATA SCIENTIST", "data scientist"])
    np.testing.assert_array_equal(folded[0], folded[1])
    np.testing.assert_array_equal(folded[1], folded[2])
    np.testing.assert_array_equal(folded[3], folded[4])
    assert json.loads((out / "model_card.json").read_text())["case_fold"] is True

    project, out = _search_and_export(tmp_path, case_sensitive, fold=False)
    assert load_trials(project)[0]["val_mse"] > 0.01
    plain = _embed(out, ["ABOGADO", "abogado"])
    assert float(plain[0] @ plain[1]) < 0.9
    assert json.loads((out / "model_card.json").read_text())["case_fold"] is False


def test_evaluate_case_fold_retrieves_upper_cased_queries(tmp_path, case_sensitive):
    queries = tmp_path / "queries.csv"
    queries.write_text(
        "query,target\n" + "".join(f"{t.upper()},{t}\n" for t in TITLES), encoding="utf-8"
    )
    scores = {}
    for extra in ((), ("--case-fold",)):
        output = _invoke(
            "evaluate",
            "--model",
            case_sensitive,
            "--sts",
            "none",
            "--retrieval",
            queries,
            "--json",
            *extra,
        )
        scores[bool(extra)] = json.loads(output)
    assert scores[True]["case_fold"] is True and "case_fold" not in scores[False]
    assert scores[True]["retrieval_r1"] == 1.0  # each folded query is its target
    assert scores[False]["retrieval_r1"] < 0.5  # upper-case words hash elsewhere
