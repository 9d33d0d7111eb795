"""Ranking behaviour of the search objectives, on hand-made trial metrics."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from domaintune.errors import UserError
from domaintune.objectives import (
    DOMAIN_TERM_MAX,
    FORMULA_MARKDOWN,
    GUARD_PENALTY,
    IN_TOLERANCE_MAX,
    OBJECTIVES,
    GuardedObjective,
    Objective,
    StsPearsonObjective,
    ValMseObjective,
    get_objective,
    pareto_axes,
    pareto_front,
)

BASE = {"val_mse": 0.040, "val_spearman": 0.60, "retrieval_r1": 0.50, "sts_pearson": 0.850}


def trial(val_mse: float, sts: float | None, **extra: float) -> dict:
    return {"val_mse": val_mse, "sts_pearson": sts, **extra}


def rank(objective: Objective, trials: dict[str, dict], base: dict = BASE) -> list[str]:
    """Trial names, best first."""
    scores = {name: objective.score(t, base)["objective"] for name, t in trials.items()}
    return sorted(scores, key=scores.__getitem__)


def test_better_mse_with_sts_drop_ranks_below_worse_mse_within_tolerance():
    obj = GuardedObjective()
    trials = {
        "fits_but_forgets": trial(0.020, 0.830),  # half the MSE, STS -0.02
        "within_tolerance": trial(0.038, 0.846),  # barely better MSE, STS -0.004
    }
    assert rank(obj, trials) == ["within_tolerance", "fits_but_forgets"]
    violator = obj.score(trials["fits_but_forgets"], BASE)
    assert violator["guard_violated"] == 1.0
    assert violator["sts_delta"] == pytest.approx(-0.02)
    assert obj.score(trials["within_tolerance"], BASE)["guard_violated"] == 0.0


def test_drop_of_exactly_tolerance_is_within_tolerance():
    # 0.850 - 0.845 is 0.0050000000000000044 in floats; it must not trip.
    assert GuardedObjective().score(trial(0.04, 0.845), BASE)["guard_violated"] == 0.0


def test_in_tolerance_mse_and_sts_both_help():
    obj = GuardedObjective()
    ref = obj.score(trial(0.030, 0.848), BASE)["objective"]
    assert obj.score(trial(0.025, 0.848), BASE)["objective"] < ref  # better MSE
    assert obj.score(trial(0.030, 0.860), BASE)["objective"] < ref  # better STS


def test_weight_changes_the_trade_off():
    trials = {
        "domain_fit": trial(0.030, 0.847),  # d=0.75, s=+0.02
        "general_skill": trial(0.036, 0.855),  # d=0.90, s=-0.0333
    }
    assert rank(GuardedObjective(weight=0.1), trials)[0] == "domain_fit"
    assert rank(GuardedObjective(weight=10.0), trials)[0] == "general_skill"


def test_violators_rank_among_themselves_by_drop():
    obj = GuardedObjective()
    trials = {
        "drop_0.05": trial(0.001, 0.800),  # best MSE of all
        "drop_0.01": trial(0.039, 0.840),
        "drop_0.02": trial(0.010, 0.830),
    }
    assert rank(obj, trials) == ["drop_0.01", "drop_0.02", "drop_0.05"]
    assert all(obj.score(t, BASE)["objective"] > GUARD_PENALTY for t in trials.values())


@pytest.mark.parametrize("weight", [0.0, 1.0, 10.0, 1e6])
def test_terrible_in_tolerance_trial_beats_any_violator(weight):
    obj = GuardedObjective(weight=weight)
    terrible = obj.score(trial(100 * BASE["val_mse"], 0.845), BASE)
    assert terrible["domain_term"] == DOMAIN_TERM_MAX  # clipped
    assert terrible["objective"] <= IN_TOLERANCE_MAX
    # Violators with a perfect domain fit, from a marginal drop to the worst.
    for sts in (0.8449, 0.84, -1.0):
        violator = obj.score(trial(0.0, sts), BASE)
        assert violator["guard_violated"] == 1.0
        assert terrible["objective"] < violator["objective"]


def test_guard_holds_when_base_sts_is_perfect():
    # 1 - p_base is ~0, so s explodes; the in-tolerance clip must still hold.
    obj = GuardedObjective(weight=5.0)
    base = {"val_mse": 0.04, "sts_pearson": 1.0}
    inside = obj.score(trial(0.01, 0.996), base)["objective"]
    outside = obj.score(trial(0.01, 0.99), base)["objective"]
    assert math.isfinite(inside) and inside < outside


@pytest.mark.parametrize(
    "t, b",
    [
        (trial(0.030, None), BASE),
        (trial(0.030, 0.70), {**BASE, "sts_pearson": None}),
        ({"val_mse": 0.030}, {"val_mse": 0.040}),
    ],
)
def test_domain_only_when_sts_missing(t, b):
    out = GuardedObjective().score(t, b)
    assert out["domain_only"] == 1.0
    # STS-B was not measured: its terms are absent, never a 0.0 that reads as "unchanged".
    assert not {"sts_term", "sts_delta", "guard_violated"} & set(out)
    assert out["objective"] == pytest.approx(0.75)


def test_domain_only_flag_is_zero_with_sts():
    assert GuardedObjective().score(trial(0.03, 0.85), BASE)["domain_only"] == 0.0


@pytest.mark.parametrize(
    "metric, key, value, expected",
    [
        ("spearman", "val_spearman", 0.80, (1 - 0.80) / (1 - 0.60)),  # 0.5
        ("spearman", "val_spearman", 0.40, (1 - 0.40) / (1 - 0.60)),  # 1.5
        ("retrieval", "retrieval_r1", 0.75, (1 - 0.75) / (1 - 0.50)),  # 0.5
    ],
)
def test_higher_is_better_domain_metrics(metric, key, value, expected):
    obj = get_objective("guarded", domain_metric=metric)
    out = obj.score({key: value, "sts_pearson": 0.85}, BASE)
    assert out["domain_term"] == pytest.approx(expected)
    assert out["objective"] == pytest.approx(expected)  # STS unchanged


def test_higher_is_better_ranking_and_perfect_base():
    obj = GuardedObjective(domain_metric="spearman")
    trials = {
        "good": {"val_spearman": 0.9, "sts_pearson": 0.85},
        "bad": {"val_spearman": 0.5, "sts_pearson": 0.85},
    }
    assert rank(obj, trials) == ["good", "bad"]
    perfect = {"val_spearman": 1.0, "sts_pearson": 0.85}
    assert obj.score({"val_spearman": 1.0}, perfect)["domain_term"] == 0.0
    assert obj.score({"val_spearman": 0.9}, perfect)["domain_term"] == DOMAIN_TERM_MAX


def test_missing_domain_metric():
    obj = GuardedObjective(domain_metric="retrieval")
    with pytest.raises(UserError, match="retrieval_r1"):
        obj.score({"retrieval_r1": 0.5}, {"val_mse": 0.04})  # base lacks it
    with pytest.raises(ValueError, match="retrieval_r1"):
        obj.score({"val_mse": 0.04}, BASE)  # one trial lacks it


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("where", ["trial_mse", "trial_sts", "base_mse", "base_sts"])
def test_non_finite_metrics_raise(bad, where):
    t, b = trial(0.03, 0.85), dict(BASE)
    target = t if where.startswith("trial") else b
    target["val_mse" if where.endswith("mse") else "sts_pearson"] = bad
    with pytest.raises(ValueError, match="not finite"):
        GuardedObjective().score(t, b)


def test_out_of_range_metrics_raise():
    with pytest.raises(ValueError):
        GuardedObjective().score(trial(-0.1, 0.85), BASE)
    with pytest.raises(ValueError):
        GuardedObjective().score(trial(0.03, 1.5), BASE)


def test_val_mse_objective():
    obj = get_objective("val_mse")
    assert not obj.requires_sts
    out = obj.score(trial(0.03, None), BASE)
    assert out["objective"] == 0.03
    assert out["domain_term"] == pytest.approx(0.75)
    assert rank(obj, {"a": trial(0.02, 0.5), "b": trial(0.03, 0.9)}) == ["a", "b"]
    with pytest.raises(ValueError):
        obj.score(trial(math.nan, 0.8), BASE)


def test_sts_pearson_objective():
    obj = get_objective("sts_pearson")
    assert obj.requires_sts and obj.direction == "min"
    out = obj.score(trial(0.9, 0.86), BASE)
    assert out["objective"] == -0.86
    assert out["sts_delta"] == pytest.approx(0.01)
    assert rank(obj, {"a": trial(0.01, 0.80), "b": trial(0.09, 0.87)}) == ["b", "a"]
    with pytest.raises(UserError, match="--sts"):
        obj.score(trial(0.03, None), BASE)
    with pytest.raises(UserError, match="another objective"):
        obj.score(trial(0.03, 0.8), {"val_mse": 0.04, "sts_pearson": None})
    with pytest.raises(UserError, match="--sts"):
        obj.validate(sts_available=False)
    obj.validate(sts_available=True)
    GuardedObjective().validate(sts_available=False)  # guarded degrades instead


def test_pareto_front():
    trials = [
        {"id": "a", "val_mse": 0.010, "sts_pearson": 0.80},  # best MSE
        {"id": "b", "val_mse": 0.020, "sts_pearson": 0.84},  # trade-off
        {"id": "c", "val_mse": 0.030, "sts_pearson": 0.83},  # dominated by b
        {"id": "d", "val_mse": 0.040, "sts_pearson": 0.86},  # best STS
        {"id": "e", "val_mse": 0.010, "sts_pearson": 0.79},  # dominated by a (tie on MSE)
        {"id": "f", "val_mse": 0.005, "sts_pearson": None},  # lacks STS
        {"id": "g", "sts_pearson": 0.99},  # lacks MSE
        {"id": "h", "val_mse": math.nan, "sts_pearson": 0.99},  # diverged
        {"id": "i", "val_mse": 0.020, "sts_pearson": 0.84},  # duplicate of b: kept
    ]
    front = pareto_front(trials)
    assert [t["id"] for t in front] == ["a", "b", "d", "i"]
    assert front[0] is trials[0]
    assert pareto_front([]) == []


def test_pareto_front_follows_the_domain_metric():
    trials = [
        {
            "id": "a",
            "val_mse": 0.01,
            "val_spearman": 0.70,
            "retrieval_r1": 0.5,
            "sts_pearson": 0.80,
        },
        {
            "id": "b",
            "val_mse": 0.02,
            "val_spearman": 0.80,
            "retrieval_r1": 0.6,
            "sts_pearson": 0.84,
        },
        {
            "id": "c",
            "val_mse": 0.03,
            "val_spearman": 0.90,
            "retrieval_r1": 0.4,
            "sts_pearson": 0.83,
        },
    ]
    # mse: lower is better, so a (best MSE) and b (best STS) trade off; c loses to b.
    assert [t["id"] for t in pareto_front(trials, "mse")] == ["a", "b"]
    # spearman and retrieval: higher is better.
    assert [t["id"] for t in pareto_front(trials, "spearman")] == ["b", "c"]
    assert [t["id"] for t in pareto_front(trials, "retrieval")] == ["b"]
    assert pareto_front(trials) == pareto_front(trials, "mse")
    assert pareto_axes("retrieval") == ("retrieval_r1", "sts_pearson")
    with pytest.raises(UserError, match="unknown domain metric 'recall'"):
        pareto_front(trials, "recall")


def test_registry():
    assert set(OBJECTIVES) == {"guarded", "val_mse", "sts_pearson"}
    assert isinstance(get_objective("guarded"), GuardedObjective)
    assert isinstance(get_objective(" Val_MSE "), ValMseObjective)
    assert isinstance(get_objective("sts_pearson"), StsPearsonObjective)
    obj = get_objective("guarded", weight=2.5, tolerance=0.01, domain_metric="spearman")
    assert (obj.weight, obj.tolerance, obj.domain_metric) == (2.5, 0.01, "spearman")
    assert all(cls.direction == "min" for cls in OBJECTIVES.values())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "accuracy"}, "guarded, val_mse, sts_pearson"),
        ({"name": "guarded", "weight": -1.0}, "objective-weight"),
        ({"name": "guarded", "weight": math.nan}, "objective-weight"),
        ({"name": "guarded", "tolerance": -0.001}, "tolerance"),
        ({"name": "val_mse", "tolerance": -0.001}, "tolerance"),
        ({"name": "guarded", "domain_metric": "mrr"}, "mse, spearman, retrieval"),
    ],
)
def test_registry_errors(kwargs, match):
    name = kwargs.pop("name")
    with pytest.raises(UserError, match=match):
        get_objective(name, **kwargs)


def test_worked_example_in_docs_matches_code():
    obj = GuardedObjective()
    base = {"val_mse": 0.040, "sts_pearson": 0.850}
    expected = {
        "A": (0.030, 0.847, 0.77),
        "B": (0.034, 0.853, 0.83),
        "C": (0.020, 0.830, 20.02),
        "D": (4.000, 0.850, 10.00),
    }
    for mse, p, objective in expected.values():
        assert obj.score(trial(mse, p), base)["objective"] == pytest.approx(objective)
    assert rank(obj, {k: trial(m, p) for k, (m, p, _) in expected.items()}, base) == [
        "A",
        "B",
        "D",
        "C",
    ]
    for k in ("A", "B"):
        mse, p, _ = expected[k]
        assert GuardedObjective(weight=10).score(trial(mse, p), base)["objective"] == (
            pytest.approx({"A": 0.95, "B": 0.65}[k])
        )


def test_docs_file_is_in_sync():
    doc = Path(__file__).resolve().parents[1] / "docs" / "objective.md"
    if not FORMULA_MARKDOWN:
        pytest.skip("docstrings stripped (python -OO)")
    assert doc.read_text(encoding="utf-8").strip() == FORMULA_MARKDOWN.strip()


@pytest.mark.parametrize("option, value", [("tolerance", -0.1), ("weight", math.nan)])
def test_bad_guarded_options_name_the_cli_flag(option, value):
    flag = {"tolerance": "--tolerance", "weight": "--objective-weight"}[option]
    with pytest.raises(UserError, match=flag):
        get_objective("guarded", **{option: value})
