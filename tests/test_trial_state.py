"""In-trial checkpoints (``--checkpoint-minutes``): a SIGKILLed trial continues
where its last saved state left it and ends with the weights an uninterrupted
run gets; states are used only by their own trial and go when it ends.

The kill test runs the real CLI in subprocesses with the tiny model: an epoch
of a thousand batches of two pairs lasts seconds, so a kill lands mid-epoch,
chosen by the state file's own record of where it was saved.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import keras_tuner as kt
import numpy as np
import pytest

from domaintune import tf_runtime
from domaintune._io import temp_glob
from domaintune.data.pairs import load_pairs
from domaintune.models.siamese import build_model
from domaintune.models.trainable_encoder import CHECKPOINT_NAME, TrainableEncoder
from domaintune.search.fit_callbacks import RestoreBestEpoch, changed_rows
from domaintune.search.space import SearchSpace
from domaintune.search.state_file import StateReader
from domaintune.search.trial_batches import trial_batches
from domaintune.search.trial_state import STATE_NAME, prune_states, trial_checkpoints

from .conftest import run_cli, wait_until
from .tensorboard_events import read_scalars

tf_keras = tf_runtime.load().tf_keras


def _write_pairs(
    path: Path, n: int, seed: int, first_word: int, positives: float = 0.0, topics: bool = False
) -> Path:
    """``n`` distinct pairs of two-word texts. Scores: random (a share
    ``positives`` of them at 1.0, for in-batch losses), or with ``topics`` a
    function of how many of the words' ten topics two texts share (learnable)."""
    rng = random.Random(seed)
    words = [f"w{first_word + i}" for i in range(300)]
    seen: set[tuple[str, str]] = set()
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["base", "ref", "similarity"])
        while len(seen) < n:
            a, b = rng.sample(words, 2), rng.sample(words, 2)
            text_a, text_b = " ".join(a), " ".join(b)
            if text_a == text_b or (text_a, text_b) in seen or (text_b, text_a) in seen:
                continue
            seen.add((text_a, text_b))
            if topics:
                shared = len({words.index(w) % 10 for w in a} & {words.index(w) % 10 for w in b})
                score = round(min(1.0, 0.2 + 0.35 * shared + 0.1 * rng.random()), 3)
            else:
                score = 1.0 if rng.random() < positives else round(rng.random(), 3)
            out.writerow([text_a, text_b, score])
    return path


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("pairs")
    # Learnable: the second epoch improves on the first, so the final weights
    # are the ones trained across the kill (not the first epoch's, restored).
    train = _write_pairs(folder / "train.csv", 2000, 1, 0, topics=True)
    return train, _write_pairs(folder / "val.csv", 200, 2, 0, topics=True)


def _saved_meta(path: Path) -> dict | None:
    """The meta of a state file (None while absent: it appears atomically)."""
    try:
        saved = StateReader(path)
    except (ValueError, FileNotFoundError):
        return None
    saved.close()
    return saved.meta


def _weights(checkpoint: Path) -> dict[str, np.ndarray]:
    with np.load(checkpoint) as file:
        return {name: file[name] for name in file.files}


