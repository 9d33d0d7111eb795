"""Imports TensorFlow the way every part of domaintune needs it.

``hub.KerasLayer`` is a tf_keras (Keras 2) layer, while ``tf.keras`` is Keras 3
in TF 2.21, so the project imports ``tf_keras`` explicitly. ``tensorflow_text``
registers the SentencePiece ops and must be imported before any SavedModel
that uses them is loaded. Import through :func:`load` so both always hold.

TensorFlow's start-up chatter (the oneDNN notice, "Could not find cuda
drivers", the ``cuInit`` error, "All log messages before
absl::InitializeLog()") is written by C++ code straight to file descriptor 2
while TensorFlow is imported and its devices are first listed, before
``TF_CPP_MIN_LOG_LEVEL`` applies to all of it. :func:`load` (and, once
:func:`quiet_startup` is called, any first ``import tensorflow``, e.g. by
KerasTuner or TensorBoard) holds that descriptor meanwhile and passes on only
what is not such chatter. ``domaintune -v`` (:func:`quiet_startup` with
``verbose=True``) lets everything through.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from types import SimpleNamespace

# Set before TensorFlow is imported (its C++ logging reads it once): warnings
# and info off, errors on. A value the user set is kept.
_USER_LOG_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: What TensorFlow writes to stderr while it starts: absl's pre-initialisation
#: notice, C++ info/warning lines (``I0000 00:00:...  123 port.cc:153] ...``),
#: the CUDA probing errors of a machine without a GPU, and the CPU-feature
#: notice's second line.
STARTUP_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IW]\d{4} [\d:.]+ +\d+ \S+:\d+\] "
    r"|E\d{4} [\d:.]+ +\d+ \S+:\d+\] .*(cuda|cuInit|cuDNN|cuFFT|cuBLAS|TensorRT)"
    r"|To enable the following instructions: "
)

_modules: SimpleNamespace | None = None
_lock = threading.Lock()
_verbose = False


def quiet_startup(verbose: bool = False) -> None:
    """Silence TensorFlow's start-up logging for this process (``verbose``:
    show it, and TensorFlow's info logging, instead).

    Call before TensorFlow is imported: the ``domaintune`` command does, for
    every subcommand. Without the call, :func:`load` is quiet all the same;
    the call also quiets a first ``import tensorflow`` made elsewhere
    (KerasTuner, TensorBoard).
    """
    global _verbose
    _verbose = verbose
    if verbose:
        if _USER_LOG_LEVEL is None:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return
    if "tensorflow" not in sys.modules and not any(
        isinstance(finder, _QuietTensorFlowImport) for finder in sys.meta_path
    ):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


def load() -> SimpleNamespace:
    """Return a namespace with ``tf``, ``tf_keras``, ``hub`` and ``text``."""
    global _modules
    with _lock:
        if _modules is None:
            # tensorflow_hub still imports pkg_resources (setuptools < 81 pinned).
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
            with quiet_stderr():
                import tensorflow as tf
                import tensorflow_hub as hub
                import tensorflow_text as text  # registers SentencePiece ops
                import tf_keras

                tf.config.list_physical_devices()  # the CUDA probe logs here, once
            if not _verbose:
                _quiet_python_loggers(tf)
            _split_cpu(tf)
            _modules = SimpleNamespace(tf=tf, tf_keras=tf_keras, hub=hub, text=text)
    return _modules


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Hold file descriptor 2 (C++ code writes there directly) in a temporary
    file; afterwards write back every line that is not :data:`STARTUP_NOISE`.
    Lets everything through after ``quiet_startup(verbose=True)``."""
    if _verbose:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no descriptor 2 to hold
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [
                line
                for line in held.read().decode("utf-8", "replace").splitlines()
                if line.strip() and not STARTUP_NOISE.match(line)
            ]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)


class _QuietLoader(importlib.abc.Loader):
    """Runs the wrapped loader's ``exec_module`` under :func:`quiet_stderr`."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        # Once: the real finders answer from now on.
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietTensorFlowImport)]
        # Hand the module its own loader back first: nothing should see this one.
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        with quiet_stderr():
            self.loader.exec_module(module)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` with a loader that imports it quietly, whoever
    imports it first (KerasTuner, TensorBoard, :func:`load`)."""

    def __init__(self):
        self._finding = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow" or self._finding:
            return None
        self._finding = True  # ask the other finders, not this one again
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._finding = False
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _QuietLoader(spec.loader)
        return spec


def _quiet_python_loggers(tf) -> None:
    """TensorFlow's and absl's Python loggers: errors only (``-v``: as they were)."""
    tf.get_logger().setLevel(logging.ERROR)
    with contextlib.suppress(ImportError):
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)


def _split_cpu(tf) -> None:
    """``DOMAINTUNE_LOGICAL_CPUS=N`` splits the CPU into N logical devices, so a
    MirroredStrategy (``--strategy mirrored``) can be tried without GPUs."""
    count = int(os.environ.get("DOMAINTUNE_LOGICAL_CPUS", "0") or 0)
    if count > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
