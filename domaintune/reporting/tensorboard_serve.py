"""Serving a search's TensorBoard logs (``domaintune tensorboard``)."""

from __future__ import annotations

import time
from pathlib import Path

from domaintune.errors import UserError
from domaintune.reporting.tensorboard_logging import BASE_RUN, event_files, run_name

__all__ = ["LOCAL_HOSTS", "launch_tensorboard", "tensorboard_logdir"]

#: Host names that bind TensorBoard to this machine only.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def tensorboard_logdir(path: Path) -> Path:
    """The TensorBoard logdir of a search given its project dir or its ``logs/``."""
    path = Path(path)
    if (path / "logs").is_dir():
        return path / "logs"
    if path.is_dir() and (
        path.name == "logs"
        or (path / BASE_RUN).is_dir()
        or any(p.is_dir() for p in path.glob(run_name("*")))
        or event_files(path)
    ):
        return path
    what = "does not exist" if not path.exists() else "holds no TensorBoard logs"
    raise UserError(
        f"no TensorBoard logs at {path}: it {what}. Pass a search's project directory "
        "(its --project-dir; domaintune_runs/search by default) or the logs/ folder in it."
    )


def launch_tensorboard(logdir: Path, port: int = 6006, host: str = "127.0.0.1") -> None:
    """Serve TensorBoard on ``logdir`` (a project dir or its ``logs/``), print
    its URL and block until Ctrl-C.

    ``port=0`` lets the OS pick a free port (the printed URL has it).
    """
    logdir = tensorboard_logdir(logdir)
    from tensorboard import program

    tb = program.TensorBoard()
    tb.configure(argv=[None, "--logdir", str(logdir), "--host", host, "--port", str(port)])
    try:
        url = tb.launch()
    except program.TensorBoardServerException as e:
        raise UserError(f"cannot start TensorBoard on {host}:{port}: {e.msg}") from e
    print(f"TensorBoard serving {logdir} at {url} (press Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("TensorBoard stopped.", flush=True)
