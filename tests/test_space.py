"""The search space, its ``--hp`` / ``--hp-file`` overrides, and the oracles built on it.

No training happens here: the KerasTuner oracles are driven directly
(``create_trial`` / ``update_trial`` / ``end_trial``) on a temporary project dir.
"""

from __future__ import annotations

import itertools
import json
import math

import keras_tuner as kt
import pytest
from click.testing import CliRunner

from domaintune import kt_compat
from domaintune.cli import main
from domaintune.errors import UserError
from domaintune.kt_compat import TUNERS
from domaintune.search.oracles import make_oracle
from domaintune.search.overrides import load_hp_file, parse_hp_options
from domaintune.search.space import LATE_PARAMS, PARAM_NAMES, SEARCH_SPACE, SearchSpace

# What KerasTuner's space holds by default: a fixed late parameter stays out.
ORACLE_NAMES = [name for name in PARAM_NAMES if name not in LATE_PARAMS]


def space_with(*options: str) -> SearchSpace:
    return SearchSpace().with_overrides(parse_hp_options(options))


def kt_space(space: SearchSpace, grid: bool = False) -> dict:
    """``{name: KerasTuner hp object}`` of the space's real HyperParameters."""
    return {hp.name: hp for hp in space.kt_hyperparameters(grid=grid).space}


def make(kind: str, space: SearchSpace, tmp_path, max_trials: int = 10):
    oracle = make_oracle(
        kind, space, max_trials=max_trials, max_epochs=2, seed=1, max_consecutive_failures=3
    )
    kt_compat.set_project_dir(oracle, tmp_path / "p")
    oracle.verbose = 0
    return oracle


def run_trials(oracle, limit: int) -> list[dict]:
    """Create and complete trials until the oracle stops (or ``limit``)."""
    seen = []
    for _ in range(limit):
        trial = oracle.create_trial("tuner0")
        if trial.status != "RUNNING":
            assert trial.status == "STOPPED"
            break
        seen.append(dict(trial.hyperparameters.values))
        oracle.update_trial(trial.trial_id, {"objective": 0.5})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    return seen


# -- the declared space -------------------------------------------------------


def test_default_space_as_keras_tuner_hyperparameters():
    hps = kt_space(SearchSpace())
    assert list(hps) == ORACLE_NAMES
    lr = hps["learning_rate"]
    assert isinstance(lr, kt.engine.hyperparameters.Float)
    assert (lr.min_value, lr.max_value, lr.sampling, lr.step) == (1e-6, 1e-4, "log", None)
    assert lr.default == 2e-5
    assert isinstance(hps["batch_size"], kt.engine.hyperparameters.Choice)
    assert list(hps["batch_size"].values) == [8, 16, 32]
    assert isinstance(hps["epochs"], kt.engine.hyperparameters.Fixed)
    assert hps["epochs"].value == 2


# -- parse_hp_options ---------------------------------------------------------


def test_parse_hp_options_forms():
    assert parse_hp_options(["learning_rate=2e-5", "batch_size=8, 16", " clipnorm = 0.5:2 "]) == {
        "learning_rate": ["2e-5"],
        "batch_size": ["8", "16"],
        "clipnorm": ("0.5", "2", "range"),
    }
    assert parse_hp_options([]) == {}


def test_single_value_fixes_the_parameter():
    space = space_with("learning_rate=2e-5")
    param = space.params["learning_rate"]
    assert (param.kind, param.default) == ("fixed", 2e-5)
    hp = kt_space(space)["learning_rate"]
    assert isinstance(hp, kt.engine.hyperparameters.Fixed)
    assert hp.value == 2e-5 and isinstance(hp.value, float)
    # The other parameters keep their declared form.
    assert isinstance(kt_space(space)["clipnorm"], kt.engine.hyperparameters.Float)


def test_values_make_a_choice_of_ints():
    space = space_with("batch_size=8,16")
    hp = kt_space(space)["batch_size"]
    assert isinstance(hp, kt.engine.hyperparameters.Choice)
    assert list(hp.values) == [8, 16]
    assert all(type(v) is int for v in hp.values)
    assert hp.default == 8
    # Values given as floats that are whole numbers are still ints; duplicates collapse.
    assert list(kt_space(space_with("batch_size=8.0,32,32"))["batch_size"].values) == [8, 32]


