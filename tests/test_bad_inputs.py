"""The bad-input battery (issue 15): one table of the mistakes a user can make
with ``search``, ``evaluate``, ``export``, ``results``, ``tensorboard`` and
``data esco``, each held to the same promise:

- exit status 1 (2 when click's own option parsing refuses it);
- exactly one output line starting with ``Error:``, holding the case's needle
  (so the case fails where it means to, not on an earlier mistake);
- no traceback: in-process, the run must end by ``SystemExit``, never by an
  escaped exception;
- nothing written or changed on disk: every file and folder under the case's
  own folder (its inputs, a copy of a finished project, the domaintune cache and
  the temp dir, which point there) and under the shared tiny model has the same
  name, size and mtime after the run. Folder mtimes are not compared: a staging
  folder made and removed again is no change.

Each case runs in-process with click's CliRunner, the command's own code path
(and fast: TensorFlow loads once), from its own folder as the current one. The
read-only volume runs a real process in a private mount namespace. Models are
the tiny test model; every case fails before any training.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from domaintune.cli import main

TEN_MB = 10_000_001  # a text of ten million characters (the limit is 10,000)
ESCO_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "esco"
KERASTUNER = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
OUTSIDE = ("DOMAINTUNE_STS_DIR", "TFHUB_CACHE_DIR")  # would point outside the case's folder
# The settings of the finished project the export/results/tensorboard cases copy;
# the search cases add --max-trials 1 (any that trained would be caught on disk).
FAST = ("--sts", "none", "--hp", "batch_size=32", "--epochs", "1", "--seed", "1")
DAMAGED = "variables/variables.data-00000-of-00001"


@pytest.fixture(scope="module")
def finished_project(tmp_path_factory, tiny_model_dir) -> Path:
    """A finished 2-trial search of the tiny model; only the best keeps its checkpoint."""
    project = tmp_path_factory.mktemp("battery") / "project"
    result = CliRunner().invoke(
        main,
        ["search", "--base", str(tiny_model_dir), "--project-dir", str(project), *FAST]
        + ["--max-trials", "2", "--keep-best", "1"],
    )
    assert result.exit_code == 0, result.output
    assert len(list(project.glob("trial_*/trial.json"))) == 2
    assert len(list(project.glob("trial_*/encoder.npz"))) == 1
    return project


class World:
    """A case's folder: its inputs, made by the case before the run."""

    def __init__(self, root: Path, tiny: Path, project: Path):
        self.root, self.tiny_dir, self._project = root, tiny, project
        self.sockets: list[socket.socket] = []
        for name in ("cache", "tmp"):
            (root / name).mkdir(parents=True)

    @property
    def tiny(self) -> str:
        return str(self.tiny_dir)

    def path(self, name: str) -> str:
        """A path in the world, not created."""
        return str(self.root / name)

    def file(self, name: str, content: str | bytes) -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return str(path)

    def folder(self, name: str, **files: str) -> str:
        (self.root / name).mkdir(parents=True)
        for file, text in files.items():
            self.file(f"{name}/{file}", text)
        return self.path(name)

    def pairs(self, name: str = "pairs.csv", *extra_rows: str, n: int = 12) -> str:
        """A good pair file of ``n`` rows, plus ``extra_rows``."""
        rows = [f"job title {i},other title {i % 5},{0.5 + 0.03 * i:.2f}" for i in range(n)]
        return self.file(name, "\n".join(["base,ref,similarity", *rows, *extra_rows]) + "\n")

    def long_text_jsonl(self, name: str) -> str:
        rows = [{"base": f"title {i}", "ref": f"other {i}", "similarity": 0.75} for i in range(12)]
        rows[3]["ref"] = "x" * TEN_MB
        return self.file(name, "".join(json.dumps(row) + "\n" for row in rows))

    def damaged_base(self) -> str:
        """A copy of the tiny model with its variables file cut in half."""
        copy = self.root / "damaged-model"
        shutil.copytree(self.tiny_dir, copy)
        data = copy / DAMAGED
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
        return str(copy)

    def project(self, name: str = "project") -> str:
        """A copy of the finished project."""
        shutil.copytree(self._project, self.root / name)
        return self.path(name)

    def pruned_trial(self) -> str:
        """The id of the finished project's trial without a checkpoint."""
        (state,) = [
            p for p in self._project.glob("trial_*/trial.json")
            if not (p.parent / "encoder.npz").exists()
        ]  # fmt: skip
        return json.loads(state.read_text())["trial_id"]

    def sts_line(self, i: int, score: float | str = 3.0) -> str:
        return f"main-news\tx\t2012\t{i:04d}\t{score}\ta nurse at night {i}\ta night nurse {i}"

    def sts_dir(self, name: str = "sts", **splits: str) -> str:
        return self.folder(name, **{f"sts-{s}.csv": text for s, text in splits.items()})

    def sts_archive(self, dev: str) -> str:
        """``Stsbenchmark.tar.gz`` (the real name) holding ``stsbenchmark/sts-dev.csv``."""
        archive, data = self.root / "Stsbenchmark.tar.gz", dev.encode()
        member = tarfile.TarInfo("stsbenchmark/sts-dev.csv")
        member.size = len(data)
        with tarfile.open(archive, "w:gz") as tar:
            tar.addfile(member, io.BytesIO(data))
        return str(archive)

    def runs_folder(self) -> str:
        """A runs/ folder (as after `domaintune export ... --out runs/export/0`),
        and a spec below it that names no folder but looks like a TF-Hub handle."""
        self.folder("runs/export/0")
        return "runs/export/1"

    def config_only_project(self) -> str:
        """A project dir with the finished one's search_config.json and no trial."""
        text = (self._project / "search_config.json").read_text()
        return self.folder("x", **{"search_config.json": text})

    def esco(self, name: str) -> str:
        """A copy of an ESCO fixture file (so an output clobbering it shows on disk)."""
        return self.file(name, (ESCO_FIXTURES / name).read_bytes())

    def closed_port(self) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return str(s.getsockname()[1])

    def busy_port(self) -> str:
        """A port something listens on for the whole run."""
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        self.sockets.append(s)
        return str(s.getsockname()[1])

    def close(self) -> None:
        for s in self.sockets:
            s.close()


