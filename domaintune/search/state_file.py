"""The file format of a running trial's state (:mod:`domaintune.search.trial_state`).

An uncompressed ``.npz`` (readable by ``numpy.load``) whose members are named
``<group><i>.<part>``: a variable is stored as ``.rows`` + ``.values`` (the
rows a trial changed, e.g. the few thousand of USE-m3's 128k embedding rows
lazy Adam wrote) or ``.whole``, streamed in row chunks so that no second copy
of a big table is made; ``meta`` (JSON) is written last, so a file with a
``meta`` member is complete (the write is atomic as well).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from typing import IO, Any

import numpy as np

from domaintune import tf_runtime
from domaintune.models import weights_io

META = "meta"


class StateWriter:
    """Writes the members of a state file into an open binary file."""

    def __init__(self, file: IO[bytes]):
        self.archive = zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True)

    def __enter__(self) -> StateWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.archive.close()

    def array(self, name: str, value: np.ndarray) -> None:
        with self.archive.open(f"{name}.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)

    def variable(self, name: str, variable, rows: Any | None) -> None:
        """``variable`` at ``rows`` (ids), or whole when ``rows`` is None;
        streamed in row chunks: no second copy of a big table is made."""
        tf = tf_runtime.load().tf
        shape = [int(d) for d in variable.shape]
        if rows is None:
            self._stream(f"{name}.whole", variable, shape, weights_io.read_chunks(variable))
            return
        rows = np.asarray(rows, np.int64)
        self.array(f"{name}.rows", rows)
        chunks = (
            tf.gather(variable, rows[start : start + weights_io.CHUNK_ROWS]).numpy()
            for start in range(0, len(rows), weights_io.CHUNK_ROWS)
        )
        self._stream(f"{name}.values", variable, [len(rows), *shape[1:]], chunks)

    def _stream(self, name: str, variable, shape: list[int], chunks) -> None:
        header = {
            "descr": np.lib.format.dtype_to_descr(np.dtype(variable.dtype.as_numpy_dtype)),
            "fortran_order": False,
            "shape": tuple(shape),
        }
        with self.archive.open(f"{name}.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_2_0(member, header)
            for chunk in chunks:
                member.write(np.ascontiguousarray(chunk).tobytes())

    def snapshot(self, taken, variables, changed_rows) -> None:
        """Early stopping's best-epoch weights (``TrainableEncoder.snapshot_taken``):
        by rows as taken; a whole copy only where ``changed_rows`` (what the trial
        has written, a superset of what it had then) says it differs from the
        trial's start, which :meth:`StateReader.snapshot` completes it from."""
        for i, (variable, (rows, values)) in enumerate(zip(variables, taken)):
            name = f"snapshot{i}"
            if rows is not None:
                self.array(f"{name}.rows", np.asarray(rows, np.int64))
                if values is not None:
                    self.array(f"{name}.values", values)
                continue
            written = changed_rows(variable)
            if written is None:
                self.array(f"{name}.whole", values)
            else:
                written = np.asarray(written, np.int64)
                self.array(f"{name}.start_rows", written)
                self.array(f"{name}.start_values", values[written])

    def texts(self, name: str, texts: Sequence[str]) -> None:
        """Strings as UTF-8 bytes and their lengths (no pickled objects)."""
        encoded = [t.encode("utf-8") for t in texts]
        self.array(f"{name}.lengths", np.fromiter(map(len, encoded), np.int64, len(encoded)))
        self.array(f"{name}.bytes", np.frombuffer(b"".join(encoded), np.uint8))

    def meta(self, meta: dict[str, Any]) -> None:
        self.array(META, np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8))


class StateReader:
    """Reads a state file written by :class:`StateWriter`.

    Raises ValueError when the file is not a complete state file.
    """

    def __init__(self, path):
        try:
            self.file = np.load(path, allow_pickle=False)
            self.names = set(self.file.files)
            if META not in self.names:
                raise ValueError(f"{path} is incomplete (no {META})")
            self.meta: dict[str, Any] = json.loads(self.file[META].tobytes().decode("utf-8"))
        except (OSError, zipfile.BadZipFile, EOFError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} is not a readable trial state ({exc})") from None

    def close(self) -> None:
        self.file.close()

    def __getitem__(self, name: str) -> np.ndarray:
        return self.file[name]

    def has(self, name: str) -> bool:
        return name in self.names

    def check_variable(self, name: str, variable) -> None:
        """Raise ValueError unless ``name`` fits ``variable`` (before any write)."""
        expected = tuple(int(d) for d in variable.shape)
        dtype = np.dtype(variable.dtype.as_numpy_dtype)
        if self.has(f"{name}.whole"):
            shape, found = self._header(f"{name}.whole")
        elif self.has(f"{name}.rows"):
            shape, found = self._header(f"{name}.values")
            rows = self.file[f"{name}.rows"]
            if shape[:1] != rows.shape or (
                len(rows) and not 0 <= rows.min() <= rows.max() < expected[0]
            ):
                raise ValueError(f"{name}: the row ids do not fit the variable or the values")
            shape = expected[:1] + shape[1:]
        else:
            raise ValueError(f"{name} is missing")
        if shape != expected or found != dtype:
            raise ValueError(f"{name} is {found}{list(shape)}, the variable {dtype}{expected}")

    def _header(self, name: str) -> tuple[tuple[int, ...], np.dtype]:
        with self.file.zip.open(f"{name}.npy") as member:
            version = np.lib.format.read_magic(member)
            read = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read(member)
        return tuple(shape), dtype

    def write_variable(self, name: str, variable) -> None:
        """Assign ``variable`` from ``name`` (its rows, or whole)."""
        if self.has(f"{name}.whole"):
            weights_io.write(variable, self.file[f"{name}.whole"])
        else:
            rows = self.file[f"{name}.rows"]
            if len(rows):
                weights_io.write(variable, self.file[f"{name}.values"], rows)

    def snapshot(self, variables) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
        """What :meth:`StateWriter.snapshot` wrote; call while ``variables``
        hold the trial's start (a whole copy is completed from them)."""
        taken = []
        for i, variable in enumerate(variables):
            name = f"snapshot{i}"
            if self.has(f"{name}.whole"):
                taken.append((None, self.file[f"{name}.whole"]))
            elif self.has(f"{name}.start_rows"):
                whole = weights_io.read_into(variable)
                whole[self.file[f"{name}.start_rows"]] = self.file[f"{name}.start_values"]
                taken.append((None, whole))
            else:
                values = self.file[f"{name}.values"] if self.has(f"{name}.values") else None
                taken.append((self.file[f"{name}.rows"], values))
        return taken

    def texts(self, name: str) -> list[str]:
        lengths = self.file[f"{name}.lengths"]
        data = self.file[f"{name}.bytes"].tobytes()
        ends = np.cumsum(lengths)
        return [data[end - n : end].decode("utf-8") for n, end in zip(lengths, ends)]
