"""Hyperparameter domains for TensorBoard's HParams dashboard (:class:`HParamSpec`).

TensorBoard has no integer type (its HParams show every number as
``8.0000``), so integer hyperparameters are declared and logged as strings,
unless a range is too long to list. TensorBoard sorts strings as text (its
parallel coordinates would put 64 above 1024), so they are padded on the left
with spaces to the same width: ``" 8"``, ``"16"``, ``"32"``. A web page does
not show leading spaces; ``int()`` reads them.
Independent of keras_tuner.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Literal

import numpy as np

__all__ = ["HParamKind", "HParamSpec", "scalar_value"]

HParamKind = Literal["float", "int", "choice", "bool"]
#: Integer ranges up to this many values are logged as strings.
_MAX_LISTED_INTS = 200


@dataclass(frozen=True)
class HParamSpec:
    """One hyperparameter's domain, for the HParams dashboard.

    ``kind`` and ``values``:

    - ``"float"``: ``values = (min, max)``, a real interval;
    - ``"int"``: ``values = (min, max)``, an integer interval (inclusive);
    - ``"choice"``: ``values`` = the allowed values, all str, all bool, or
      all numbers (ints and floats mixed are stored as floats);
    - ``"bool"``: ``values`` is ignored (the domain is ``{False, True}``).

    A spec with a single possible value is a fixed hyperparameter: not
    :attr:`searched`, it is listed in the base run's text, not in HParams.
    """

    name: str
    kind: HParamKind
    values: Sequence[Any] = ()

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("HParamSpec.name must be non-empty")
        if self.kind in ("float", "int"):
            if len(self.values) != 2 or not all(_is_number(v) for v in self.values):
                raise ValueError(
                    f"hparam {self.name!r}: {self.kind} needs values=(min, max), "
                    f"got {self.values!r}"
                )
            if self.values[0] > self.values[1]:
                raise ValueError(f"hparam {self.name!r}: min > max in {self.values!r}")
        elif self.kind == "choice":
            _choice_values(self.name, self.values)  # validates
        elif self.kind != "bool":
            raise ValueError(
                f"hparam {self.name!r}: unknown kind {self.kind!r} (float, int, choice, bool)"
            )

    @property
    def searched(self) -> bool:
        """Whether the search varies it (more than one possible value)."""
        if self.kind == "bool":
            return True
        if self.kind == "choice":
            return len(set(_choice_values(self.name, self.values))) > 1
        return self.values[0] != self.values[1]

    def describe(self) -> str:
        """The domain in words: ``[1e-06, 0.0001]``, ``{8, 16, 32}``, ``8``."""
        if self.kind == "bool":
            return "{False, True}"
        if self.kind == "choice":
            values = _choice_values(self.name, self.values)
            if all(_is_number(v) for v in values):
                values = sorted(values)
            shown = [_format(v) for v in values]
            return shown[0] if len(shown) == 1 else "{" + ", ".join(shown) + "}"
        low, high = (_format(scalar_value(v)) for v in self.values)
        return low if low == high else f"[{low}, {high}]"

    def to_hparam(self, hp_api: Any) -> Any:
        """This spec as an ``hp_api.HParam`` (integers as strings, see the module doc)."""
        lo_hi = [scalar_value(v) for v in self.values]
        if self.kind == "float":
            domain = hp_api.RealInterval(float(lo_hi[0]), float(lo_hi[1]))
        elif self.kind == "int" and self._ints_as_strings():
            domain = hp_api.Discrete(self._ints(range(int(lo_hi[0]), int(lo_hi[1]) + 1)))
        elif self.kind == "int":  # too many to list: a number after all
            domain = hp_api.IntInterval(int(lo_hi[0]), int(lo_hi[1]))
        elif self.kind == "bool":
            domain = hp_api.Discrete([False, True])
        elif self._ints_as_strings():
            domain = hp_api.Discrete(self._ints(sorted(set(lo_hi))))
        else:
            domain = hp_api.Discrete(_choice_values(self.name, self.values))
        return hp_api.HParam(self.name, domain)

    def logged(self, value: Any) -> Any:
        """A trial's value as the HParams session records it (as :meth:`to_hparam` declares)."""
        value = scalar_value(value)
        if self._ints_as_strings() and _is_number(value) and float(value).is_integer():
            return self._ints([int(value)])[0]
        return value

    def _ints(self, values: Iterable[int]) -> list[str]:
        """Integers as strings of the domain's width (see the module doc)."""
        bounds = [int(scalar_value(v)) for v in self.values]
        width = max(len(str(v)) for v in bounds)
        return [str(v).rjust(width) for v in values]

    def _ints_as_strings(self) -> bool:
        if self.kind == "int":
            return self.values[1] - self.values[0] < _MAX_LISTED_INTS
        if self.kind == "choice":
            return all(_is_int(v) for v in _choice_values(self.name, self.values))
        return False


def scalar_value(value: Any) -> Any:
    """A numpy scalar as the Python value it holds; anything else as it is."""
    return value.item() if isinstance(value, np.generic) else value


def _is_number(value: Any) -> bool:
    value = scalar_value(value)
    return isinstance(value, Real) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _format(value: Any) -> str:
    return f"{value:g}" if _is_number(value) and not _is_int(value) else str(value)


def _choice_values(name: str, values: Iterable[Any]) -> list[Any]:
    vals = [scalar_value(v) for v in values]
    if not vals:
        raise ValueError(f"hparam {name!r}: choice needs at least one value")
    if all(isinstance(v, bool) for v in vals) or all(isinstance(v, str) for v in vals):
        return vals
    if all(_is_number(v) for v in vals):
        return vals if all(isinstance(v, int) for v in vals) else [float(v) for v in vals]
    raise ValueError(
        f"hparam {name!r}: choice values must be all str, all bool or all numbers: {vals!r}"
    )


def experiment_config_pb(hp_api: Any, specs: Sequence[HParamSpec], metrics: Sequence[Any]) -> Any:
    """The HParams experiment config of ``specs`` and ``metrics`` (``hp_api.Metric``)
    as a ``Summary`` proto, for ``tf.summary.experimental.write_raw_pb``.

    ``hp_api`` sorts discrete domains, which puts ``"8"`` after ``"32"``;
    TensorBoard lists the values (filters, axes) in the stored order, so
    integer strings are put back in numeric order.
    """
    from tensorboard.plugins.hparams import plugin_data_pb2

    summary = hp_api.hparams_config_pb(
        hparams=[s.to_hparam(hp_api) for s in specs], metrics=metrics
    )
    plugin_data = summary.value[0].metadata.plugin_data
    data = plugin_data_pb2.HParamsPluginData.FromString(plugin_data.content)
    for info in data.experiment.hparam_infos:
        values = info.domain_discrete.values
        texts = [v.string_value for v in values if v.HasField("string_value")]
        if texts and len(texts) == len(values) and all(_int_literal(t.strip()) for t in texts):
            del values[:]
            for text in sorted(texts, key=int):
                values.add().string_value = text
    plugin_data.content = data.SerializeToString()
    return summary


def _int_literal(text: str) -> bool:
    try:
        return str(int(text)) == text
    except ValueError:
        return False