def test_values_on_a_float_parameter_make_a_choice_of_floats():
    hp = kt_space(space_with("learning_rate=1e-5,3e-5"))["learning_rate"]
    assert isinstance(hp, kt.engine.hyperparameters.Choice)
    assert list(hp.values) == [1e-5, 3e-5]


def test_range_narrows_and_keeps_log_sampling():
    space = space_with("learning_rate=1e-6:1e-5")
    param = space.params["learning_rate"]
    assert (param.kind, param.low, param.high, param.log) == ("float", 1e-6, 1e-5, True)
    assert param.default == 1e-5  # the declared default 2e-5, clamped into the range
    hp = kt_space(space)["learning_rate"]
    assert isinstance(hp, kt.engine.hyperparameters.Float)
    assert (hp.min_value, hp.max_value, hp.sampling, hp.step) == (1e-6, 1e-5, "log", None)
    assert "learning_rate=[1e-06, 1e-05] log" in space.summary()


def test_single_value_fixes_epochs():
    hp = kt_space(space_with("epochs=5"))["epochs"]
    assert isinstance(hp, kt.engine.hyperparameters.Fixed) and hp.value == 5


def test_overrides_do_not_change_the_declared_space():
    space_with("learning_rate=2e-5", "batch_size=8")
    assert SearchSpace().params["learning_rate"].kind == "float"
    assert SearchSpace().params["batch_size"].values == (8, 16, 32)
    assert tuple(p.name for p in SEARCH_SPACE) == PARAM_NAMES


def test_summary_is_the_string_a_resume_compares():
    """search_config.json keeps it and a resume compares it: it must not change."""
    assert SearchSpace().summary() == (
        "learning_rate=[1e-06, 0.0001] log; clipnorm=[0.1, 10] log; "
        "clip_epsilon=[1e-07, 0.001] log; batch_size={8, 16, 32}; epochs=2; patience=1; "
        "loss='angular_mse'; scale=20.0; positive_threshold=0.99; mix_weight=1.0; "
        "clipnorm_scope='variable'; train_embeddings=True; sparse_updates=True; "
        "case_fold=False; grad_cache_chunk=0; hard_negatives='taxonomy'; mined_k=1; "
        "mined_skip=0"
    )
    assert space_with("loss=in_batch_negatives,mixed", "scale=10:40").summary() == (
        "learning_rate=[1e-06, 0.0001] log; clipnorm=[0.1, 10] log; "
        "clip_epsilon=[1e-07, 0.001] log; batch_size={8, 16, 32}; epochs=2; patience=1; "
        "loss={in_batch_negatives, mixed}; scale=[10, 40]; positive_threshold=0.99; "
        "mix_weight=1.0; clipnorm_scope='variable'; train_embeddings=True; "
        "sparse_updates=True; case_fold=False; grad_cache_chunk=0; "
        "hard_negatives='taxonomy'; mined_k=1; mined_skip=0"
    )


# -- bad input ----------------------------------------------------------------


@pytest.mark.parametrize(
    "option, message",
    [
        (
            "lr=1e-5",
            r"unknown hyperparameter 'lr'\. Known: learning_rate, clipnorm, "
            r"clip_epsilon, batch_size, epochs, patience, loss",
        ),
        ("batch_size=abc", r"batch_size: 'abc' is not a valid int \(default is 16\)"),
        ("batch_size=8.5", r"batch_size: '8\.5' is not a valid int"),
        ("batch_size=8,", r"batch_size: '' is not a valid int"),
        ("learning_rate=nan", r"learning_rate: 'nan' is not a valid float"),
        ("learning_rate=inf", r"learning_rate: 'inf' is not a valid float"),
        ("learning_rate=1e-4:1e-6", r"learning_rate=1e-4:1e-6: need min < max and min > 0 \(log"),
        ("learning_rate=1e-5:1e-5", r"need min < max"),
        ("learning_rate=0:1e-5", r"--hp learning_rate=0: must be > 0"),
        ("learning_rate=1e-6:", r"learning_rate: '' is not a valid float"),
        ("batch_size=8:32", r"give a list of values, e\.g\. --hp batch_size=8,16,32"),
        ("batch_size=0", r"--hp batch_size=0: must be >= 1"),
        ("clip_epsilon=2", r"--hp clip_epsilon=2: must be > 0 and <= 1"),
        ("positive_threshold=1.5", r"must be >= 0 and <= 1"),
        ("epochs=0", r"--hp epochs=0: must be >= 1"),
        ("loss=1:3", r"a range needs a numeric parameter"),
        (
            "loss=hinge",
            r"'hinge' is not one of angular_mse, cosent, in_batch_negatives, "
            r"in_batch_negatives_symmetric, mixed",
        ),
    ],
)
def test_bad_override_values_are_user_errors(option, message):
    with pytest.raises(UserError, match=message):
        space_with(option)