@dataclass(frozen=True)
class Case:
    id: str
    args: Callable[[World], list[str]]  # makes the case's inputs, returns the arguments
    needle: str  # in the Error line; "{root}" is the world's folder
    code: int = 1
    env: tuple[tuple[str, str], ...] = ()  # "{port}": a closed port
    read_only: str = ""  # a folder of the world that is mounted read-only for the run


def search(w: World, *extra: str) -> list[str]:
    return ["search", "--base", w.tiny, "--project-dir", w.path("p"), *FAST, "--max-trials", "1",
            *extra]  # fmt: skip


def evaluate(w: World, *extra: str) -> list[str]:
    return ["evaluate", "--model", w.tiny, "--sts", "none", *extra]


def esco(w: World, *extra: str) -> list[str]:
    return ["data", "esco", "--occupations", w.esco("occupations_en.csv"), *extra]


WORKER = (("KERASTUNER_TUNER_ID", "worker-1"), ("KERASTUNER_ORACLE_IP", "127.0.0.1"))
LONG = "the second text is 10,000,001 characters long; the limit is 10,000"

CASES = [
    # -- search: the pair files ---------------------------------------------------------
    Case("search-missing-train", lambda w: search(w, "--train", w.path("nope.csv")),
         "{root}/nope.csv: file not found"),
    Case("search-train-is-a-folder", lambda w: search(w, "--train", w.folder("pairs")),
         "{root}/pairs: is not a file"),
    Case("search-wrong-columns",
         lambda w: search(w, "--train", w.file("p.csv", "a,b,c\n" + "x,y,0.5\n" * 12)),
         "missing column(s) 'base', 'ref', 'similarity'; found: 'a', 'b', 'c'"),
    Case("search-score-out-of-range",
         lambda w: search(w, "--train", w.pairs("p.csv", "nurse,chef,1.5")),
         "line 14: score 1.5 is outside [0, 1]"),
    Case("search-empty-file", lambda w: search(w, "--train", w.file("p.csv", "")),
         "the file is empty"),
    Case("search-not-utf8",
         lambda w: search(w, "--train", w.file("p.csv", b"base,ref,similarity\ncaf\xe9,x,0.7\n")),
         "line 2: not valid UTF-8"),
    Case("search-too-few-pairs", lambda w: search(w, "--train", w.pairs("p.csv", n=4)),
         "only 4 usable pairs"),
    Case("search-contradictory-duplicates",
         lambda w: search(w, "--train", w.pairs("p.csv", "job title 1,other title 1,0.9")),
         "pass --dedupe mean"),
    Case("search-text-too-long-csv",  # issue 15.4: about the length, not CSV quoting
         lambda w: search(w, "--train", w.pairs("p.csv", f"nurse,{'x' * TEN_MB},0.7")),
         f"p.csv, line 14: {LONG}"),
    Case("search-text-too-long-jsonl",  # issue 15.4: JSONL loaded it silently
         lambda w: search(w, "--train", w.long_text_jsonl("p.jsonl")),
         f"p.jsonl, line 4: {LONG}"),
    Case("search-missing-val", lambda w: search(w, "--val", w.path("val.csv")),
         "{root}/val.csv: file not found"),
    # -- search: options ------------------------------------------------------------------
    Case("search-hp-not-a-number", lambda w: search(w, "--hp", "learning_rate=fast"),
         "--hp learning_rate: 'fast' is not a valid float"),
    Case("search-hp-empty-range", lambda w: search(w, "--hp", "learning_rate=1e-3:1e-5"),
         "--hp learning_rate=1e-3:1e-5: need min < max"),
    Case("search-hp-unknown", lambda w: search(w, "--hp", "lr=1e-5"),
         "unknown hyperparameter 'lr'"),
    Case("search-hp-batch-size-zero", lambda w: search(w, "--hp", "batch_size=0"),
         "--hp batch_size=0: must be >= 1"),
    Case("search-hp-file-invalid",
         lambda w: search(w, "--hp-file", w.file("hp.yaml", "learning_rate: [1e-5,\n")),
         "hp.yaml' is not valid YAML/JSON"),
    Case("search-unknown-loss", lambda w: search(w, "--hp", "loss=triplet"),
         "--hp loss: 'triplet' is not one of angular_mse"),
    Case("search-unknown-objective", lambda w: search(w, "--objective", "accuracy"),
         "unknown objective 'accuracy'"),
    Case("search-sts-objective-without-sts", lambda w: search(w, "--objective", "sts_pearson"),
         "objective 'sts_pearson' needs STS-Benchmark scores"),
    Case("search-negative-objective-weight", lambda w: search(w, "--objective-weight", "-1"),
         "--objective-weight must be a number >= 0"),
    Case("search-bad-interpolate", lambda w: search(w, "--interpolate", "0.5,2"),
         "--interpolate '0.5,2'"),
    Case("search-bad-augment", lambda w: search(w, "--augment", "shout"),
         "--augment 'shout': unknown kind 'shout'"),
    Case("search-unknown-tuner", lambda w: search(w, "--tuner", "genetic"),
         "Invalid value for '--tuner'", code=2),
    Case("search-val-split-out-of-range", lambda w: search(w, "--val-split", "1.5"),
         "Invalid value for '--val-split'", code=2),
    Case("search-unknown-option", lambda w: search(w, "--trials", "3"),
         "No such option", code=2),
    # -- search: the base model -------------------------------------------------------------
    Case("search-damaged-base",  # issue 15.2: no traceback, no half-made project
         lambda w: search(w, "--base", w.damaged_base()),
         "Cannot load the SavedModel '{root}/damaged-model' (Read less bytes"),
    Case("search-base-missing-folder-like-a-hub-handle",  # issue 15.5: runs/ is a folder
         lambda w: search(w, "--base", w.runs_folder()),
         "'runs/export/1' not found: no such folder"),
    Case("search-base-url-unreachable",  # issue 15.5: no empty tfhub_modules left anywhere
         lambda w: search(w, "--base", f"http://127.0.0.1:{w.closed_port()}/model.tar.gz"),
         "Could not download the TF-Hub model 'http://127.0.0.1:",
         env=(("no_proxy", "127.0.0.1"), ("NO_PROXY", "127.0.0.1"))),
    Case("search-base-not-a-savedmodel", lambda w: search(w, "--base", w.pairs("model.csv")),
         "'{root}/model.csv' exists but is not a SavedModel directory"),
    Case("search-base-empty", lambda w: search(w, "--base", " "), "The base model is empty"),
    # -- search: the project dir --------------------------------------------------------------
    Case("search-project-dir-under-a-file",  # issue 15.1
         lambda w: search(w, "--project-dir", str(Path(w.file("notes.txt", "x")) / "runs")),
         "--project-dir '{root}/notes.txt/runs' cannot be written"),
    Case("search-project-dir-read-only",  # issue 15.1: Errno 30 from mkstemp was a traceback
         lambda w: search(w, "--project-dir", str(Path(w.folder("volume")) / "runs")),
         "--project-dir '{root}/volume/runs' cannot be written (Read-only", read_only="volume"),
    Case("search-project-dir-foreign",
         lambda w: search(w, "--project-dir", w.folder("mine", **{"notes.txt": "keep"})),
         "'{root}/mine' exists and is not a domaintune search directory"),
    Case("search-overwrite-foreign",
         lambda w: search(w, "--project-dir", w.folder("mine", **{"notes.txt": "keep"}),
                          "--overwrite"),
         "--overwrite: '{root}/mine' is not a domaintune search directory; refusing to delete"),
    Case("search-resume-with-other-settings",
         lambda w: search(w, "--project-dir", w.project(), "--seed", "7"),
         "'{root}/project' holds a search with different settings (seed"),
    # -- search: STS-B ------------------------------------------------------------------------
    Case("search-missing-sts", lambda w: search(w, "--sts", w.path("stsb")),
         "STS Benchmark path {root}/stsb (from --sts) does not exist"),
    Case("search-malformed-sts-archive",  # issue 15.6: names the user's archive, cache clean
         lambda w: search(w, "--sts", w.sts_archive("no tabs in this line\n")),
         "{root}/Stsbenchmark.tar.gz, member stsbenchmark/sts-dev.csv, line 1: expected 7"),
    Case("search-truncated-sts-archive",
         lambda w: search(w, "--sts", w.file("Stsbenchmark.tar.gz", b"\x1f\x8b\x08\x00trunc")),
         "cannot extract the STS Benchmark archive {root}/Stsbenchmark.tar.gz"),
    # -- search: distributed ------------------------------------------------------------------
    Case("search-kerastuner-without-ip", search,
         "KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_PORT set but not KERASTUNER_ORACLE_IP",
         env=(("KERASTUNER_TUNER_ID", "worker-1"), ("KERASTUNER_ORACLE_PORT", "8000"))),
    Case("search-kerastuner-bad-tuner-id", search, "KERASTUNER_TUNER_ID='worker-'",
         env=(("KERASTUNER_TUNER_ID", "worker-"), *WORKER[1:], ("KERASTUNER_ORACLE_PORT", "80"))),
    Case("search-kerastuner-bad-port", search, "KERASTUNER_ORACLE_PORT='http'",
         env=(*WORKER, ("KERASTUNER_ORACLE_PORT", "http"))),
    Case("search-kerastuner-no-oracle-there",  # honoured: the worker looks where they say
         lambda w: search(w, "--connect-timeout", "1"), "No oracle answered at 127.0.0.1:",
         env=(*WORKER, ("KERASTUNER_ORACLE_PORT", "{port}"))),
    Case("search-worker-without-oracle", lambda w: search(w, "--role", "worker"),
         "--role worker needs --oracle HOST:PORT"),
    # -- evaluate -----------------------------------------------------------------------------
    Case("evaluate-nothing-to-do", lambda w: evaluate(w), "Nothing to evaluate"),
    Case("evaluate-damaged-model",  # issue 15.2
         lambda w: evaluate(w, "--model", w.damaged_base(), "--pairs", w.pairs()),
         "Cannot load the SavedModel '{root}/damaged-model'"),
    Case("evaluate-model-missing-folder-like-a-hub-handle",  # issue 15.5
         lambda w: evaluate(w, "--model", w.runs_folder(), "--pairs", w.pairs()),
         "'runs/export/1' not found: no such folder"),
    Case("evaluate-missing-pairs", lambda w: evaluate(w, "--pairs", w.path("pairs.csv")),
         "{root}/pairs.csv: file not found"),
    Case("evaluate-text-too-long-tsv",  # issue 15.4
         lambda w: evaluate(w, "--pairs", w.file("p.tsv", "base\tref\tsimilarity\n"
                                                + "".join(f"a{i}\tb{i}\t0.7\n" for i in range(11))
                                                + f"c\t{'x' * TEN_MB}\t0.7\n")),
         f"p.tsv, line 13: {LONG}"),
    Case("evaluate-malformed-sts-archive",  # issue 15.6
         lambda w: evaluate(w, "--sts", w.sts_archive(w.sts_line(0) + "\n" + w.sts_line(1, 7))),
         "{root}/Stsbenchmark.tar.gz, member stsbenchmark/sts-dev.csv, line 2: score 7"),
    Case("evaluate-split-test-not-in-folder",
         lambda w: evaluate(w, "--sts", w.sts_dir(dev=w.sts_line(0)), "--split", "test"),
         "STS Benchmark folder {root}/sts (from --sts) has no sts-test.csv"),
    Case("evaluate-sts-auto-offline",  # no DOMAINTUNE_STS_DIR, nothing cached, no route
         lambda w: evaluate(w, "--sts", "auto", "--split", "test", "--pairs", w.pairs()),
         "STS Benchmark not found and could not be downloaded",
         env=(("DOMAINTUNE_STS_URL", "http://127.0.0.1:{port}/Stsbenchmark.tar.gz"),
              ("no_proxy", "127.0.0.1"), ("NO_PROXY", "127.0.0.1"))),
    Case("evaluate-sts-score-out-of-range",
         lambda w: evaluate(w, "--sts", w.sts_dir(dev=w.sts_line(0, "5.5"))),
         "{root}/sts/sts-dev.csv, line 1: score 5.5 is outside 0..5"),
    Case("evaluate-unknown-split", lambda w: evaluate(w, "--split", "val"),
         "Invalid value for '--split'", code=2),
    Case("evaluate-heatmap-into-missing-folder",
         lambda w: evaluate(w, "--heatmap", w.path("figs/h.png")), "--heatmap"),
    Case("evaluate-missing-retrieval", lambda w: evaluate(w, "--retrieval", w.path("q.csv")),
         "{root}/q.csv: file not found"),
    # -- export -------------------------------------------------------------------------------
    Case("export-non-project", lambda w: ["export", w.folder("x"), "--out", w.path("e")],
         "'{root}/x' is not a domaintune search directory"),
    Case("export-no-trials",
         lambda w: ["export", w.config_only_project(), "--out", w.path("e")],
         "No completed trial in '{root}/x' yet"),
    Case("export-unknown-trial",
         lambda w: ["export", w.project(), "--out", w.path("e"), "--trial", "99"],
         "--trial 99: no such trial"),
    Case("export-trial-without-checkpoint",
         lambda w: ["export", w.project(), "--out", w.path("e"), "--trial", w.pruned_trial()],
         "has no kept checkpoint"),
    Case("export-out-exists",
         lambda w: ["export", w.project(), "--out", w.folder("e", **{"x.txt": "mine"})],
         "--out '{root}/e' already exists"),
    Case("export-out-folder-missing",
         lambda w: ["export", w.project(), "--out", w.path("models/e")],
         "--out: folder '{root}/models' does not exist"),
    Case("export-damaged-checkpoint",
         lambda w: ["export", _damage_checkpoint(w.project()), "--out", w.path("e")],
         "cannot load trial"),
    Case("export-damaged-base",
         lambda w: ["export", _rebase(w.project(), w.damaged_base()), "--out", w.path("e")],
         "Cannot load the SavedModel '{root}/damaged-model'"),
    Case("export-without-out", lambda w: ["export", w.project()],
         "Missing option '--out'", code=2),
    # -- results ------------------------------------------------------------------------------
    Case("results-non-project", lambda w: ["results", w.folder("x")],
         "'{root}/x' is not a domaintune search directory"),
    Case("results-missing-folder", lambda w: ["results", w.path("x")],
         "'{root}/x' is not a domaintune search directory"),
    Case("results-of-a-file", lambda w: ["results", w.pairs()],
         "'{root}/pairs.csv' is not a domaintune search directory"),
    Case("results-damaged-trial-file", lambda w: ["results", _damage_trial_json(w.project())],
         "may be damaged"),
    # -- tensorboard --------------------------------------------------------------------------
    Case("tensorboard-missing-folder", lambda w: ["tensorboard", w.path("x")], "{root}/x"),
    Case("tensorboard-non-project", lambda w: ["tensorboard", w.folder("x")], "{root}/x"),
    Case("tensorboard-port-in-use",
         lambda w: ["tensorboard", w.project(), "--port", w.busy_port()],
         "TensorBoard"),
    Case("tensorboard-port-out-of-range",
         lambda w: ["tensorboard", w.project(), "--port", "70000"],
         "Invalid value for '--port'", code=2),
    # -- data esco ----------------------------------------------------------------------------
    Case("esco-folder-as-occupations",
         lambda w: ["data", "esco", "--occupations", w.folder("esco"), "-o", w.path("o.csv")],
         "{root}/esco: cannot read the occupations file"),
    Case("esco-missing-occupations",
         lambda w: ["data", "esco", "--occupations", w.path("occ.csv"), "-o", w.path("o.csv")],
         "{root}/occ.csv: cannot read the occupations file"),
    Case("esco-isco-file-as-occupations",
         lambda w: ["data", "esco", "--occupations", w.esco("ISCOGroups_en.csv"),
                    "-o", w.path("o.csv")],
         "ISCOGroups_en.csv, line 1: missing column(s) iscoGroup"),
    Case("esco-occupations-file-as-isco",
         lambda w: esco(w, "--isco", w.esco("occupations_de.csv"), "-o", w.path("o.csv")),
         "occupations_de.csv, line 1: missing column(s) code"),
    Case("esco-output-not-csv", lambda w: esco(w, "-o", w.path("o.tsv")),
         "--output {root}/o.tsv: must end in .csv"),
    Case("esco-output-folder-missing", lambda w: esco(w, "-o", w.path("out/o.csv")),
         "folder '{root}/out' does not exist"),
    Case("esco-output-is-an-input", lambda w: esco(w, "-o", w.path("occupations_en.csv")),
         "is also an input file"),
    Case("esco-scores-not-decreasing",
         lambda w: esco(w, "-o", w.path("o.csv"), "--same-group-score", "0.3"),
         "not increase"),
    Case("esco-score-out-of-range",
         lambda w: esco(w, "-o", w.path("o.csv"), "--negative-score", "1.5"),
         "Invalid value for '--negative-score'", code=2),
    Case("esco-holdout-output-without-fraction",
         lambda w: esco(w, "-o", w.path("o.csv"), "--holdout-output", w.path("h.csv")),
         "--holdout-output needs --holdout-fraction"),
    Case("esco-bad-augment", lambda w: esco(w, "-o", w.path("o.csv"), "--augment", "loud"),
         "--augment 'loud'"),
    Case("esco-without-occupations", lambda w: ["data", "esco", "-o", w.path("o.csv")],
         "Missing option '--occupations'", code=2),
]  # fmt: skip


