"""The user's overrides of the search space: ``--hp`` options and ``--hp-file``
mappings parsed, and each value checked and applied to its :class:`Param`.

A parameter is fixed (``--hp learning_rate=2e-5``), given a choice
(``--hp batch_size=8,16``) or a range (``--hp learning_rate=1e-6:1e-5``); a
YAML/JSON file maps names to the same forms (a value, a list, or
``{min: .., max: ..}``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from domaintune.errors import UserError
from domaintune.search.param import Param


def _coerce(param: Param, raw: Any) -> Any:
    """Convert one user value to the parameter's type, or fail clearly."""
    sample = param.default
    try:
        if isinstance(sample, bool):
            if isinstance(raw, str):
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(raw)
                return raw.lower() in ("true", "1")
            return bool(raw)
        if isinstance(sample, int):
            value = float(raw)
            if not value.is_integer():
                raise ValueError(raw)
            return _in_bounds(param, int(value))
        if isinstance(sample, float):
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError(raw)
            return _in_bounds(param, value)
        value = str(raw)
        if param.allowed and value not in param.allowed:
            raise UserError(
                f"--hp {param.name}: '{value}' is not one of {', '.join(param.allowed)}."
            )
        return value
    except (TypeError, ValueError):
        raise UserError(
            f"--hp {param.name}: '{raw}' is not a valid "
            f"{type(sample).__name__} (default is {sample!r})."
        ) from None


def _in_bounds(param: Param, value: float) -> float:
    low, high = param.minimum, param.maximum
    too_low = low is not None and (value < low or (param.exclusive_minimum and value == low))
    if too_low or (high is not None and value > high):
        lower = "" if low is None else (f"> {low:g}" if param.exclusive_minimum else f">= {low:g}")
        upper = "" if high is None else f"<= {high:g}"
        raise UserError(
            f"--hp {param.name}={value:g}: must be {' and '.join(x for x in (lower, upper) if x)}."
        )
    return value


def override(param: Param, spec: Any) -> Param:
    """``param`` fixed, given a choice or narrowed to a range by a user's ``spec``."""
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"min", "max"}
        if unknown or not {"min", "max"} <= set(spec):
            raise UserError(f"--hp {param.name}: a range needs exactly 'min' and 'max' keys.")
        spec = (spec["min"], spec["max"], "range")
    if isinstance(spec, tuple) and len(spec) == 3 and spec[2] == "range":
        if param.kind == "fixed" and type(param.default) in (int, float):
            param = replace(param, kind=type(param.default).__name__)
        if param.kind == "choice" and all(type(v) is int for v in param.values):
            raise UserError(
                f"--hp {param.name}: give a list of values, e.g. "
                f"--hp {param.name}=8,16,32, not a range."
            )
        if param.kind not in ("float", "int"):
            choices = ", ".join(param.allowed) if param.allowed else param.describe()
            raise UserError(
                f"--hp {param.name}: a range needs a numeric parameter; "
                f"'{param.name}' takes one of {choices}."
            )
        low, high = _coerce(param, spec[0]), _coerce(param, spec[1])
        if not low < high or (param.log and low <= 0):
            raise UserError(
                f"--hp {param.name}={spec[0]}:{spec[1]}: need min < max"
                f"{' and min > 0 (log scale)' if param.log else ''}."
            )
        default = min(max(param.default, low), high)
        return replace(param, low=low, high=high, default=default)
    values = list(spec) if isinstance(spec, (list, tuple)) else [spec]
    if not values:
        raise UserError(f"--hp {param.name}: give at least one value.")
    values = list(dict.fromkeys(_coerce(param, v) for v in values))
    if len(values) == 1:
        return replace(param, kind="fixed", default=values[0], values=())
    return replace(param, kind="choice", default=values[0], values=tuple(values))


def parse_hp_options(options: Iterable[str]) -> dict[str, Any]:
    """Parse ``name=value``, ``name=v1,v2`` and ``name=min:max`` options."""
    overrides: dict[str, Any] = {}
    for option in options:
        name, sep, raw = option.partition("=")
        name, raw = name.strip(), raw.strip()
        if not sep or not name or not raw:
            raise UserError(
                f"--hp '{option}': expected NAME=VALUE, NAME=V1,V2 or "
                "NAME=MIN:MAX, e.g. --hp learning_rate=2e-5."
            )
        if ":" in raw:
            low, _, high = raw.partition(":")
            overrides[name] = (low, high, "range")
        else:
            overrides[name] = [v.strip() for v in raw.split(",")]
    return overrides


def load_hp_file(path: Path) -> dict[str, Any]:
    """Read overrides from a YAML or JSON file (a mapping of name -> spec)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--hp-file: cannot read '{path}' ({exc}).") from None
    try:
        if Path(path).suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # json/yaml errors carry the line number
        raise UserError(f"--hp-file: '{path}' is not valid YAML/JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise UserError(
            f"--hp-file: '{path}' must map hyperparameter names to a value, "
            "a list of values, or {min: .., max: ..}."
        )
    return dict(data)


def hp_overrides(
    hp: Mapping[str, Any] | None, hp_file: Any, epochs: int | None, loss: Any
) -> dict[str, Any]:
    """The Python API's hyperparameter forms (``hp``, ``hp_file``, ``epochs``,
    ``loss``) as the search space's overrides."""
    overrides = load_hp_file(Path(hp_file)) if hp_file else {}
    for name, spec in (hp or {}).items():
        if isinstance(spec, tuple):
            if len(spec) != 2:
                raise UserError(f"--hp {name}: a range is a (min, max) tuple, got {spec!r}.")
            spec = (spec[0], spec[1], "range")
        elif not isinstance(spec, (list, Mapping)):
            spec = [spec]
        overrides[name] = spec
    if epochs is not None:
        if "epochs" in overrides:
            raise UserError("--epochs and --hp epochs=... both set the epochs; keep one.")
        overrides["epochs"] = [epochs]
    for name, spec in _loss_overrides(loss).items():
        if name in overrides:
            raise UserError(f"loss= and hp {name!r} both set the loss's {name}; keep one.")
        overrides[name] = spec
    return overrides


def _loss_overrides(loss: Any) -> dict[str, Any]:
    """A loss name or names -> loss=[...]; an instance also fixes its settings."""
    if loss is None:
        return {}
    if isinstance(loss, str):
        return {"loss": [loss]}
    if isinstance(loss, (list, tuple)) and all(isinstance(x, str) for x in loss):
        return {"loss": list(loss)}
    if not (
        dataclasses.is_dataclass(loss)
        and not isinstance(loss, type)
        and isinstance(getattr(loss, "name", None), str)
    ):
        raise UserError(
            f"loss={loss!r}: give a loss name, a list of names, or an instance "
            "of a domaintune.models.losses class, e.g. InBatchNegatives(scale=30.0)."
        )
    settings = {f.name: [getattr(loss, f.name)] for f in dataclasses.fields(loss)}
    return {"loss": [loss.name], **settings}