@pytest.mark.parametrize("option", ["=5", "learning_rate", "learning_rate=", " = "])
def test_malformed_options_are_user_errors(option):
    with pytest.raises(
        UserError,
        match=r"expected NAME=VALUE, NAME=V1,V2 or NAME=MIN:MAX, "
        r"e\.g\. --hp learning_rate=2e-5",
    ):
        parse_hp_options([option])


# -- --hp-file ----------------------------------------------------------------


def test_hp_file_invalid_yaml(tmp_path):
    path = tmp_path / "hp.yaml"
    path.write_text("learning_rate: [1e-5, 2e-5\nbatch_size: 8\n")
    with pytest.raises(
        UserError,
        match=r"(?s)--hp-file: '.*hp\.yaml' is not valid YAML/JSON: "
        r".*line 2",
    ):
        load_hp_file(path)


def test_hp_file_invalid_json(tmp_path):
    path = tmp_path / "hp.json"
    path.write_text('{"learning_rate": 1e-5,}')
    with pytest.raises(UserError, match=r"is not valid YAML/JSON"):
        load_hp_file(path)


def test_hp_file_that_is_a_list(tmp_path):
    path = tmp_path / "hp.yaml"
    path.write_text("- learning_rate=1e-5\n- batch_size=8\n")
    with pytest.raises(
        UserError,
        match=r"must map hyperparameter names to a value, a list of "
        r"values, or \{min: \.\., max: \.\.\}",
    ):
        load_hp_file(path)


def test_hp_file_missing(tmp_path):
    with pytest.raises(UserError, match=r"--hp-file: cannot read '.*nope\.yaml'"):
        load_hp_file(tmp_path / "nope.yaml")


def test_hp_file_json_with_ranges(tmp_path):
    path = tmp_path / "hp.json"
    path.write_text(
        json.dumps(
            {
                "learning_rate": {"min": 1e-6, "max": 1e-5},
                "clipnorm": {"min": "0.5", "max": "2"},
                "epochs": 3,
            }
        )
    )
    hps = kt_space(SearchSpace().with_overrides(load_hp_file(path)))
    lr, clip = hps["learning_rate"], hps["clipnorm"]
    assert (lr.min_value, lr.max_value, lr.sampling) == (1e-6, 1e-5, "log")
    assert (clip.min_value, clip.max_value, clip.sampling) == (0.5, 2.0, "log")
    assert isinstance(hps["epochs"], kt.engine.hyperparameters.Fixed)
    assert hps["epochs"].value == 3


def test_hp_file_yaml_with_a_list_and_a_range(tmp_path):
    # PyYAML reads "1e-6" (no dot) as a string; the space coerces it.
    path = tmp_path / "hp.yml"
    path.write_text(
        "batch_size: [8, 32]\nlearning_rate: {min: 1e-6, max: 1e-5}\nclip_epsilon: 1e-5\n"
    )
    hps = kt_space(SearchSpace().with_overrides(load_hp_file(path)))
    assert isinstance(hps["batch_size"], kt.engine.hyperparameters.Choice)
    assert list(hps["batch_size"].values) == [8, 32]
    assert (hps["learning_rate"].min_value, hps["learning_rate"].max_value) == (1e-6, 1e-5)
    assert hps["clip_epsilon"].value == 1e-5


