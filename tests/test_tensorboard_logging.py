"""TensorBoard output of a search: scalars, HParams, heatmap image, serving."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.plugins.hparams import plugin_data_pb2

from domaintune.data.titles import TUTORIAL_TITLES
from domaintune.errors import UserError
from domaintune.reporting.tensorboard_logging import (
    HParamSpec,
    TrialLogger,
    launch_tensorboard,
    write_experiment_config,
)
from tests.tensorboard_events import read_scalars

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

SPECS = [
    HParamSpec("learning_rate", "float", (1e-5, 1e-3)),
    HParamSpec("dense_units", "int", (0, 512)),
    HParamSpec("pooling", "choice", ["mean", "cls"]),
    HParamSpec("margin", "choice", [0.25, 0.5, 1]),
    HParamSpec("freeze_encoder", "bool"),
]
METRICS = ["objective", "val_loss", "sts_pearson"]

TRIALS = {
    "trial_0000": {
        "hparams": {
            "learning_rate": 1e-4,
            "dense_units": 128,
            "pooling": "mean",
            "margin": 0.5,
            "freeze_encoder": False,
        },
        "final": {"objective": 0.61, "val_loss": 0.30, "sts_pearson": 0.80},
    },
    "trial_0001": {
        "hparams": {
            "learning_rate": np.float64(3e-5),
            "dense_units": np.int64(0),
            "pooling": "cls",
            "margin": 1.0,
            "freeze_encoder": True,
        },
        "final": {"objective": 0.55, "val_loss": 0.40, "sts_pearson": 0.75},
    },
}


def epoch_metrics(trial_index: int, epoch: int) -> dict[str, float]:
    loss = 1.0 / (epoch + 1) + trial_index
    return {
        "loss": loss,
        "val_loss": loss + 0.1,
        "mae": loss / 2,
        "val_mae": loss / 2 + 0.05,
        "sts_pearson": 0.5 + 0.1 * epoch,
    }


def accumulator(path: Path) -> ea.EventAccumulator:
    acc = ea.EventAccumulator(str(path), size_guidance={ea.TENSORS: 0, ea.IMAGES: 0})
    acc.Reload()
    return acc


def hparams_data(acc: ea.EventAccumulator, tag: str) -> plugin_data_pb2.HParamsPluginData:
    content = acc.PluginTagToContent("hparams")
    assert tag in content, content.keys()
    data = plugin_data_pb2.HParamsPluginData()
    data.ParseFromString(content[tag])
    return data


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> Path:
    """A search's logs: config at the root, two trials, the second resumed once."""
    logdir = tmp_path_factory.mktemp("project") / "logs"
    write_experiment_config(logdir, SPECS, METRICS)
    sim = np.eye(9) * 0.5 + 0.5
    for index, (trial_id, trial) in enumerate(TRIALS.items()):
        with TrialLogger(logdir, trial_id) as log:
            for epoch in range(3 if index == 0 else 2):
                log.log_epoch(epoch, epoch_metrics(index, epoch))
            if index == 0:
                log.log_final(trial["hparams"], trial["final"], step=3)
                log.log_heatmap(TUTORIAL_TITLES, sim, step=3)
    # trial_0001 resumes: a second session appends epochs 2..3, then finishes.
    with TrialLogger(logdir, "trial_0001") as log:
        for epoch in (2, 3):
            log.log_epoch(epoch, epoch_metrics(1, epoch))
        log.log_final(TRIALS["trial_0001"]["hparams"], TRIALS["trial_0001"]["final"], step=4)
        log.log_heatmap(TUTORIAL_TITLES, sim, step=4)
    return logdir


def test_layout(logdir):
    assert sorted(p.name for p in logdir.iterdir() if p.is_dir()) == sorted(TRIALS)
    assert len(list(logdir.glob("events.out.tfevents.*"))) == 1
    assert len(list((logdir / "trial_0000").glob("events.out.tfevents.*"))) == 1
    assert len(list((logdir / "trial_0001").glob("events.out.tfevents.*"))) == 2  # resumed


def test_epoch_and_final_scalars(logdir):
    s0 = read_scalars(logdir / "trial_0000")
    assert {"loss", "val_loss", "mae", "val_mae", "sts_pearson", "objective"} <= set(s0)
    assert [step for step, _ in s0["loss"]] == [0, 1, 2]
    np.testing.assert_allclose(
        [v for _, v in s0["loss"]], [epoch_metrics(0, e)["loss"] for e in range(3)], rtol=1e-6
    )
    assert s0["objective"] == [(3, pytest.approx(0.61, rel=1e-6))]
    # val_loss: per-epoch values, then the final value at step 3.
    assert [step for step, _ in s0["val_loss"]] == [0, 1, 2, 3]
    assert s0["val_loss"][-1][1] == pytest.approx(0.30, rel=1e-6)
    assert "similarity_heatmap" not in s0

    s1 = read_scalars(logdir / "trial_0001")  # both event files are read
    assert [step for step, _ in s1["loss"]] == [0, 1, 2, 3]
    np.testing.assert_allclose(
        [v for _, v in s1["loss"]], [epoch_metrics(1, e)["loss"] for e in range(4)], rtol=1e-6
    )
    assert s1["sts_pearson"][-1] == (4, pytest.approx(0.75, rel=1e-6))


