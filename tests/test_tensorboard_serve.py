"""``domaintune tensorboard`` on a finished search, checked through TensorBoard's
own HTTP data API (what its HParams dashboard reads), and the STS-B guarded
variant through the event files."""

from __future__ import annotations

import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from domaintune.cli import main
from domaintune.reporting.results import load_trials
from domaintune.reporting.tensorboard_logging import final_tag, run_name
from domaintune.search.overrides import parse_hp_options
from domaintune.search.space import SearchSpace
from tests.tensorboard_events import read_hparams, read_scalars, read_text

from .test_search import _sts_dir

HP = {"batch_size": "8,16", "learning_rate": "1e-3:1e-1"}


def search(project: Path, base: Path, sts: str) -> None:
    hp = [arg for name, value in HP.items() for arg in ("--hp", f"{name}={value}")]
    result = CliRunner().invoke(
        main,
        [
            "search",
            "--base",
            str(base),
            "--sts",
            sts,
            "--project-dir",
            str(project),
            "--max-trials",
            "2",
            "--epochs",
            "1",
            "--seed",
            "1",
            *hp,
        ],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_model_dir) -> Path:
    """A finished two-trial search without STS-B (the guard is off)."""
    project = tmp_path_factory.mktemp("tb") / "search"
    search(project, tiny_model_dir, "none")
    return project


def searched_names() -> set[str]:
    overrides = parse_hp_options(f"{name}={value}" for name, value in HP.items())
    specs = SearchSpace().with_overrides(overrides).hparam_specs()
    return {s.name for s in specs if s.searched}


def _read_lines(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)


class Server:
    """``domaintune tensorboard PROJECT --port 0`` in a subprocess."""

    def __init__(self, project: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "domaintune.cli", "tensorboard", str(project), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
            # As from a terminal: a suite started in the background (`&`) passes
            # SIGINT on ignored, and the child would never see the Ctrl-C.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(
            target=_read_lines, args=(self.proc.stdout, self.lines), daemon=True
        ).start()
        deadline = time.monotonic() + 60
        line = ""
        while "http://" not in line:  # the line with the URL, whatever comes before
            line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.1))
        self.url = next(w for w in line.split() if w.startswith("http://")).rstrip("/")

    def get(self, path: str, **query: str):
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.loads(resp.read())

    def post(self, path: str, body: dict):
        """As the HParams dashboard sends it: a JSON body as text/plain."""
        request = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.loads(resp.read())

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)  # Ctrl-C
        return self.proc.wait(timeout=60)  # slow to stop on a loaded 2-core machine

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def poll(fetch, done, timeout: float):
    """``fetch()`` until ``done(value)`` or ``timeout`` s; the last value
    (TensorBoard loads the event files in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = fetch()
        except OSError:
            value = None
        if (value is not None and done(value)) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def metric_values(group: dict) -> dict[str, float]:
    return {m["name"]["tag"]: m.get("value") for m in group["metricValues"]}


@pytest.mark.timeout(300)  # above its own waits: 60 + 2 x 60 + 60 s
def test_tensorboard_serves_the_search(project):
    trials = [t for t in load_trials(project) if t["status"] == "COMPLETED"]
    assert len(trials) == 2
    runs = {"base", *(run_name(t["trial_id"]) for t in trials)}
    server = Server(project)  # the project dir, not its logs/: both are accepted
    try:
        assert server.url.startswith("http://127.0.0.1:")
        assert runs <= set(poll(lambda: server.get("/data/runs"), runs.issubset, 60) or ())

        experiment = server.post(
            "/data/plugin/hparams/experiment", {"experimentName": "", "includeMetrics": True}
        )
        hparams = {h["name"]: h for h in experiment["hparamInfos"]}
        assert set(hparams) == searched_names() and "learning_rate" in hparams
        assert not {"epochs", "loss"} & set(hparams)  # fixed: in the base run's text
        # Integers as integers: TensorBoard has no integer type and prints a
        # number as 8.0000, so they are integer strings, padded to one width
        # (TensorBoard sorts strings as text; a page does not show the space).
        assert hparams["batch_size"]["type"] == "DATA_TYPE_STRING"
        assert hparams["batch_size"]["domainDiscrete"] == [" 8", "16"]
        assert hparams["learning_rate"]["type"] == "DATA_TYPE_FLOAT64"
        declared = [m["name"]["tag"] for m in experiment["metricInfos"]]
        assert declared[:2] == [final_tag("objective"), final_tag("val_mse")]
        assert final_tag("retrieval_mrr") in declared  # the bundled sample has a retrieval task
        assert not any(tag.startswith("final/sts_") for tag in declared)  # no STS-B
        assert all(tag.startswith("final/") for tag in declared)

        request = {
            "experimentName": "",
            "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE"],
            "colParams": [{"hparam": h, "includeInResult": True} for h in hparams]
            + [{"metric": m["name"], "includeInResult": True} for m in experiment["metricInfos"]],
            "startIndex": 0,
            "sliceSize": 100,
        }

        def complete(response) -> bool:
            groups = {g["name"]: g for g in response["sessionGroups"]}
            return runs <= set(groups) and all(
                set(declared) <= set(metric_values(groups[run])) for run in runs - {"base"}
            )

        response = poll(
            lambda: server.post("/data/plugin/hparams/session_groups", request), complete, 60
        )
        groups = {g["name"]: g for g in response["sessionGroups"]}
        assert "base" in groups  # the untuned base: a row to compare with
        for trial in trials:
            group = groups[run_name(trial["trial_id"])]
            values = metric_values(group)
            assert set(declared) <= set(values), (trial["trial_id"], set(declared) - set(values))
            assert all(math.isfinite(values[tag]) for tag in declared)
            assert values[final_tag("objective")] == pytest.approx(trial["objective"], rel=1e-5)
            batch = group["hparams"]["batch_size"]
            assert batch in (" 8", "16") and int(batch) == trial["hyperparameters"]["batch_size"]
            assert group["hparams"]["learning_rate"] == pytest.approx(
                trial["hyperparameters"]["learning_rate"]
            )

        text = server.get("/data/plugin/text/text", run="base", tag="search")
        assert "STS-B guard OFF" in text[-1]["text"]
        line = server.get(
            "/data/plugin/scalars/scalars",
            run=run_name(trials[0]["trial_id"]),
            tag="final/objective",
        )
        assert [step for _, step, _ in line] == [0, 1]  # a flat line, not one hidden point

        assert server.stop() == 0
        assert "stopped" in server.lines.get(timeout=5)
    finally:
        server.kill()


def test_guarded_search_declares_and_logs_sts(tmp_path, tiny_model_dir):
    """With STS-B, the sts_* metrics and the guard flag are declared and every
    trial has them."""
    project = tmp_path / "search"
    search(project, tiny_model_dir, str(_sts_dir(tmp_path / "sts", 5.0)))
    logs = project / "logs"
    experiment = read_hparams(logs / "base", "_hparams_/experiment").experiment
    declared = [m.name.tag for m in experiment.metric_infos]
    names = ("objective", "val_mse", "sts_delta", "guard_violated", "sts_pearson", "sts_term")
    assert set(map(final_tag, names)) <= set(declared)
    assert "STS-B guard ON" in read_text(logs / "base", "search")
    trials = load_trials(project)
    assert [t["status"] for t in trials] == ["COMPLETED"] * 2
    for trial in trials:
        scalars = read_scalars(logs / run_name(trial["trial_id"]))
        assert set(declared) <= set(scalars), set(declared) - set(scalars)
        assert scalars["final/sts_delta"][-1][1] == pytest.approx(trial["sts_delta"], abs=1e-6)