@pytest.mark.slow
def test_sigkill_mid_epoch_and_rerun_ends_as_an_uninterrupted_run(
    tmp_path, tiny_model_dir, pair_files
):
    train, val = pair_files
    args = ["search", "--base", tiny_model_dir, "--sts", "none", "--train", train, "--val", val]
    args += ["--max-trials", "1", "--epochs", "2", "--seed", "1"]
    args += ["--hp", "batch_size=2", "--hp", "learning_rate=1e-2"]
    reference, project = tmp_path / "reference", tmp_path / "killed"
    run_cli(*args, "--project-dir", reference, "--checkpoint-minutes", "0")

    resumable = [*map(str, args), "--project-dir", str(project), "--checkpoint-minutes", "0.01"]
    log = tmp_path / "killed.log"  # a file: a pipe nobody reads could fill and block it
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "domaintune.cli", *resumable],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    state = project / "trial_0" / STATE_NAME
    try:

        def in_second_epoch() -> bool:  # mid-epoch, with an epoch's logs and best weights
            assert proc.poll() is None, log.read_text()
            meta = _saved_meta(state)
            return meta is not None and meta["epoch"] == 1 and meta["batch"] >= 20

        assert wait_until(in_second_epoch, 600), "no state saved in the second epoch"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    meta = _saved_meta(state)
    assert meta is not None and meta["epoch"] == 1 and meta["batch"] > 0, meta
    assert not (project / "trial_0" / CHECKPOINT_NAME).exists(), "killed after the trial ended"

    # Not a setting of the search: a rerun may change it; 0 saves no more but continues.
    output = run_cli(*args, "--project-dir", project, "--checkpoint-minutes", "0").stdout
    assert "trial #0: continuing from its state saved" in output, output
    assert f"(epoch 2, batch {meta['batch']})" in output, output

    expected = _weights(reference / "trial_0" / CHECKPOINT_NAME)
    found = _weights(project / "trial_0" / CHECKPOINT_NAME)
    assert expected.keys() == found.keys()
    for name, value in expected.items():
        np.testing.assert_allclose(found[name], value, rtol=0, atol=1e-6, err_msg=name)
    # The epochs' logs too: the resumed epoch's loss averages all of its batches.
    before, after = (read_scalars(p / "logs" / "trial-0") for p in (reference, project))
    for tag in ("loss", "val_loss"):
        np.testing.assert_allclose([v for _, v in after[tag]], [v for _, v in before[tag]])
    # The final weights are the second epoch's (not a restored first epoch's).
    assert before["val_loss"][1][1] < before["val_loss"][0][1], before["val_loss"]
    # The state is gone with its trial, and no temp file of one is left.
    assert not list(project.glob(f"trial_*/{STATE_NAME}"))
    assert not list(project.glob(f"trial_*/{temp_glob(STATE_NAME)}"))


# -- in one process: a "kill" drops the encoder and model, a fresh pair resumes --


class _Killed(Exception):
    """Stands for a SIGKILL: whatever is in memory is lost."""


class _KillAfterSave(tf_keras.callbacks.Callback):
    """Raises :class:`_Killed` one batch after the first state saved in
    ``epoch`` (0-based) past its first batches: that batch's work is lost."""

    def __init__(self, state: Path, epoch: int):
        super().__init__()
        self.state, self.epoch, self.armed = state, epoch, False

    def on_train_batch_end(self, batch, logs=None):
        if self.armed:
            raise _Killed
        meta = _saved_meta(self.state)
        self.armed = meta is not None and meta["epoch"] == self.epoch and meta["batch"] >= 3


class _KillAtBatch(tf_keras.callbacks.Callback):
    """Raises :class:`_Killed` at the end of batch ``batch`` (0-based) of ``epoch``."""

    def __init__(self, epoch: int, batch: int):
        super().__init__()
        self.epoch, self.batch, self.now = epoch, batch, -1

    def on_epoch_begin(self, epoch, logs=None):
        self.now = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.now, batch) == (self.epoch, self.batch):
            raise _Killed


def _train(
    model_dir: Path,
    trial_dir: Path,
    pairs: tuple,
    hp: dict,
    *,
    minutes: float,
    kill_in_epoch: int | None = None,
    kill: tuple[int, int] | None = None,
    parent: Path | None = None,
    key_seed: int = 3,
):
    """One trial as the tuner runs it: ``(its encoder, fit's history, the
    checkpoints callback)``, or ``_Killed``. ``parent``: warm-started from
    that checkpoint (changed rows unknown, as for a Hyperband child)."""
    trial_dir.mkdir(exist_ok=True)  # KerasTuner's
    encoder = TrainableEncoder(model_dir)
    if parent is not None:
        encoder.load_weights(parent)
    space = SearchSpace().with_overrides({k: [v] for k, v in {**_HP, **hp}.items()})
    values = space.declare(kt.HyperParameters())
    model = build_model(values, encoder.keras_layer(trainable=True))
    train, val = pairs
    checkpoints = trial_checkpoints(
        trial_dir,
        "0",
        values,
        minutes=minutes,
        seed=key_seed,
        start_epoch=0,
        encoder=encoder,
        pairs=len(train),
    )
    train_data, val_data, clock = trial_batches(
        model.pair_loss, values, train, val, seed=3, encode=lambda: encoder.encode_fn()
    )
    best = RestoreBestEpoch(encoder, 1, None if parent is not None else changed_rows(model))
    killers = [] if kill_in_epoch is None else [_KillAfterSave(checkpoints.path, kill_in_epoch)]
    killers += [] if kill is None else [_KillAtBatch(*kill)]
    history = model.fit(
        checkpoints.dataset(train_data),
        validation_data=val_data,
        epochs=2,
        verbose=0,
        callbacks=[best, *clock, checkpoints.watching(best, clock), *killers],
    )
    return encoder, history.history, checkpoints


