"""File helpers shared by the package (private): atomic writes, strict reads.

- :func:`atomic_path` / :func:`write_atomic`: a file appears whole or not at
  all (a temp file beside the target, then ``os.replace``), readable by others
  (0644: project folders are shared by the processes of a distributed search);
  :func:`temp_glob` finds the temp files a killed writer left.
- :func:`read_utf8`: a user's text file, with an error naming the file, line
  and byte that are not UTF-8.
- :func:`csv_records`: CSV records with the line each starts on (a quoted
  field may span lines), a malformed one a :class:`UserError` naming it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from domaintune.errors import UserError

#: What an atomic write leaves: read for all, written by the owner.
FILE_MODE = 0o644
#: The csv field limit while :func:`csv_records` parses: the largest every
#: platform takes (a C long may be 32 bits), in effect none.
CSV_FIELD_LIMIT = 2**31 - 1


_TEMP_SUFFIX = ".tmp"


def temp_glob(name: str) -> str:
    """The glob pattern (``.<name>.*.tmp``) of the temp files that atomic writes
    of a file called ``name`` use: a write in progress, or what a writer killed
    mid-write left behind (only the caller knows which)."""
    return f".{name}.*{_TEMP_SUFFIX}"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, mode: int = FILE_MODE) -> Iterator[Path]:
    """Yield a new empty temp file beside ``path`` to write; on a clean exit it
    replaces ``path`` (with ``mode``), on an error it is deleted.

    Several can be nested (e.g. in an ``ExitStack``) so that files are renamed
    only once all of them are written.
    """
    path = Path(path)
    # Unique per writer: processes on several machines may write one file.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)  # mkstemp made it private
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):  # only after an error
            os.unlink(tmp)


def write_atomic(
    path: str | os.PathLike[str],
    content: str | bytes | Callable[[BinaryIO], None],
    *,
    mode: int = FILE_MODE,
    fsync: bool = False,
) -> Path:
    """Write ``content`` to ``path`` atomically and return the path.

    ``content`` is text (written as UTF-8), bytes, or a callback that streams
    into the open binary file (e.g. a large checkpoint). ``fsync`` flushes the
    data to disk before the rename.
    """
    with atomic_path(path, mode=mode) as tmp, open(tmp, "wb") as f:
        if callable(content):
            content(f)
        else:
            f.write(content.encode("utf-8") if isinstance(content, str) else content)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def read_utf8(
    path: str | os.PathLike[str], *, if_empty: str, fix: str = "Re-save the file as UTF-8."
) -> str:
    """The text of a UTF-8 file (a byte-order mark is dropped).

    Raises :class:`UserError` ``"<path>: the file is empty. <if_empty>"`` for a
    file of only white space, and ``"<path>, line N: not valid UTF-8 (byte
    0xNN). <fix>"`` for a bad byte. ``OSError`` is the caller's to word.
    """
    data = Path(path).read_bytes()
    if not data.strip():
        raise UserError(f"{path}: the file is empty. {if_empty}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        # err.object lacks the BOM that utf-8-sig skipped; err.start counts in it.
        line = err.object[: err.start].count(b"\n") + 1
        raise UserError(
            f"{path}, line {line}: not valid UTF-8 (byte 0x{err.object[err.start]:02x}). {fix}"
        ) from None


def csv_records(
    path: str | os.PathLike[str],
    text: str,
    *,
    delimiter: str = ",",
    quoting: int = csv.QUOTE_MINIMAL,
    kind: str = "CSV",
    fix: str = "Check the quoting on that line.",
) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line the record starts on, fields)`` for every record of ``text``.

    Blank lines are yielded too (as ``[]``), the header as the first record. A
    ``csv.Error`` becomes ``UserError("<path>, line N: malformed <kind> (...).
    <fix>")`` naming the line the bad record starts on.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    start = 1
    while True:
        # The csv module refuses fields over 131,072 characters and blames the
        # quoting; the text is in memory already, so its limit guards nothing
        # here, and the caller's own rules (a pair file's maximum text length)
        # must speak first. Lifted only while a record is parsed: it is global.
        limit = csv.field_size_limit(CSV_FIELD_LIMIT)
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise UserError(f"{path}, line {start}: malformed {kind} ({err}). {fix}") from None
        finally:
            csv.field_size_limit(limit)
        yield start, row
        start = reader.line_num + 1
