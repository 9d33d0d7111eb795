"""Reading back what a search wrote to TensorBoard (a test helper: the package only writes)."""

from __future__ import annotations

from pathlib import Path

from domaintune.errors import UserError


def read_scalars(trial_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """The scalar series of one run: ``{tag: [(step, value), ...]}`` sorted by step.

    Reads every event file in ``trial_dir`` (not subdirectories). TF2 writes
    scalars as tensors with the ``scalars`` plugin; other tensors (hparams,
    images) are skipped. When a resumed trial logged a step again, the value
    written last wins.
    """
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.util import tensor_util

    trial_dir = Path(trial_dir)
    if not trial_dir.is_dir():
        raise UserError(f"no TensorBoard run at {trial_dir}: directory does not exist")
    acc = ea.EventAccumulator(
        str(trial_dir), size_guidance={ea.TENSORS: 0, ea.IMAGES: 0, ea.SCALARS: 0}
    )
    acc.Reload()
    out: dict[str, list[tuple[int, float]]] = {}
    for tag in acc.Tags()["tensors"]:
        if acc.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
            continue
        latest: dict[int, tuple[float, float]] = {}  # step -> (wall_time, value)
        for ev in acc.Tensors(tag):
            value = float(tensor_util.make_ndarray(ev.tensor_proto))
            if ev.step not in latest or ev.wall_time >= latest[ev.step][0]:
                latest[ev.step] = (ev.wall_time, value)
        out[tag] = [(step, latest[step][1]) for step in sorted(latest)]
    return out


def read_hparams(run_dir: Path, tag: str):
    """The ``HParamsPluginData`` of hparams tag ``tag`` in one run (e.g.
    ``_hparams_/experiment`` in the ``base`` run, ``_hparams_/session_start_info``
    in a trial's)."""
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.plugins.hparams import plugin_data_pb2

    acc = ea.EventAccumulator(str(run_dir), size_guidance={ea.TENSORS: 0})
    acc.Reload()
    content = acc.PluginTagToContent("hparams")
    assert tag in content, sorted(content)
    return plugin_data_pb2.HParamsPluginData.FromString(content[tag])


def read_text(run_dir: Path, tag: str) -> str:
    """The last text summary ``tag`` of one run."""
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.util import tensor_util

    acc = ea.EventAccumulator(str(run_dir), size_guidance={ea.TENSORS: 0})
    acc.Reload()
    value = tensor_util.make_ndarray(acc.Tensors(tag)[-1].tensor_proto)
    return value.item().decode() if value.shape == () else value.flat[0].decode()
