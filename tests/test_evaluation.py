"""domaintune.evaluation: one cosine/angular similarity, pair metrics, a trial's metrics."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from domaintune.data.pairs import PairSet
from domaintune.data.retrieval_sets import retrieval_from_pairs
from domaintune.data.sts import StsPairs
from domaintune.evaluation import names
from domaintune.evaluation.metrics import pair_metrics
from domaintune.evaluation.similarity import (
    angular_similarity,
    cosine_similarity_matrix,
    normalise,
    row_cosine,
)
from domaintune.evaluation.trial import encoder_metrics

VECTORS = {
    "north": [0.0, 2.0],
    "up": [0.0, 1.0],
    "east": [3.0, 0.0],
    "diag": [1.0, 1.0],
    "south": [0.0, -1.0],
    "zero": [0.0, 0.0],
}


def encode(texts):
    return np.asarray([VECTORS[t] for t in texts], np.float32)


def test_normalise_keeps_zero_rows_and_dtype():
    x = normalise(np.array([[3.0, 4.0], [0.0, 0.0]], np.float64))
    np.testing.assert_allclose(x, [[0.6, 0.8], [0.0, 0.0]])
    assert x.dtype == np.float64 and normalise(x, np.float32).dtype == np.float32
    with pytest.raises(ValueError, match="2-D"):
        normalise(np.ones(3))


def test_angular_similarity_is_clipped_and_scale_free():
    a, b = encode(["north", "east", "diag", "south", "zero"]), encode(["up"] * 5)
    np.testing.assert_allclose(row_cosine(a, b), [1.0, 0.0, math.sqrt(0.5), -1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(angular_similarity(a, b), [1.0, 0.5, 0.75, 0.0, 0.5], atol=1e-6)
    # cos of a vector with itself may round above 1: clipped, so never NaN.
    same = np.array([[0.1, 0.7, 0.3]] * 4, np.float32) * [[1], [3], [7], [1e-3]]
    assert np.all(row_cosine(same, same) <= 1.0) and np.all(angular_similarity(same, same) >= 0)
    assert np.isfinite(angular_similarity(same, same)).all()


def test_cosine_similarity_matrix_is_the_row_cosine():
    x = encode(["north", "east", "diag", "zero"])
    sim = cosine_similarity_matrix(x)
    for i in range(len(x)):
        np.testing.assert_allclose(
            sim[i], row_cosine(np.repeat(x[i : i + 1], len(x), 0), x), atol=1e-6
        )


PAIRS = PairSet(
    ["north", "north", "east", "diag"],
    ["up", "east", "south", "east"],
    np.array([1.0, 0.5, 0.5, 0.7], np.float32),
    "pairs.csv",
)


def test_pair_metrics_prefix():
    out = pair_metrics(encode, PAIRS)
    assert list(out) == ["pairs_mse", "pairs_pearson", "pairs_spearman", "n_domain_pairs"]
    # predicted 1.0, 0.5, 0.5, 0.75 against 1.0, 0.5, 0.5, 0.7
    assert out["pairs_mse"] == pytest.approx(0.05**2 / 4, abs=1e-7)
    val = pair_metrics(encode, PAIRS, prefix=names.VAL)
    assert list(val)[:3] == list(names.pair_metric_names(names.VAL))
    assert list(val.values()) == list(out.values())


def test_encoder_metrics():
    sts = StsPairs(
        ["north", "east", "diag"],
        ["up", "up", "up"],
        np.array([5.0, 0.0, 2.5], np.float32),
        "sts.csv",
    )  # angular 1, .5, .75
    rset = retrieval_from_pairs(
        PairSet(["north", "diag", "south"], ["up", "east", "zero"], np.ones(3, np.float32))
    )
    metrics = encoder_metrics(encode, PAIRS, sts, rset)
    assert list(metrics) == [
        names.VAL_MSE,
        names.VAL_PEARSON,
        names.VAL_SPEARMAN,
        names.STS_PEARSON,
        names.RETRIEVAL_R1,
        names.RETRIEVAL_R5,
        names.RETRIEVAL_MRR,
    ]
    assert metrics[names.VAL_MSE] == pair_metrics(encode, PAIRS)["pairs_mse"]
    assert metrics[names.STS_PEARSON] == pytest.approx(1.0)
    # north -> up: rank 1. diag -> east ties with up (cos 0.71): rank 2. south -> zero:
    # the zero vector scores 0 against everything, so it ties with east: rank 2.
    assert metrics[names.RETRIEVAL_R1] == pytest.approx(1 / 3)
    assert metrics[names.RETRIEVAL_R5] == 1.0
    assert metrics[names.RETRIEVAL_MRR] == pytest.approx(2 / 3)
    domain_only = encoder_metrics(encode, PAIRS)
    assert domain_only[names.STS_PEARSON] is None and names.RETRIEVAL_R1 not in domain_only
    constant = PairSet(PAIRS.texts_a, PAIRS.texts_b, np.full(4, 0.5, np.float32))
    assert encoder_metrics(encode, constant)[names.VAL_PEARSON] is None  # NaN -> None


def test_names_do_not_import_scipy():
    import subprocess

    code = (
        "import sys; from domaintune.evaluation import names; "
        "import domaintune.objectives, domaintune.reporting.results; "
        "print('scipy' in sys.modules, 'tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