def _damage_checkpoint(project: str) -> str:
    (checkpoint,) = Path(project).glob("trial_*/encoder.npz")
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    return project


def _damage_trial_json(project: str) -> str:
    state = next(Path(project).glob("trial_*/trial.json"))
    state.write_text(state.read_text()[:40])
    return project


def _rebase(project: str, base: str) -> str:
    """The project as if searched on ``base`` (which has since been damaged)."""
    config_path = Path(project) / "search_config.json"
    config = json.loads(config_path.read_text())
    config["base"] = base
    config_path.write_text(json.dumps(config))
    return project


def _snapshot(*roots: Path) -> dict[str, tuple[int, int] | None]:
    """path -> (size, mtime_ns) of every file, None for a folder."""
    state: dict[str, tuple[int, int] | None] = {}
    for root in roots:
        for path in [root, *root.rglob("*")]:
            info = path.lstat()
            state[str(path)] = None if path.is_dir() else (info.st_size, info.st_mtime_ns)
    return state


def _run_in_process(world: World, args: list[str], env: dict[str, str], monkeypatch):
    monkeypatch.chdir(world.root)
    monkeypatch.setenv("DOMAINTUNE_CACHE", str(world.root / "cache"))
    monkeypatch.setattr(tempfile, "tempdir", str(world.root / "tmp"))
    for name in (*KERASTUNER, *OUTSIDE):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(  # an escaped exception: a user would see a traceback
            result.output + "".join(traceback.format_exception(*result.exc_info))
        )
    return result.exit_code, result.output


