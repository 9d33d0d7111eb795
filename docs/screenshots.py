"""Screenshots of a search in TensorBoard, for the README.

    python docs/screenshots.py                      # the demo search, then the shots
    python docs/screenshots.py --sts ../shared/data/stsbenchmark   # with the STS-B guard
    python docs/screenshots.py --project-dir runs/titles --no-search   # an existing search

Runs a small search (``domaintune search``: the bundled job-title sample and
the embedded USE-m3, or ``--base``), starts ``domaintune tensorboard`` on it
and captures, with headless Chromium, the HParams table, the parallel
coordinates and the similarity heatmaps of the base and of the best trial:
``docs/tensorboard_hparams.png``, ``docs/tensorboard_parallel_coordinates.png``
and ``docs/tensorboard_heatmaps.png``. Without Chromium (Debian: ``apt-get
install chromium``) it says so and exits 0.

Chromium is driven over ``--remote-debugging-pipe`` with the DevTools
protocol, so nothing beyond the browser is needed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

DOCS = Path(__file__).resolve().parent
WIDTH, HEIGHT = 1760, 820
#: Hyperparameters left out of the table's picture (the page is not wide enough).
NARROW = ("clip_epsilon", "clipnorm")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: JavaScript helpers: TensorBoard's dashboards live in nested shadow DOMs.
HELPERS = """
window.dtAll = (pred) => {
  const out = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (pred(el)) out.push(el);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return out;
};
window.dtRect = (els, pad) => {
  const rs = els.map(e => e.getBoundingClientRect()).filter(r => r.width > 0);
  const x = Math.max(0, Math.min(...rs.map(r => r.left)) - pad);
  const y = Math.max(0, Math.min(...rs.map(r => r.top)) - pad);
  return {x, y, width: Math.max(...rs.map(r => r.right)) + pad - x,
          height: Math.max(...rs.map(r => r.bottom)) + pad - y};
};
window.dtText = (el) => (el.innerText || el.textContent || '').trim();
window.dtClick = (tag, text) => {
  const found = dtAll(e => e.tagName.toLowerCase() === tag
    && dtText(e).toUpperCase() === text.toUpperCase());
  if (found.length) found[0].click();
  return found.length > 0;
};
true
"""


def find_browser() -> str | None:
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe."""

    def __init__(self, executable: str, width: int, height: int):
        import fcntl

        commands_r, self._commands = os.pipe()
        self._replies, replies_w = os.pipe()
        # Chromium reads commands on fd 3 and writes replies on fd 4.
        child_in = fcntl.fcntl(commands_r, fcntl.F_DUPFD, 10)
        child_out = fcntl.fcntl(replies_w, fcntl.F_DUPFD, 10)
        os.close(commands_r)
        os.close(replies_w)

        def wire() -> None:
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        self.profile = tempfile.TemporaryDirectory(prefix="domaintune-chromium-")
        self.proc = subprocess.Popen(
            [
                executable,
                "--headless=new",
                "--no-sandbox",  # root in a container has no user namespaces
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
                "--remote-debugging-pipe",
                f"--user-data-dir={self.profile.name}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            pass_fds=(3, 4),
            preexec_fn=wire,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(child_in)
        os.close(child_out)
        self._buffer = b""
        self._id = 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        attached = self.call("Target.attachToTarget", targetId=target, flatten=True)
        self.session = attached["sessionId"]
        self.call("Page.enable", session=True)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._replies, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium exited")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: bool = False, **params) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._id:  # events are skipped
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def open(self, url: str) -> None:
        self.call("Page.navigate", session=True, url=url)
        self.wait("document.readyState === 'complete' && !!document.body")
        self.js(HELPERS)

    def js(self, expression: str):
        result = self.call(
            "Runtime.evaluate",
            session=True,
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, expression: str, timeout: float = 60.0):
        """Until ``expression`` is truthy in the page (what it shows, not a delay)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = self.js(expression)
            except RuntimeError:
                value = None
            if value:
                return value
            time.sleep(0.2)
        raise TimeoutError(f"the page never showed: {expression}")

    def settle(self) -> None:
        """Until the page's look stops changing (charts animate in)."""
        previous = None
        for _ in range(50):
            current = self.screenshot()
            if current == previous:
                return
            previous = current
            time.sleep(0.3)

    def screenshot(self, clip: dict | None = None) -> bytes:
        params = {"format": "png"}
        if clip:
            params["clip"] = {**clip, "scale": 1}
        return base64.b64decode(self.call("Page.captureScreenshot", session=True, **params)["data"])

    def close(self) -> None:
        try:
            self.call("Browser.close")
            self.proc.wait(timeout=10)
        except (RuntimeError, OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        self.profile.cleanup()


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "domaintune.cli", *args]


class TensorBoard:
    """``domaintune tensorboard PROJECT --port 0``."""

    def __init__(self, project: Path):
        self.proc = subprocess.Popen(
            cli("tensorboard", str(project), "--port", "0"),
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for line in self.proc.stdout:
            if "http://" in line:
                self.url = next(w for w in line.split() if w.startswith("http://")).rstrip("/")
                return
        raise RuntimeError("domaintune tensorboard exited without serving")

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=10) as resp:
            return json.loads(resp.read())

    def wait_for_runs(self, runs: set[str], timeout: float = 120.0) -> None:
        """Until TensorBoard has loaded every run's final metrics."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                tags = self.get("/data/plugin/scalars/tags")
                if all("final/objective" in tags.get(run, {}) for run in runs):
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"TensorBoard did not load the runs {sorted(runs)}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def best_trial(project: Path) -> tuple[str, list[str]]:
    """The best trial's id and every completed trial's."""
    from domaintune.reporting.results import load_trials

    done = [t for t in load_trials(project) if t["status"] == "COMPLETED"]
    if not done:
        raise SystemExit(f"no completed trial in {project}")
    best = min(done, key=lambda t: t["objective"])
    return best["trial_id"], [t["trial_id"] for t in done]


def capture(browser: Browser, tb: TensorBoard, best: str, out: Path) -> list[Path]:
    written = []

    def save(name: str, png: bytes) -> None:
        path = out / name
        path.write_bytes(png)
        written.append(path)
        print(f"wrote {path}")

    # HParams: the table, then the parallel coordinates (learning_rate on a log axis).
    browser.open(tb.url + "/#hparams")
    browser.wait("dtAll(e => /^trial-/.test(dtText(e)) && e.children.length === 0).length > 1")
    # Room for the metrics: hide the two clipping hyperparameters (ticked again below).
    for name in NARROW:
        browser.wait(f"dtClick('paper-checkbox', {json.dumps(name)})")
    browser.settle()
    table = browser.js(
        "(() => { const r = dtAll(e => e.tagName.toLowerCase() === 'vaadin-grid')[0]"
        ".getBoundingClientRect(); return [r.x, r.y]; })()"
    )
    rows = browser.js(
        "Math.max(...dtAll(e => /^(base|trial-)/.test(dtText(e)) && e.children.length === 0)"
        ".map(e => e.getBoundingClientRect().bottom))"
    )
    x, y = table
    save(
        "tensorboard_hparams.png",
        browser.screenshot({"x": x, "y": y, "width": WIDTH - x, "height": rows + 12 - y}),
    )
    for name in NARROW:
        browser.js(f"dtClick('paper-checkbox', {json.dumps(name)})")

    browser.wait("dtClick('paper-tab', 'Parallel Coordinates View')")
    browser.wait("dtAll(e => e.tagName === 'path' && e.closest && e.getAttribute('d')).length > 5")
    browser.js(
        """dtAll(e => e.tagName.toLowerCase() === 'paper-radio-group'
          && dtText(e.closest('.column') || e.parentElement).startsWith('learning_rate'))
          .forEach(group => { group.selected = 'LOG'; });"""
    )
    browser.settle()
    save(
        "tensorboard_parallel_coordinates.png",
        browser.screenshot(
            browser.js(
                "dtRect([dtAll(e => e.tagName === 'svg')"
                ".sort((a, b) => b.getBoundingClientRect().width"
                " - a.getBoundingClientRect().width)[0]], 8)"
            )
        ),
    )

    # Images: the base's heatmap beside the best trial's.
    browser.open(tb.url + "/#images")
    regex = f"^(base|trial-{best})$"
    runs_filter = (
        "dtAll(e => e.tagName.toLowerCase() === 'paper-input' && /filter runs/.test(e.label || ''))"
    )
    browser.wait(f"{runs_filter}.length")
    browser.js(f"{runs_filter}.forEach(input => {{ input.value = {json.dumps(regex)}; }})")
    browser.wait(
        "dtAll(e => e.tagName.toLowerCase() === 'tf-image-loader').filter("
        "e => e.offsetParent !== null).length === 2"
    )
    browser.wait("dtAll(e => e.tagName === 'IMG' && e.complete && e.naturalWidth > 0).length >= 2")
    browser.settle()
    save(
        "tensorboard_heatmaps.png",
        browser.screenshot(
            browser.js(
                "dtRect(dtAll(e => e.tagName.toLowerCase() === 'tf-image-loader'"
                " && e.offsetParent !== null), 8)"
            )
        ),
    )
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project-dir", type=Path, help="default: a temporary folder")
    parser.add_argument("--no-search", action="store_true", help="use the finished search there")
    parser.add_argument("--base", default="use-m3")
    parser.add_argument("--sts", default="auto")
    parser.add_argument("--max-trials", default="5")
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args(argv)

    executable = find_browser()
    if executable is None:
        print(
            "Screenshots skipped: no headless Chromium found (Debian: apt-get install "
            "chromium; or set CHROMIUM to the browser's path)."
        )
        return 0
    temporary = None
    project = args.project_dir
    if project is None:
        temporary = tempfile.TemporaryDirectory(prefix="domaintune-screenshots-")
        project = Path(temporary.name) / "search"
    if not args.no_search:
        search = ["search", "--project-dir", str(project), "--overwrite"]
        search += ["--base", args.base, "--sts", args.sts, "--max-trials", args.max_trials]
        subprocess.run(cli(*search), check=True)
    best, trials = best_trial(project)
    tb = TensorBoard(project)
    browser = None
    try:
        tb.wait_for_runs({"base", *(f"trial-{t}" for t in trials)})
        browser = Browser(executable, width=WIDTH, height=HEIGHT)
        capture(browser, tb, best, args.out)
    finally:
        if browser is not None:
            browser.close()
        tb.stop()
        if temporary is not None:
            temporary.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
