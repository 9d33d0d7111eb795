"""domaintune._io: atomic writes, strict UTF-8 reads, line-tracking CSV records."""

from __future__ import annotations

import contextlib
import csv

import pytest

from domaintune import _io
from domaintune.errors import UserError


@pytest.mark.parametrize("content", ["text: é\n", b"\x00\x01bytes", lambda f: f.write(b"streamed")])
def test_write_atomic_writes_0644(tmp_path, content):
    path = _io.write_atomic(tmp_path / "out.bin", content)
    expected = {str: lambda c: c.encode("utf-8"), bytes: lambda c: c}.get(type(content))
    assert path.read_bytes() == (expected(content) if expected else b"streamed")
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_write_atomic_mode_and_fsync(tmp_path):
    path = _io.write_atomic(tmp_path / "private", "x", mode=0o600, fsync=True)
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_failing_writer_leaves_nothing(tmp_path):
    def writer(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        _io.write_atomic(tmp_path / "new.npz", writer)
    assert list(tmp_path.iterdir()) == []  # no file, no temp file
    old = tmp_path / "old.npz"
    old.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        _io.write_atomic(old, writer)
    assert old.read_bytes() == b"old" and list(tmp_path.iterdir()) == [old]


def test_nested_atomic_paths_rename_only_when_all_are_written(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    with pytest.raises(RuntimeError), contextlib.ExitStack() as stack:
        stack.enter_context(_io.atomic_path(a)).write_text("a")
        assert not a.exists()
        stack.enter_context(_io.atomic_path(b))
        raise RuntimeError("second file failed")
    assert list(tmp_path.iterdir()) == []
    with contextlib.ExitStack() as stack:
        for path in (a, b):
            stack.enter_context(_io.atomic_path(path)).write_text(path.stem)
    assert (a.read_text(), b.read_text()) == ("a", "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv"]


def test_read_utf8(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(b"\xef\xbb\xbfa,b\n1,2\n")
    assert _io.read_utf8(path, if_empty="Add rows.") == "a,b\n1,2\n"  # BOM dropped
    path.write_bytes(b" \r\n")
    with pytest.raises(UserError, match=r"f\.csv: the file is empty\. Add rows\.$"):
        _io.read_utf8(path, if_empty="Add rows.")
    for data in (b"a,b\nok\ncaf\xe9\n", b"\xef\xbb\xbfa,b\nok\ncaf\xe9\n"):  # with and without BOM
        path.write_bytes(data)
        with pytest.raises(UserError) as err:
            _io.read_utf8(path, if_empty="", fix="Fix it.")
        assert str(err.value) == f"{path}, line 3: not valid UTF-8 (byte 0xe9). Fix it."
    with pytest.raises(OSError):
        _io.read_utf8(tmp_path / "missing.csv", if_empty="")


def test_csv_records_name_the_line_a_record_starts_on(tmp_path):
    text = 'a,b\n"multi\nline",x\n\nlast,y\n'
    assert list(_io.csv_records("f.csv", text)) == [
        (1, ["a", "b"]),
        (2, ["multi\nline", "x"]),
        (4, []),
        (5, ["last", "y"]),
    ]
    tsv = 'a\tb\n"q\t"x\n'  # unquoted TSV: quotes are literal
    rows = list(_io.csv_records("f.tsv", tsv, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert rows[1] == (2, ['"q', '"x'])


def test_csv_records_malformed_is_a_user_error(monkeypatch):
    monkeypatch.setattr(_io, "CSV_FIELD_LIMIT", 100)  # a field over it is what csv rejects
    too_long = "x" * 101
    text = f'a,b\nok,1\n"multi\nline",2\n{too_long},3\n'
    rows = _io.csv_records("f.csv", text, kind="TSV", fix="Check it.")
    assert next(rows) == (1, ["a", "b"])
    with pytest.raises(UserError) as err:
        list(rows)
    assert str(err.value).startswith("f.csv, line 5: malformed TSV (")
    assert str(err.value).endswith("). Check it.")


def test_csv_records_reads_fields_over_the_csv_modules_limit():
    before = csv.field_size_limit()
    huge = "y" * (before + 1)
    rows = _io.csv_records("f.csv", f"a,b\n{huge},1\n")
    assert next(rows) == (1, ["a", "b"])
    assert csv.field_size_limit() == before  # lifted only while a record is parsed
    assert next(rows) == (2, [huge, "1"])
    assert csv.field_size_limit() == before