_HP = {"batch_size": 4, "learning_rate": 1e-2, "epochs": 2}
# name: (values, share of positive pairs, is the 2nd epoch worse: the best epoch restored?)
_VARIANTS = {
    "lazy": ({}, 0.0, True),
    "mined in-batch": ({"loss": "in_batch_negatives", "hard_negatives": "mined"}, 0.6, False),
    "dense adam, frozen table": ({"sparse_updates": False, "train_embeddings": False}, 0.0, True),
    "warm start": ({}, 0.0, True),
}


@pytest.mark.parametrize("variant", list(_VARIANTS))
def test_a_resumed_trial_trains_as_an_uninterrupted_one(tmp_path, tiny_model_dir, variant):
    hp, positives, restores_best = _VARIANTS[variant]
    train = _write_pairs(tmp_path / "train.csv", 400, 1, 0, positives)
    val = _write_pairs(tmp_path / "val.csv", 60, 2, 1000, positives)
    pairs = (load_pairs(train)[0], load_pairs(val)[0])
    parent = None
    if variant == "warm start":  # a parent's trained checkpoint, as Hyperband's child gets
        encoder, _, _ = _train(tiny_model_dir, tmp_path / "parent", pairs, hp, minutes=0)
        encoder.save_weights(parent := tmp_path / "parent.npz")
    run = dict(parent=parent, minutes=0.0005)  # a save every 30 ms; a batch takes a few

    whole_encoder, whole, _ = _train(tiny_model_dir, tmp_path / "whole", pairs, hp, **run)
    expected = [v.numpy() for v in whole_encoder.variables]
    killed_dir = tmp_path / "killed"
    with pytest.raises(_Killed):
        _train(tiny_model_dir, killed_dir, pairs, hp, kill_in_epoch=1, **run)
    meta = _saved_meta(killed_dir / STATE_NAME)
    assert meta["epoch"] == 1 and meta["batch"] >= 3 and meta["snapshot"], meta

    encoder, history, checkpoints = _train(tiny_model_dir, killed_dir, pairs, hp, **run)
    for found, value in zip(encoder.variables, expected):
        np.testing.assert_allclose(found.numpy(), value, rtol=0, atol=1e-6)
    assert history.keys() == whole.keys()
    for name, values in whole.items():
        np.testing.assert_allclose(history[name], values, rtol=1e-6, err_msg=name)
    # The restore of the best epoch's weights, from the saved state, was exercised.
    assert (whole["val_loss"][1] > whole["val_loss"][0]) == restores_best, whole["val_loss"]
    if hp.get("hard_negatives") == "mined":
        assert meta["mined"] == 1