def test_read_scalars_last_write_wins(tmp_path):
    with TrialLogger(tmp_path, "t") as log:
        log.log_epoch(0, {"loss": 1.0})
        log.log_epoch(1, {"loss": 0.9})
    time.sleep(0.01)
    with TrialLogger(tmp_path, "t") as log:  # resumed from epoch 1's checkpoint
        log.log_epoch(1, {"loss": 0.5})
    assert read_scalars(tmp_path / "t") == {"loss": [(0, 1.0), (1, 0.5)]}


def test_read_scalars_missing_dir(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_scalars(tmp_path / "nope")


def test_experiment_config_at_root(logdir):
    data = hparams_data(accumulator(logdir), "_hparams_/experiment")
    assert data.WhichOneof("data") == "experiment"
    infos = {h.name: h for h in data.experiment.hparam_infos}
    assert set(infos) == {s.name for s in SPECS}
    lr = infos["learning_rate"]
    assert lr.domain_interval.min_value == pytest.approx(1e-5)
    assert lr.domain_interval.max_value == pytest.approx(1e-3)
    assert infos["dense_units"].domain_interval.max_value == 512
    assert list(infos["pooling"].domain_discrete.values) and sorted(
        v.string_value for v in infos["pooling"].domain_discrete.values
    ) == ["cls", "mean"]
    assert sorted(v.number_value for v in infos["margin"].domain_discrete.values) == [
        0.25,
        0.5,
        1.0,
    ]
    assert sorted(v.bool_value for v in infos["freeze_encoder"].domain_discrete.values) == [
        False,
        True,
    ]
    assert [m.name.tag for m in data.experiment.metric_infos] == METRICS


def test_experiment_config_rewrite_replaces(tmp_path):
    write_experiment_config(tmp_path, SPECS[:1], ["objective"])
    write_experiment_config(tmp_path, SPECS, METRICS)
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 1
    data = hparams_data(accumulator(tmp_path), "_hparams_/experiment")
    assert len(data.experiment.hparam_infos) == len(SPECS)


def test_session_start_per_trial(logdir):
    for trial_id, trial in TRIALS.items():
        data = hparams_data(accumulator(logdir / trial_id), "_hparams_/session_start_info")
        info = data.session_start_info
        assert info.group_name == trial_id
        hp = info.hparams
        assert set(hp) == set(trial["hparams"])
        assert hp["learning_rate"].number_value == pytest.approx(
            float(trial["hparams"]["learning_rate"])
        )
        assert hp["dense_units"].number_value == int(trial["hparams"]["dense_units"])
        assert hp["pooling"].string_value == trial["hparams"]["pooling"]
        assert hp["margin"].number_value == trial["hparams"]["margin"]
        assert hp["freeze_encoder"].bool_value is bool(trial["hparams"]["freeze_encoder"])


def test_heatmap_image(logdir):
    acc = accumulator(logdir / "trial_0000")
    assert "similarity_heatmap" in acc.Tags()["tensors"]
    assert acc.SummaryMetadata("similarity_heatmap").plugin_data.plugin_name == "images"
    (event,) = acc.Tensors("similarity_heatmap")
    assert event.step == 3
    width, height, png = event.tensor_proto.string_val
    assert int(width) > 100 and int(height) > 100
    assert png.startswith(PNG_SIGNATURE) and len(png) > 1000


def test_hparam_spec_validation():
    with pytest.raises(ValueError, match="min, max"):
        HParamSpec("lr", "float", (1e-3,))
    with pytest.raises(ValueError, match="min > max"):
        HParamSpec("units", "int", (10, 1))
    with pytest.raises(ValueError, match="all str"):
        HParamSpec("x", "choice", ["a", 1])
    with pytest.raises(ValueError, match="unknown kind"):
        HParamSpec("x", "log", (1, 2))
    with pytest.raises(ValueError, match="duplicate"):
        write_experiment_config(Path("/nonexistent"), [SPECS[0], SPECS[0]], [])


def test_trial_logger_rejects_bad_ids_and_closed_use(tmp_path):
    for bad in ("", "..", "a/b"):
        with pytest.raises(ValueError):
            TrialLogger(tmp_path, bad)
    log = TrialLogger(tmp_path, "t")
    with pytest.raises(RuntimeError, match="closed"):
        log.log_epoch(0, {"loss": 1.0})


def test_launch_tensorboard_missing_logdir(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        launch_tensorboard(tmp_path / "logs")


def _read_lines(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)


@pytest.mark.timeout(180)  # above its own waits: 30 + 20 + 60 s
def test_launch_tensorboard_serves_runs(logdir):
    code = (
        "import sys; from pathlib import Path; "
        "from domaintune.reporting.tensorboard_logging import launch_tensorboard; "
        "launch_tensorboard(Path(sys.argv[1]), port=0, host='127.0.0.1')"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(logdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        # As from a terminal: a suite started in the background (`&`) passes
        # SIGINT on ignored, and the child would never see the Ctrl-C.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True).start()
    try:
        line = lines.get(timeout=30)
        url = next(w for w in line.split() if w.startswith("http://"))
        assert url.startswith("http://127.0.0.1:")
        deadline = time.monotonic() + 20
        runs: list = []
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url.rstrip("/") + "/data/runs", timeout=5) as resp:
                    assert resp.status == 200
                    runs = json.loads(resp.read())
            except OSError:
                pass
            if set(TRIALS) <= set(runs):
                break
            time.sleep(0.3)
        assert set(TRIALS) <= set(runs), runs
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert resp.status == 200

        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(timeout=60) == 0  # slow to stop on a loaded 2-core machine
        assert "stopped" in lines.get(timeout=5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
