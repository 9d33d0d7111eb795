"""``domaintune evaluate`` end to end: real models, real data, real PNGs.

One run goes through a real subprocess (``python -m domaintune.cli``) to check
the published USE-m3 STS-B number; the rest run in-process with click's
CliRunner, which is faster but takes the same code path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from domaintune.cli import main
from domaintune.data.titles import TUTORIAL_TITLES
from tests.conftest import REPO, shared_path
from tests.tiny_model import build_tiny_saved_model

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _run_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """``python -m domaintune.cli ARGS`` with this test run's DOMAINTUNE_CACHE."""
    env = dict(os.environ)  # carries DOMAINTUNE_CACHE, set by conftest
    return subprocess.run(
        [sys.executable, "-m", "domaintune.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert len(data) > 1000


def _assert_user_error(exit_code: int, output: str, *needles: str) -> None:
    """Non-zero exit, exactly one 'Error:' line mentioning every needle, no traceback."""
    assert exit_code != 0, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    for needle in needles:
        assert needle in errors[0], errors[0]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_saved_model(tmp_path_factory.mktemp("tiny") / "model")


# --- real numbers ---------------------------------------------------------------------


def test_use_m3_sts_dev_subprocess(use_m3_dir):
    sts_dir = shared_path("stsbenchmark")
    proc = _run_cli("evaluate", "--model", "use-m3", "--sts", str(sts_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # stdout holds the JSON object and nothing else
    assert result["model"] == "use-m3"
    assert result["sts_split"] == "dev"
    assert result["n_pairs"] == 1500
    assert 0.825 <= result["sts_pearson"] <= 0.840
    assert 0.80 <= result["sts_spearman"] <= 0.86


def test_pairs_and_default_heatmap(use_m3_dir, tmp_path):
    from domaintune.data.pairs import load_pairs

    seed = shared_path("seed", "training_data.csv")
    png = tmp_path / "out.png"
    result = _invoke(
        "evaluate", "--sts", "none", "--pairs", str(seed), "--heatmap", str(png), "--json"
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    # The seed file has 98 rows, one an exact duplicate that load_pairs drops.
    _, report = load_pairs(seed)
    assert report.read == 98
    assert out["n_domain_pairs"] == report.kept == 97
    assert 0 <= out["pairs_mse"] < 0.05
    assert 0.5 < out["pairs_pearson"] <= 1
    assert 0.5 < out["pairs_spearman"] <= 1
    assert out["pairs_source"] == str(seed)
    assert "sts_pearson" not in out
    assert out["heatmap"] == str(png)
    _assert_png(png)


def test_heatmap_of_a_titles_file(use_m3_dir, tmp_path):
    titles = tmp_path / "titles.txt"
    titles.write_text("Data Scientist\n\n  Registered Nurse  \nBarista\n", encoding="utf-8")
    custom, default = tmp_path / "custom.png", tmp_path / "default.png"
    result = _invoke("evaluate", "--sts", "none", "--titles", str(titles), "--heatmap", str(custom))
    assert result.exit_code == 0, result.output
    assert "heatmap" in result.stdout  # the plain table, not JSON
    _assert_png(custom)
    # Sanity check that --titles matters: the nine default titles draw another image.
    assert _invoke("evaluate", "--sts", "none", "--heatmap", str(default)).exit_code == 0
    _assert_png(default)
    assert custom.read_bytes() != default.read_bytes()
    assert len(TUTORIAL_TITLES) == 9


def test_saved_model_directory_as_model(tiny_dir, tmp_path):
    png = tmp_path / "tiny.png"
    result = _invoke(
        "evaluate", "--model", str(tiny_dir), "--sts", "none", "--heatmap", str(png), "--json"
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out == {"model": str(tiny_dir), "heatmap": str(png)}
    _assert_png(png)


# --- a quiet terminal: TensorFlow's start-up logging off stderr ----------------------------


@pytest.mark.parametrize("user_level", [None, "3"])
def test_evaluate_writes_nothing_to_stderr_subprocess(tiny_dir, user_level, monkeypatch):
    """No oneDNN notice, "Could not find cuda drivers", cuInit error or absl
    line: stderr stays empty, also with the user's own TF_CPP_MIN_LOG_LEVEL."""
    from domaintune.data.pairs import sample_path

    if user_level is None:
        monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    else:
        monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", user_level)
    args = ("evaluate", "--model", str(tiny_dir), "--sts", "none", "--pairs", str(sample_path()))
    proc = _run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "pairs_mse" in proc.stdout


def test_verbose_shows_tensorflow_startup_logging_subprocess(tiny_dir, monkeypatch):
    from domaintune.data.pairs import sample_path
    from domaintune.tf_runtime import STARTUP_NOISE

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    args = ("evaluate", "--model", str(tiny_dir), "--sts", "none", "--pairs", str(sample_path()))
    proc = _run_cli("-v", *args)
    assert proc.returncode == 0, proc.stderr
    assert any(STARTUP_NOISE.match(line) for line in proc.stderr.splitlines()), proc.stderr


def test_quiet_stderr_passes_on_all_but_the_startup_noise(capfd):
    """What C++ writes to file descriptor 2 is held; only non-noise comes back."""
    from domaintune.tf_runtime import quiet_stderr

    noise = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1796200386.231553   11378 port.cc:153] oneDNN custom operations are on.\n"
        "E0000 00:00:1796200392.716889   11378 cuda_platform.cc:52] failed call to cuInit: "
        "INTERNAL: CUDA error\n"
    )
    with quiet_stderr():
        os.write(2, (noise + "a real problem\n").encode())
        print("python's own warning", file=sys.stderr)
    assert sorted(capfd.readouterr().err.splitlines()) == ["a real problem", "python's own warning"]


# --- user errors: one 'Error:' line, no traceback ----------------------------------------


def test_bad_sts_path_subprocess(tmp_path):
    missing = tmp_path / "no-such-sts"
    proc = _run_cli("evaluate", "--sts", str(missing))
    _assert_user_error(proc.returncode, proc.stdout + proc.stderr, str(missing), "--sts")


def test_model_path_that_is_not_a_savedmodel_subprocess(tmp_path):
    folder = tmp_path / "empty-model"
    folder.mkdir()
    proc = _run_cli(
        "evaluate", "--model", str(folder), "--sts", "none", "--heatmap", str(tmp_path / "h.png")
    )
    _assert_user_error(proc.returncode, proc.stdout + proc.stderr, str(folder), "saved_model.pb")
    assert not (tmp_path / "h.png").exists()


def test_sts_none_with_nothing_else():
    result = _invoke("evaluate", "--sts", "none")
    _assert_user_error(result.exit_code, result.output, "Nothing to evaluate", "--pairs")


def test_heatmap_into_missing_folder(tmp_path):
    missing = tmp_path / "no-such-dir"
    result = _invoke("evaluate", "--sts", "none", "--heatmap", str(missing / "h.png"))
    _assert_user_error(result.exit_code, result.output, "--heatmap", str(missing))


def test_missing_model_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _invoke(
        "evaluate", "--model", "./nope", "--sts", "none", "--heatmap", str(tmp_path / "h.png")
    )
    _assert_user_error(result.exit_code, result.output, "./nope")


def test_missing_pairs_file(tmp_path):
    missing = tmp_path / "pairs.csv"
    result = _invoke("evaluate", "--sts", "none", "--pairs", str(missing))
    _assert_user_error(result.exit_code, result.output, str(missing))


@pytest.mark.parametrize(
    "content, needle",
    [
        (None, "cannot read"),  # no such file
        (b"Only One Title\n\n", "at least 2"),  # too few titles for a heatmap
        (b"Caf\xe9 Manager\nBarista\n", "UTF-8"),  # Latin-1, not UTF-8
    ],
    ids=["missing", "one-title", "not-utf8"],
)
def test_bad_titles_file(tmp_path, content, needle):
    titles = tmp_path / "titles.txt"
    if content is not None:
        titles.write_bytes(content)
    result = _invoke(
        "evaluate", "--sts", "none", "--titles", str(titles), "--heatmap", str(tmp_path / "h.png")
    )
    _assert_user_error(result.exit_code, result.output, "--titles", str(titles), needle)
    assert not (tmp_path / "h.png").exists()