# In a private mount namespace (as a mapped root: no privileges needed) the
# folder is bind-mounted read-only, as a read-only volume; $1 is the folder.
_READ_ONLY = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" || exit 99; shift; "$@"'


def _run_read_only(world: World, folder: str, args: list[str], env: dict[str, str]):
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) for a read-only bind mount")
    env = {**os.environ, **env, "DOMAINTUNE_CACHE": str(world.root / "cache")}
    env["TMPDIR"] = str(world.root / "tmp")
    for name in (*KERASTUNER, *OUTSIDE):
        env.pop(name, None)
    proc = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount"]
        + ["sh", "-c", _READ_ONLY, "sh", str(world.root / folder)]
        + [sys.executable, "-m", "domaintune.cli", *args],
        cwd=world.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode == 99 or "unshare: " in proc.stderr:
        pytest.skip(f"no read-only bind mount here: {proc.stderr.strip()[:200]}")
    return proc.returncode, proc.stdout + proc.stderr


def test_the_battery_has_every_command_and_enough_cases():
    commands = {case.id.split("-")[0] for case in CASES}
    assert commands == {"search", "evaluate", "export", "results", "tensorboard", "esco"}
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case: Case, tmp_path, tiny_model_dir, finished_project, monkeypatch):
    world = World(tmp_path / "world", tiny_model_dir, finished_project)
    try:
        args = [str(a) for a in case.args(world)]
        env = {name: value.format(port=world.closed_port()) for name, value in case.env}
        roots = (world.root, tiny_model_dir, finished_project)
        before = _snapshot(*roots)
        if case.read_only:
            code, output = _run_read_only(world, case.read_only, args, env)
        else:
            code, output = _run_in_process(world, args, env, monkeypatch)
        after = _snapshot(*roots)
    finally:
        world.close()

    shown = output[-3000:]
    assert code == case.code, shown
    assert "Traceback" not in output, shown
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, shown
    assert case.needle.format(root=world.root) in errors[0], shown
    changed = {
        path: (before.get(path, "absent"), after.get(path, "absent"))
        for path in sorted(before.keys() | after.keys())
        if before.get(path, "absent") != after.get(path, "absent")
    }
    assert not changed, f"written or changed on disk: {changed}"