def test_a_state_of_other_settings_or_damaged_is_not_used(tmp_path, tiny_model_dir, caplog):
    train = _write_pairs(tmp_path / "train.csv", 400, 1, 0)
    val = _write_pairs(tmp_path / "val.csv", 60, 2, 1000)
    pairs = (load_pairs(train)[0], load_pairs(val)[0])
    other = {"learning_rate": 3e-2}
    whole_encoder, _, _ = _train(tiny_model_dir, tmp_path / "whole", pairs, other, minutes=0)
    expected = [v.numpy() for v in whole_encoder.variables]

    trial_dir = tmp_path / "trial"
    with pytest.raises(_Killed):  # leaves a state of the default learning rate
        _train(tiny_model_dir, trial_dir, pairs, {}, minutes=0.0005, kill_in_epoch=1)
    state = trial_dir / STATE_NAME
    assert _saved_meta(state) is not None
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(state.read_bytes()[:-100])  # e.g. a disk that filled up

    for why, leftover in (("written for other settings", None), ("unreadable", damaged)):
        if leftover is not None:
            state.write_bytes(leftover.read_bytes())
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="domaintune.search"):
            encoder, _, checkpoints = _train(tiny_model_dir, trial_dir, pairs, other, minutes=0)
        assert f"trial #0: its saved state {state} is {why}" in caplog.text
        assert not state.exists()
        for found, value in zip(encoder.variables, expected):  # trained from its start
            np.testing.assert_allclose(found.numpy(), value, rtol=0, atol=1e-6)


def test_no_state_is_taken_at_an_epochs_last_batch(tmp_path, tiny_model_dir):
    """It would resume an empty epoch, which tf_keras refuses; the epoch's end
    is saved once its validation has run instead."""
    train = _write_pairs(tmp_path / "train.csv", 400, 1, 0)
    val = _write_pairs(tmp_path / "val.csv", 60, 2, 1000)
    pairs = (load_pairs(train)[0], load_pairs(val)[0])
    last = math.ceil(len(pairs[0]) / _HP["batch_size"]) - 1  # 0-based
    whole_encoder, _, _ = _train(tiny_model_dir, tmp_path / "whole", pairs, {}, minutes=0)
    trial_dir, every_batch = tmp_path / "trial", 1e-9
    for epoch in (0, 1):  # killed in the last batch of each epoch, resumed each time
        with pytest.raises(_Killed):
            _train(tiny_model_dir, trial_dir, pairs, {}, minutes=every_batch, kill=(epoch, last))
        meta = _saved_meta(trial_dir / STATE_NAME)
        assert (meta["epoch"], meta["batch"]) == (epoch, last), meta  # all but the last
    encoder, _, _ = _train(tiny_model_dir, trial_dir, pairs, {}, minutes=every_batch)
    for found, value in zip(encoder.variables, whole_encoder.variables):
        np.testing.assert_allclose(found.numpy(), value.numpy(), rtol=0, atol=1e-6)


def test_states_go_when_their_trial_has_ended(tmp_path):
    statuses = {"0": "COMPLETED", "1": "FAILED", "2": "INVALID", "3": "RUNNING"}
    for trial_id in statuses:
        (tmp_path / f"trial_{trial_id}").mkdir()
        (tmp_path / f"trial_{trial_id}" / STATE_NAME).write_bytes(b"state")
        (tmp_path / f"trial_{trial_id}" / f".{STATE_NAME}.x1.tmp").write_bytes(b"half")
    (tmp_path / "trial_9").mkdir()  # a trial the oracle does not know
    (tmp_path / "trial_9" / STATE_NAME).write_bytes(b"state")
    prune_states(tmp_path, lambda trial_id: statuses[trial_id])
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.glob("trial_*/*"))
    # An INVALID trial is retried (a silent distributed worker's): its state is kept
    # for the retry; temp files of writes are a dead writer's once the trial has ended.
    assert left == [
        f"trial_2/{STATE_NAME}",
        f"trial_3/.{STATE_NAME}.x1.tmp",
        f"trial_3/{STATE_NAME}",
        f"trial_9/{STATE_NAME}",
    ]


def test_checkpoint_minutes_must_not_be_negative(tmp_path, tiny_model_dir):
    from domaintune import api
    from domaintune.errors import UserError

    for bad in (-1, float("nan"), "ten"):
        with pytest.raises(UserError, match="--checkpoint-minutes"):
            api.search(
                base=str(tiny_model_dir),
                project_dir=tmp_path / "p",
                sts="none",
                max_trials=1,
                epochs=1,
                checkpoint_minutes=bad,
            )
    assert not (tmp_path / "p").exists()
    result = run_cli("search", "--checkpoint-minutes", "-1", check=False)
    assert result.returncode == 2 and "--checkpoint-minutes" in result.stderr
