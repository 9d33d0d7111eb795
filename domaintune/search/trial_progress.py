"""In-trial progress: a live bar on a terminal, one line per epoch elsewhere.

A trial over a large pair file runs for minutes; without this, the search
prints nothing between one trial's line and the next. Short trials (the demo's
seconds) stay silent: the bar appears only once a trial has run a while.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import TextIO

from domaintune import tf_runtime

#: Seconds a trial runs before it shows progress.
QUIET_SECONDS = 10.0
#: Seconds between two redraws of the bar.
REDRAW_SECONDS = 0.5

log = logging.getLogger("domaintune.search")


class TrainingProgress(tf_runtime.load().tf_keras.callbacks.Callback):
    """Steps, pairs/s, ETA and the running loss of a trial's training.

    ``pairs_per_epoch`` sizes the first epoch's bar (an estimate: in-batch
    losses plan batches of distinct texts); later epochs use the step count
    the first one had.
    """

    def __init__(
        self,
        label: str,
        *,
        epochs: int,
        pairs_per_epoch: int,
        batch_size: int,
        stream: TextIO | None = None,
    ):
        super().__init__()
        self.label, self.epochs, self.batch_size = label, epochs, batch_size
        self.steps = max(1, math.ceil(pairs_per_epoch / batch_size))
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = self.epoch_started = time.monotonic()
        self.drawn = 0.0
        self.epoch = self.step = 0
        self.loss = math.nan

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.step = epoch + 1, 0
        self.epoch_started = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        self.step = batch + 1
        self.loss = float((logs or {}).get("loss", math.nan))
        now = time.monotonic()
        if self.live and now - self.started >= QUIET_SECONDS and now - self.drawn >= REDRAW_SECONDS:
            self.drawn = now
            self.stream.write("\r" + self.line(now) + "\x1b[K")
            self.stream.flush()

    def on_epoch_end(self, epoch, logs=None):
        now = time.monotonic()
        self.steps = max(self.step, 1)  # the next epochs' size
        if self.live:
            if self.drawn:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
                self.drawn = 0.0
        elif now - self.started >= QUIET_SECONDS:
            log.info(self.line(now, done=True))

    def line(self, now: float, done: bool = False) -> str:
        elapsed = max(now - self.epoch_started, 1e-9)
        rate = self.step * self.batch_size / elapsed
        left = (self.steps - self.step) + (self.epochs - self.epoch) * self.steps
        per_step = elapsed / max(self.step, 1)
        eta = "" if done else f"  ETA {_clock(max(left, 0) * per_step)}"
        width = 20
        filled = min(width, round(width * self.step / self.steps))
        bar = "" if done else f" [{'#' * filled}{'.' * (width - filled)}]"
        return (
            f"  {self.label} epoch {self.epoch}/{self.epochs}{bar} "
            f"step {self.step}/{max(self.steps, self.step)}  {rate:,.0f} pairs/s  "
            f"loss {self.loss:.4g}  {_clock(elapsed)}{eta}"
        )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
