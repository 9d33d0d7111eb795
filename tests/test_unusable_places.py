"""A project dir that cannot be written, a damaged base SavedModel: one clear
``Error:`` line, exit 1, nothing written, and a corrected rerun works."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from domaintune.cli import main
from domaintune.reporting.results import load_trials

from .conftest import run_cli

FAST = ("--sts", "none", "--hp", "batch_size=32", "--epochs", "1", "--max-trials", "1")
DATA = "variables/variables.data-00000-of-00001"


def _one_error(output: str, *expected: str) -> str:
    """The output's one ``Error:`` line, checked to hold ``expected``."""
    assert "Traceback" not in output, output
    (line,) = [x for x in output.splitlines() if x.startswith("Error:")]
    for text in expected:
        assert text in line, line
    return line


def _files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*"))


# -- an unwritable --project-dir --------------------------------------------------


def test_project_dir_under_a_file_is_one_clear_error(tmp_path, tiny_model_dir):
    """A new folder under a place that cannot hold one (a regular file: this
    fails for root too, where a chmod 0500 folder would not)."""
    (tmp_path / "notes.txt").write_text("x")
    project = tmp_path / "notes.txt" / "runs" / "p"
    before = _files(tmp_path)
    result = CliRunner().invoke(
        main, ["search", "--base", str(tiny_model_dir), "--project-dir", str(project), *FAST]
    )
    assert result.exit_code == 1
    _one_error(result.output, f"--project-dir '{project}' cannot be written", "not a folder")
    assert _files(tmp_path) == before


# In a private mount namespace (as a mapped root, so no privileges are needed)
# the folder is bind-mounted read-only: unwritable for root too, as on a
# read-only volume. $1 is the folder, the rest the command.
_READ_ONLY = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" || exit 99; shift; "$@"'


def _read_only_run(folder: Path, *command: str) -> subprocess.CompletedProcess:
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) for a read-only bind mount")
    proc = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount"]
        + ["sh", "-c", _READ_ONLY, "sh", str(folder), *command],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode == 99 or "unshare: " in proc.stderr:
        pytest.skip(f"no read-only bind mount here: {proc.stderr.strip()[:200]}")
    return proc


@pytest.mark.parametrize("where", ["empty folder", "new subfolder"])
def test_project_dir_on_a_read_only_place_is_one_clear_error(tmp_path, tiny_model_dir, where):
    place = tmp_path / "volume"
    place.mkdir()
    project = place if where == "empty folder" else place / "runs" / "p"
    proc = _read_only_run(
        place,
        sys.executable,
        "-m",
        "domaintune.cli",
        "search",
        "--base",
        str(tiny_model_dir),
        "--project-dir",
        str(project),
        *FAST,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    _one_error(proc.stderr, f"--project-dir '{project}' cannot be written", "Read-only")
    assert _files(place) == []


# -- a damaged base SavedModel ------------------------------------------------------


def _damage(model: Path, copy: Path, how: str) -> Path:
    shutil.copytree(model, copy)
    data = copy / DATA
    if how == "truncated":
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    elif how == "flipped byte":
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        data.write_bytes(bytes(raw))
    else:  # "no variables"
        shutil.rmtree(copy / "variables")
    return copy


def test_damaged_base_writes_nothing_and_a_good_base_then_runs(tmp_path, tiny_model_dir):
    bad = _damage(tiny_model_dir, tmp_path / "bad", "truncated")
    project = tmp_path / "p"
    project.mkdir()  # an empty folder stays empty

    def search(base: Path):
        return CliRunner().invoke(
            main, ["search", "--base", str(base), "--project-dir", str(project), *FAST]
        )

    refused = search(bad)
    assert refused.exit_code == 1
    _one_error(refused.output, f"Cannot load the SavedModel '{bad}'", "Read less bytes")
    assert _files(project) == []  # no search_config.json: the rerun is not "different settings"
    rerun = search(tiny_model_dir)
    assert rerun.exit_code == 0, rerun.output
    assert [t["status"] for t in load_trials(project)] == ["COMPLETED"]


def test_a_chief_checks_the_base_too(tmp_path, tiny_model_dir):
    """The chief trains nothing but writes the project dir: it loads the base first."""
    bad = _damage(tiny_model_dir, tmp_path / "bad", "flipped byte")
    project = tmp_path / "p"
    with socket.socket() as s:  # a free port, should the chief (wrongly) serve
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # A subprocess: a chief that does not check would serve until the timeout.
    proc = run_cli(
        "search", "--role", "chief", "--oracle", f"127.0.0.1:{port}", "--base", bad,
        "--project-dir", project, *FAST, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    _one_error(proc.stderr, f"Cannot load the SavedModel '{bad}'")
    assert not project.exists()


@pytest.mark.parametrize("how", ["truncated", "flipped byte", "no variables"])
def test_evaluate_a_damaged_model_is_one_clear_error(tmp_path, tiny_model_dir, how):
    bad = _damage(tiny_model_dir, tmp_path / "bad", how)
    heatmap = tmp_path / "map.png"
    result = CliRunner().invoke(
        main, ["evaluate", "--model", str(bad), "--sts", "none", "--heatmap", str(heatmap)]
    )
    assert result.exit_code == 1
    _one_error(result.output, f"Cannot load the SavedModel '{bad}'", "damaged or incomplete")
    assert not heatmap.exists()
