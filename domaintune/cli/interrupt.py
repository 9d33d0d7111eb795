"""A Ctrl-C that a search cannot lose.

Python raises ``KeyboardInterrupt`` wherever the main thread is when SIGINT
arrives. Inside a finalizer or a weakref callback, which TensorFlow code runs
all the time (most of all in the garbage collection after each trial), the
exception is printed as "Exception ignored in ..." and dropped, and the search
goes on as if no key had been pressed. :class:`RememberedInterrupt` records
every Ctrl-C and, as a search callback, raises it again at the next boundary
of a trial's phases, where nothing swallows it (and it keeps the dropped one's
traceback off the screen).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping
from typing import Any

from domaintune.search.callbacks import SearchCallback


class RememberedInterrupt(SearchCallback):
    """``with RememberedInterrupt() as remembered: api.search(..., callbacks=[remembered])``.

    Installs its SIGINT handler only over Python's default one (a SIGINT that
    is ignored, as in a background job, stays ignored), and only in the main
    thread; restores the previous handler on exit.
    """

    def __init__(self) -> None:
        self.pending = False
        self._previous: Any = None
        self._unraisable: Any = None

    def __enter__(self) -> RememberedInterrupt:
        try:
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:  # not the main thread: leave signals alone
            return self
        if self._previous is not None:
            self._unraisable = sys.unraisablehook
            sys.unraisablehook = self._on_unraisable
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            sys.unraisablehook = self._unraisable
            self._previous = self._unraisable = None

    def _on_unraisable(self, unraisable: Any) -> None:
        """Python drops a Ctrl-C raised in a finalizer and prints it; this one
        is remembered and raised again, so it is not printed."""
        if not (self.pending and issubclass(unraisable.exc_type, KeyboardInterrupt)):
            self._unraisable(unraisable)

    def _on_sigint(self, signum: int, frame: object) -> None:
        self.pending = True
        raise KeyboardInterrupt

    def _raise_if_pending(self) -> None:
        if self.pending:
            raise KeyboardInterrupt

    def on_trial_begin(self, trial_id: str, hyperparameters: Mapping[str, Any]) -> None:
        self._raise_if_pending()

    def on_phase_end(self, trial_id: str, phase: str, seconds: float) -> None:
        self._raise_if_pending()

    def on_trial_end(
        self,
        trial_id: str,
        status: str,
        metrics: Mapping[str, float],
        seconds: float,
        message: str | None = None,
    ) -> None:
        self._raise_if_pending()