@pytest.mark.parametrize(
    "spec", [{"min": 1e-6}, {"min": 1e-6, "max": 1e-5, "step": 10}, {"low": 1e-6, "high": 1e-5}]
)
def test_hp_file_bad_range_keys(tmp_path, spec):
    path = tmp_path / "hp.json"
    path.write_text(json.dumps({"learning_rate": spec}))
    with pytest.raises(UserError, match=r"learning_rate: a range needs exactly 'min' and 'max'"):
        SearchSpace().with_overrides(load_hp_file(path))


def test_hp_file_empty_list(tmp_path):
    path = tmp_path / "hp.yaml"
    path.write_text("batch_size: []\n")
    with pytest.raises(UserError, match=r"batch_size: give at least one value"):
        SearchSpace().with_overrides(load_hp_file(path))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--hp", "lr=1e-5"], "unknown hyperparameter 'lr'"),
        (["--hp", "learning_rate"], "expected NAME=VALUE"),
        (["--hp-file", "{bad}"], "is not valid YAML/JSON"),
    ],
)
def test_search_cli_rejects_bad_overrides_before_any_work(tmp_path, args, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n")
    project = tmp_path / "project"
    args = [str(bad) if a == "{bad}" else a for a in args]
    result = CliRunner().invoke(main, ["search", "--project-dir", str(project), *args])
    assert result.exit_code == 1, result.output
    assert "Error: --hp" in result.output and message in result.output
    assert "Traceback" not in result.output
    assert not project.exists()


# -- grid search --------------------------------------------------------------


def test_grid_variant_gives_log_steps():
    hps = kt_space(SearchSpace(), grid=True)
    lr = hps["learning_rate"]
    assert isinstance(lr, kt.engine.hyperparameters.Float)
    assert (lr.step, lr.sampling) == (10, "log")
    assert list(lr.values) == pytest.approx([1e-6, 1e-5, 1e-4], rel=1e-9)
    assert list(hps["clipnorm"].values) == pytest.approx([0.1, 1.0, 10.0], rel=1e-9)
    assert list(hps["clip_epsilon"].values) == pytest.approx([1e-7, 1e-5, 1e-3], rel=1e-9)
    # Each default sits exactly on its grid (else the grid adds an extra value).
    for name in ("learning_rate", "clipnorm", "clip_epsilon"):
        assert hps[name].default in list(hps[name].values), name
    # The non-grid variant samples continuously.
    assert kt_space(SearchSpace())["learning_rate"].step is None


def test_grid_oracle_enumerates_a_small_grid_and_stops(tmp_path):
    space = space_with("clipnorm=1", "clip_epsilon=1e-5", "batch_size=8,16")
    oracle = make("grid", space, tmp_path, max_trials=50)
    assert isinstance(oracle, kt.oracles.GridSearchOracle)
    seen = run_trials(oracle, limit=50)
    combos = {(round(math.log10(v["learning_rate"])), v["batch_size"]) for v in seen}
    assert len(seen) == len(combos) == 6  # no repeats, nothing off the grid
    assert combos == set(itertools.product([-6, -5, -4], [8, 16]))
    for values in seen:
        assert values["clipnorm"] == 1.0 and values["clip_epsilon"] == 1e-5
        assert values["epochs"] == 2
    assert oracle.create_trial("tuner0").status == "STOPPED"


def test_grid_oracle_over_the_whole_default_space_is_3_to_the_4(tmp_path):
    oracle = make("grid", SearchSpace(), tmp_path, max_trials=1000)
    seen = run_trials(oracle, limit=1000)
    combos = {
        tuple(
            round(math.log10(v[name]), 6) for name in ("learning_rate", "clipnorm", "clip_epsilon")
        )
        + (v["batch_size"],)
        for v in seen
    }
    assert len(seen) == len(combos) == 3 * 3 * 3 * 3


def test_grid_on_a_narrowed_range(tmp_path):
    space = space_with("learning_rate=1e-6:1e-5", "clipnorm=1", "clip_epsilon=1e-5", "batch_size=8")
    seen = run_trials(make("grid", space, tmp_path), limit=20)
    assert sorted(v["learning_rate"] for v in seen) == pytest.approx([1e-6, 1e-5], rel=1e-9)


# -- make_oracle ----------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, cls",
    [
        ("random", kt.oracles.RandomSearchOracle),
        ("bayesian", kt.oracles.BayesianOptimizationOracle),
        ("grid", kt.oracles.GridSearchOracle),
        ("hyperband", kt.oracles.HyperbandOracle),
    ],
)
def test_make_oracle_kinds(kind, cls, tmp_path):
    oracle = make(kind, SearchSpace(), tmp_path)
    assert type(oracle) is cls
    assert oracle.objective.name == "objective"
    assert oracle.objective.direction == "min"
    assert oracle.max_consecutive_failed_trials == 3
    assert [hp.name for hp in oracle.get_space().space] == ORACLE_NAMES
    # A first trial can be created and carries every parameter.
    trial = oracle.create_trial("tuner0")
    assert trial.status == "RUNNING"
    assert set(ORACLE_NAMES) <= set(trial.hyperparameters.values)


