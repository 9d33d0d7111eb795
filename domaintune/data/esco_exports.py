"""Reading ESCO CSV exports: occupations (one file per language, joined on ``conceptUri``)
and ISCO groups.

ESCO exports are RFC 4180 CSV with a header; ``altLabels`` holds one label per
line inside one quoted field, ``iscoGroup`` the 4-digit ISCO-08 unit group.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from domaintune._io import csv_records, read_utf8
from domaintune.errors import UserError

OCCUPATION_COLUMNS = ("conceptUri", "iscoGroup", "preferredLabel", "altLabels", "description")
ISCO_COLUMNS = ("conceptUri", "code", "preferredLabel")
_LANG_RE = re.compile(r"^(?:occupations|iscogroups)_([a-z]{2,3}(?:[-_][a-z0-9]+)?)\.csv$", re.I)


@dataclass(frozen=True)
class Labels:
    """One occupation's texts in one language (whitespace-normalised)."""

    preferred: str
    alt: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Occupation:
    """An ESCO occupation, joined across language exports on ``conceptUri``."""

    uri: str
    isco_group: str  # 4 digits
    labels: Mapping[str, Labels]  # language -> texts, sorted by language


class IscoGroup(NamedTuple):
    uri: str
    code: str
    label: str  # a row of ISCOGroups


def clean_text(text: str) -> str:
    """``text`` with runs of whitespace (line breaks too) made one space, trimmed."""
    return " ".join(text.split())


def _lang_of(path: Path, index: int) -> str:
    """``occupations_<lang>.csv`` -> lang; another name: ``xx`` for the first file, else
    ``xx<position>``."""
    m = _LANG_RE.match(path.name)
    return m.group(1).lower().replace("_", "-") if m else "xx" if index == 0 else f"xx{index + 1}"


def _read_csv(
    path: Path, required: Sequence[str], what: str
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line, row) of a strict UTF-8 CSV with a header; every problem is a UserError."""
    try:
        text = read_utf8(
            path,
            if_empty=f"Export the {what} table from ESCO again, as CSV.",
            fix="Download the export again or re-save it as UTF-8.",
        )
    except OSError as err:
        raise UserError(
            f"{path}: cannot read the {what} file ({err.strerror or err}); check the path."
        ) from None
    records = csv_records(path, text, fix="Check the quoting there.")
    header = [h.strip() for h in next(records, (1, []))[1]]  # ESCO headers are one line
    if missing := [c for c in required if c not in header]:
        raise UserError(
            f"{path}, line 1: missing column(s) {', '.join(missing)} (found: "
            f"{', '.join(header)}). Pass an ESCO {what} CSV export, with the "
            f"columns {', '.join(required)}."
        )
    n_rows = 0
    for line, row in records:
        if not any(f.strip() for f in row):
            continue
        if len(row) != len(header):  # e.g. a cut-off download
            raise UserError(
                f"{path}, line {line}: {len(row)} fields where the header has "
                f"{len(header)}. Check the quoting of that record."
            )
        n_rows += 1
        yield line, dict(zip(header, row))
    if not n_rows:
        raise UserError(f"{path}: no {what} rows, only a header. Export the full table from ESCO.")


def read_occupations(paths: Sequence[Path]) -> list[Occupation]:
    """Read one occupations export per language, joined on ``conceptUri`` and sorted by it.

    Language: from the file name ``occupations_<lang>.csv``; other names get ``xx`` if first in
    ``paths``, else ``xx<position>`` (``xx2`` for the second file...). ``hiddenLabels`` are not
    read.
    """
    groups: dict[str, tuple[str, str]] = {}  # uri -> (code, where it was read)
    labels: dict[str, dict[str, Labels]] = defaultdict(dict)
    langs: dict[str, Path] = {}
    for index, path in enumerate(map(Path, paths)):
        lang = _lang_of(path, index)
        if lang in langs:
            raise UserError(
                f"{path}: language '{lang}' is also given by {langs[lang]}. "
                "Pass one occupations_<lang>.csv per language."
            )
        langs[lang] = path
        for line, row in _read_csv(path, OCCUPATION_COLUMNS, "occupations"):
            uri, code, pref = (
                row["conceptUri"].strip(),
                row["iscoGroup"].strip(),
                clean_text(row["preferredLabel"]),
            )
            where = f"{path}, line {line}"
            if not uri or not pref:
                raise UserError(
                    f"{where}: empty {'preferredLabel' if uri else 'conceptUri'}; "
                    "fill it in or delete the row."
                )
            if not (len(code) == 4 and code.isdigit()):
                raise UserError(
                    f"{where}: iscoGroup {code!r} is not a 4-digit ISCO-08 unit group code; "
                    "fix it or delete the row."
                )
            if lang in labels[uri]:
                raise UserError(
                    f"{where}: {uri} already appears above in this file; delete one of the rows."
                )
            if groups.setdefault(uri, (code, where))[0] != code:
                raise UserError(
                    f"{where}: {uri} has iscoGroup {code} but {groups[uri][0]} in "
                    f"{groups[uri][1]}. Use exports of one ESCO version."
                )
            alts = dict.fromkeys(
                a for a in map(clean_text, row["altLabels"].splitlines()) if a and a != pref
            )
            labels[uri][lang] = Labels(pref, tuple(alts), clean_text(row["description"]))
    return [Occupation(u, groups[u][0], dict(sorted(labels[u].items()))) for u in sorted(groups)]


def read_isco_groups(path: Path) -> tuple[str, dict[str, IscoGroup]]:
    """Read an ESCO ``ISCOGroups_<lang>.csv``: ``(lang, code -> group)``; lang as for
    occupations."""
    groups = (
        IscoGroup(row["conceptUri"].strip(), row["code"].strip(), clean_text(row["preferredLabel"]))
        for _, row in _read_csv(Path(path), ISCO_COLUMNS, "ISCO groups")
    )
    return _lang_of(Path(path), 0), {g.code: g for g in groups}
