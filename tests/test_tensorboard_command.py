"""``domaintune tensorboard PROJECT``, the README's step 3: a real process
serves the search on 127.0.0.1 and answers a real HTTP GET of its page.
(What TensorBoard shows is tested in test_tensorboard_logging.py.)"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import urllib.request
from urllib.parse import urlparse

from click.testing import CliRunner

from domaintune.cli import main


def test_tensorboard_command_serves_a_search_on_localhost(tmp_path, tiny_model_dir):
    project = tmp_path / "p"
    searched = CliRunner().invoke(
        main,
        ["search", "--base", str(tiny_model_dir), "--project-dir", str(project), "--sts", "none"]
        + ["--max-trials", "1", "--epochs", "1", "--hp", "batch_size=32"],
    )
    assert searched.exit_code == 0, searched.output
    proc = subprocess.Popen(
        [sys.executable, "-m", "domaintune.cli", "tensorboard", str(project), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    try:
        seen = []
        while not any("http://" in line for line in seen):
            try:
                seen.append(lines.get(timeout=120))
            except queue.Empty:
                raise AssertionError(f"no URL printed within 120 s: {seen}") from None
        url = next(w for line in seen for w in line.split() if w.startswith("http://"))
        assert urlparse(url).hostname == "127.0.0.1", url
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy
        with direct.open(url, timeout=30) as page:
            assert page.status == 200
            assert b"<html" in page.read().lower()
        assert proc.poll() is None  # still serving
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
