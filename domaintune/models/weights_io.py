"""Reading and writing big variables in row chunks, and .npz files of them.

A whole-tensor ``variable.assign(array)`` or ``variable.numpy()`` of USE-m3's
embedding table (most of its checkpoint) allocates a second table; once the
table has had sparse updates, TensorFlow also keeps the old buffer alive, and
every such write left the process about one table larger (measured: a restore by ``assign`` grew
RSS by 0.53 GB, one by chunked ``scatter_update`` by 0.03 GB). So big
variables move in chunks of rows, through ``tf.gather`` / ``scatter_update``,
and checkpoints are streamed to and from the zip members of an ``.npz``
(still readable by ``numpy.load``).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Sequence
from typing import IO

import numpy as np

from domaintune import tf_runtime

CHUNK_ROWS = 8192
_BIG = 1 << 20  # elements; smaller variables are read and written whole


def _is_big(shape: Sequence[int]) -> bool:
    return len(shape) >= 1 and int(np.prod(shape)) >= _BIG


def read_chunks(variable) -> Iterator[np.ndarray]:
    """The variable's value as consecutive row chunks (one chunk if small)."""
    tf = tf_runtime.load().tf
    rows = int(variable.shape[0]) if variable.shape.rank else 0
    if not _is_big(variable.shape):
        yield variable.numpy()
        return
    for start in range(0, rows, CHUNK_ROWS):
        yield tf.gather(variable, tf.range(start, min(start + CHUNK_ROWS, rows))).numpy()


def read_into(variable, out: np.ndarray | None = None) -> np.ndarray:
    """The variable's value, copied chunk by chunk into ``out`` (or a new array)."""
    if out is None:
        out = np.empty(tuple(int(d) for d in variable.shape), variable.dtype.as_numpy_dtype)
    if not _is_big(variable.shape):
        out[...] = variable.numpy()
        return out
    start = 0
    for chunk in read_chunks(variable):
        out[start : start + len(chunk)] = chunk
        start += len(chunk)
    return out


def read_changed(variable, reference: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """The variable's value where it differs from ``reference`` (same shape):
    ``(None, whole value)`` for a small variable; for a big one ``(row ids,
    those rows)``, compared chunk by chunk, so no whole copy is made."""
    if not _is_big(variable.shape):
        return None, variable.numpy()
    rows, values, start = [], [], 0
    for chunk in read_chunks(variable):
        stop = start + len(chunk)
        differ = (chunk != reference[start:stop]).reshape(len(chunk), -1).any(axis=1)
        rows.append(np.flatnonzero(differ) + start)
        values.append(chunk[differ])
        start = stop
    return np.concatenate(rows).astype(np.int64), np.concatenate(values)


def write(variable, value: np.ndarray, rows: np.ndarray | None = None) -> None:
    """Write ``value`` into ``variable``: whole, or ``value[i]`` into row
    ``rows[i]`` when ``rows`` is given."""
    tf = tf_runtime.load().tf
    if rows is None and not _is_big(variable.shape):
        variable.assign(value)
        return
    rows = np.arange(value.shape[0]) if rows is None else np.asarray(rows, np.int64)
    for start in range(0, len(rows), CHUNK_ROWS):
        variable.scatter_update(
            tf.IndexedSlices(value[start : start + CHUNK_ROWS], rows[start : start + CHUNK_ROWS])
        )


def save_npz(file: IO[bytes], variables: Sequence) -> None:
    """Write the variables as ``v0``, ``v1``, ... of an uncompressed .npz."""
    for variable in variables:
        if not (variable.dtype.is_floating or variable.dtype.is_integer or variable.dtype.is_bool):
            raise ValueError(
                f"cannot checkpoint {variable.name}: dtype {variable.dtype.name} is not numeric"
            )
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for i, variable in enumerate(variables):
            header = {
                "descr": np.lib.format.dtype_to_descr(np.dtype(variable.dtype.as_numpy_dtype)),
                "fortran_order": False,
                "shape": tuple(int(d) for d in variable.shape),
            }
            with archive.open(f"v{i}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array_header_2_0(member, header)
                for chunk in read_chunks(variable):
                    member.write(np.ascontiguousarray(chunk).tobytes())


def load_npz(path, variables: Sequence) -> None:
    """Assign ``variables`` from a file written by :func:`save_npz` (or
    ``np.savez``), streaming big ones. Raises ValueError if the file is not
    such a checkpoint or does not fit the variables; every header is checked
    before anything is written, but a file damaged inside its data may leave
    the variables partly overwritten."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith(".npy")]
            if len(names) != len(variables):
                raise ValueError(
                    f"{path} holds {len(names)} variables, the encoder has {len(variables)}"
                )
            for check_only in (True, False):
                for i, variable in enumerate(variables):
                    with archive.open(f"v{i}.npy") as member:
                        _load_member(member, variable, f"{path}:v{i}", check_only)
    except (zipfile.BadZipFile, KeyError, EOFError) as exc:
        raise ValueError(f"{path} is not a readable encoder checkpoint ({exc})") from None


def _load_member(member: IO[bytes], variable, where: str, check_only: bool) -> None:
    version = np.lib.format.read_magic(member)
    read_header = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    shape, fortran, dtype = read_header(member)
    expected = tuple(int(d) for d in variable.shape)
    if shape != expected or fortran or dtype != np.dtype(variable.dtype.as_numpy_dtype):
        raise ValueError(
            f"{where} is {dtype}{list(shape)}, the variable is "
            f"{variable.dtype.name}{list(expected)}"
        )
    if check_only:
        return
    if not _is_big(shape):
        variable.assign(np.frombuffer(member.read(), dtype).reshape(shape))
        return
    row_bytes = dtype.itemsize * int(np.prod(shape[1:]))
    for start in range(0, shape[0], CHUNK_ROWS):
        count = min(CHUNK_ROWS, shape[0] - start)
        data = member.read(count * row_bytes)
        if len(data) != count * row_bytes:
            raise ValueError(f"{where} is truncated")
        write(
            variable,
            np.frombuffer(data, dtype).reshape((count, *shape[1:])),
            rows=np.arange(start, start + count),
        )