def test_make_oracle_unknown_kind():
    assert TUNERS == ("random", "bayesian", "hyperband", "grid")
    with pytest.raises(ValueError, match="unknown tuner 'annealing'"):
        make_oracle(
            "annealing",
            SearchSpace(),
            max_trials=1,
            max_epochs=1,
            seed=0,
            max_consecutive_failures=1,
        )


def test_random_oracle_respects_fixed_and_range_overrides(tmp_path):
    space = space_with("batch_size=8", "learning_rate=1e-6:1e-5", "clipnorm=0.5,2")
    oracle = make("random", space, tmp_path, max_trials=12)
    seen = run_trials(oracle, limit=20)
    assert len(seen) == 12  # max_trials, then STOPPED
    assert all(v["batch_size"] == 8 for v in seen)
    assert all(1e-6 <= v["learning_rate"] <= 1e-5 for v in seen)
    assert {v["clipnorm"] for v in seen} <= {0.5, 2.0}
    assert all(1e-7 <= v["clip_epsilon"] <= 1e-3 for v in seen)  # untouched range
    assert len({v["learning_rate"] for v in seen}) == 12  # really sampled
    # Log sampling: most draws fall in the lower decades, unlike linear sampling.
    assert sum(v["learning_rate"] < 5e-6 for v in seen) >= 4


def test_a_fixed_number_can_become_a_range():
    space = SearchSpace().with_overrides(parse_hp_options(["epochs=1:3", "scale=10:40"]))
    hp = space.kt_hyperparameters()
    assert (hp._hps["epochs"][0].min_value, hp._hps["epochs"][0].max_value) == (1, 3)
    assert type(hp._hps["scale"][0]).__name__ == "Float"


def test_a_project_from_before_a_new_hyperparameter_resumes_at_its_default(tmp_path):
    """A space summary written before ``patience`` existed is the same search
    as today's at patience 1, not at patience 0."""
    from domaintune.errors import UserError
    from domaintune.search.project import SearchConfig, prepare_project_dir

    today = SearchSpace().summary()
    before = today.replace("patience=1; ", "")
    assert before != today
    project = tmp_path / "p"
    prepare_project_dir(project, SearchConfig(train="t.csv", space=before), overwrite=False)
    prepare_project_dir(project, SearchConfig(train="t.csv", space=today), overwrite=False)
    prepare_project_dir(project, SearchConfig(train="t.csv", space=before), overwrite=True)
    with pytest.raises(UserError, match="different settings"):
        prepare_project_dir(
            project, SearchConfig(train="t.csv", space=space_with("patience=0").summary()), False
        )


def test_a_fixed_late_hyperparameter_stays_out_of_the_oracles_space():
    """KerasTuner spends a seed step per hyperparameter: a fixed ``patience``
    in its space would change every seeded search's trials. Searched, it is in."""
    assert "patience" not in kt_space(SearchSpace())
    fixed = space_with("patience=0")
    assert "patience" not in kt_space(fixed) and fixed.params["patience"].default == 0
    searched = kt_space(space_with("patience=0,2"))["patience"]
    assert isinstance(searched, kt.engine.hyperparameters.Choice)
