"""STS Benchmark (Cer et al., 2017) loader: find, download, verify, safely extract, parse."""

from __future__ import annotations

import csv
import hashlib
import http.client
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from domaintune.cache import cache_dir
from domaintune.errors import UserError

DEFAULT_STS_URL = "https://ixa2.si.ehu.eus/stswiki/images/4/48/Stsbenchmark.tar.gz"
DEFAULT_STS_MD5 = "4eb0065aba063ef77873d3a9c8088811"
SPLITS = ("dev", "test", "train")
CACHE_SUBDIR = "stsbenchmark"

_HINT = (
    "Pass --sts PATH (a folder with sts-dev.csv, the Stsbenchmark.tar.gz archive, "
    "or one CSV), set DOMAINTUNE_STS_DIR, or --sts none to skip it."
)
_log = logging.getLogger("domaintune")
_FILTER_ERROR = getattr(tarfile, "FilterError", ())  # () matches nothing on old Pythons


@dataclass(frozen=True)
class StsPairs:
    """Sentence pairs with gold similarity scores (0 = unrelated .. 5 = equivalent)."""

    sentences1: list[str]
    sentences2: list[str]
    scores: np.ndarray  # float32, shape (n,)
    source: str  # the file the pairs came from, for reports and messages

    def __len__(self) -> int:
        return len(self.sentences1)


def parse_sts_file(path: str | os.PathLike[str], shown: str | None = None) -> StsPairs:
    """Parse one STS-B file (tab-separated, no header, no quoting).

    Columns 4, 5 and 6 (score, sentence 1, sentence 2) are kept; extra trailing
    fields, which a few real lines carry, are ignored. Raises :class:`UserError`
    naming the file (as ``shown``, if given) and line for a malformed line, and
    for an empty file.
    """
    path = Path(path)
    name = shown or str(path)
    s1: list[str] = []
    s2: list[str] = []
    scores: list[float] = []

    def bad(line: int, problem: str) -> UserError:
        return UserError(
            f"{name}, line {line}: {problem}; fix or delete that line, "
            "or pass another file with --sts PATH."
        )

    try:
        with open(path, encoding="utf-8", newline="") as f:
            # QUOTE_NONE: sentences contain bare '"' characters that must stay literal.
            reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            for row in reader:
                if not row:  # a blank line carries no pair; skipping it loses nothing
                    continue
                if len(row) < 7:
                    raise bad(
                        reader.line_num,
                        f"expected 7 tab-separated fields (genre, file, "
                        f"year, id, score, sentence1, sentence2), found {len(row)}",
                    )
                try:
                    score = float(row[4])
                except ValueError:
                    raise bad(reader.line_num, f"score {row[4]!r} is not a number") from None
                if not 0.0 <= score <= 5.0:  # also rejects NaN
                    raise bad(reader.line_num, f"score {row[4]} is outside 0..5")
                s1.append(row[5])
                s2.append(row[6])
                scores.append(score)
    except UnicodeDecodeError as err:
        raise UserError(
            f"{name} is not UTF-8 text ({err.reason} at byte {err.start}); "
            "pass an STS-B CSV file with --sts PATH."
        ) from None
    except OSError as err:
        raise UserError(f"cannot read STS Benchmark file {name} ({err}). {_HINT}") from None
    if not scores:
        raise UserError(f"STS Benchmark file {name} holds no sentence pairs. {_HINT}")
    return StsPairs(s1, s2, np.asarray(scores, dtype=np.float32), str(path))


def load_sts(
    spec: str | None = "auto", split: str = "dev", *, required: bool = True
) -> StsPairs | None:
    """Load one STS Benchmark split.

    ``spec`` is ``"none"`` (skip: returns None), a PATH (a folder holding
    ``sts-<split>.csv``, the ``Stsbenchmark.tar.gz`` archive, or one CSV used
    whatever the split), or ``"auto"``/None: ``$DOMAINTUNE_STS_DIR``, then the
    cache, then a verified download. An explicit PATH that does not work is
    always a :class:`UserError`; when auto-discovery fails, ``required=False``
    logs one warning and returns None instead of raising.
    """
    if split not in SPLITS:
        raise UserError(f"unknown STS Benchmark split {split!r}; use one of {', '.join(SPLITS)}.")
    mode = (spec or "auto").strip().lower()
    if mode == "none":
        return None
    if mode not in ("", "auto"):
        return _load_path(Path(spec).expanduser(), split)  # type: ignore[arg-type]
    env_dir = os.environ.get("DOMAINTUNE_STS_DIR")
    if env_dir:
        # The user configured it on purpose, so a wrong value is an error, not a fallback.
        return _load_path(Path(env_dir).expanduser(), split, label="DOMAINTUNE_STS_DIR")
    cached = cache_dir() / CACHE_SUBDIR / f"sts-{split}.csv"
    if cached.is_file():
        return parse_sts_file(cached)
    url = os.environ.get("DOMAINTUNE_STS_URL") or DEFAULT_STS_URL
    md5 = os.environ.get("DOMAINTUNE_STS_MD5") or DEFAULT_STS_MD5
    try:
        folder = download_sts_archive(url, md5, cache_dir())
        found = _find_split(folder, split)
        if found is None:
            raise UserError(f"the archive from {url} has no sts-{split}.csv")
    except UserError as err:
        message = f"STS Benchmark not found and could not be downloaded ({err}). {_HINT}"
        if required:
            raise UserError(message) from None
        _log.warning(message)
        return None
    return parse_sts_file(found)


def download_sts_archive(url: str, md5: str, dest_dir: Path, timeout: float = 30) -> Path:
    """Download the STS-B archive, verify its MD5 and extract it safely.

    The CSVs end up in ``dest_dir/"stsbenchmark"``, which is returned. Download
    and extraction go to temporary names inside ``dest_dir``; the folder is
    renamed into place only when complete, so a failure never leaves a
    half-written cache. Raises :class:`UserError` for network errors, a
    checksum mismatch, and archive members that would land outside the target.
    """
    dest_dir = Path(dest_dir)
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=".sts-download-", suffix=".part")
    except OSError as err:
        raise _unwritable(dest_dir, err) from None
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5()
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                while chunk := resp.read(1 << 16):
                    digest.update(chunk)
                    out.write(chunk)
        except (OSError, ValueError, http.client.HTTPException) as err:
            # URLError/HTTPError, refused connections and timeouts are all OSErrors;
            # ValueError means a malformed URL, HTTPException a connection cut short.
            plain = type(err) is urllib.error.URLError  # its str() is less readable
            raise UserError(f"could not download {url}: {err.reason if plain else err}") from None
        got = digest.hexdigest()
        if got != md5.strip().lower():
            raise UserError(
                f"checksum mismatch for {url}: expected MD5 {md5}, got {got} (a truncated or "
                "altered download; retry, or set DOMAINTUNE_STS_MD5 if you trust this file)"
            )
        return _extract_archive(tmp, dest_dir / CACHE_SUBDIR, shown=url)
    finally:
        tmp.unlink(missing_ok=True)


def _load_path(path: Path, split: str, label: str = "--sts") -> StsPairs:
    """Load from an explicit folder, archive or CSV; any failure is a UserError."""
    if not path.exists():
        raise UserError(f"STS Benchmark path {path} (from {label}) does not exist. {_HINT}")
    if path.is_dir():
        found = _find_split(path, split)
        what = "folder"
    elif _looks_like_archive(path):
        found = _find_split(_extract_user_archive(path), split)
        what = "archive"
    else:
        return parse_sts_file(path)  # one CSV, whatever the split
    if found is None:
        raise UserError(
            f"STS Benchmark {what} {path} (from {label}) has no sts-{split}.csv. {_HINT}"
        )
    return parse_sts_file(found)


def _find_split(folder: Path, split: str) -> Path | None:
    """``sts-<split>.csv`` in ``folder``, else the shallowest one below it (archive layout)."""
    if (direct := folder / f"sts-{split}.csv").is_file():
        return direct
    matches = sorted(folder.rglob(f"sts-{split}.csv"), key=lambda p: (len(p.parts), str(p)))
    return next((p for p in matches if p.is_file()), None)


def _looks_like_archive(path: Path) -> bool:
    try:  # by name first: is_tarfile() on a large CSV would read it for nothing
        return path.name.lower().endswith((".tar.gz", ".tgz", ".tar")) or tarfile.is_tarfile(path)
    except OSError:
        return False


def _extract_user_archive(archive: Path) -> Path:
    """Extract a user-given archive into the cache, in a slot keyed by its content."""
    digest = hashlib.md5()
    try:
        with open(archive, "rb") as f:
            while chunk := f.read(1 << 16):
                digest.update(chunk)
    except OSError as err:
        raise UserError(f"cannot read STS Benchmark archive {archive} ({err}). {_HINT}") from None
    got = digest.hexdigest()
    # The canonical archive fills the slot "auto" looks in later; any other archive
    # gets its own slot so it never shadows (or is shadowed by) the canonical data.
    slot = CACHE_SUBDIR if got == DEFAULT_STS_MD5 else f"{CACHE_SUBDIR}-{got[:12]}"
    target = cache_dir() / slot
    return target if target.is_dir() else _extract_archive(archive, target, shown=str(archive))


def _check_member(member: tarfile.TarInfo, root: Path, shown: str) -> None:
    """Refuse a member that would be written, or would point, outside ``root``."""

    def escapes(rel: str) -> bool:
        if rel.startswith(("/", "\\")) or os.path.isabs(rel):
            return True
        return not (root / rel).resolve().is_relative_to(root)

    link, problem = member.issym() or member.islnk(), None
    if escapes(member.name):
        problem = "its path leaves the extraction folder"
    elif member.issym() and escapes(os.path.join(os.path.dirname(member.name), member.linkname)):
        problem = f"symlink to {member.linkname!r}, outside the extraction folder"
    elif member.islnk() and escapes(member.linkname):
        problem = f"hard link to {member.linkname!r}, outside the extraction folder"
    elif not (member.isfile() or member.isdir() or link):
        problem = "a device or FIFO, which a data archive never needs"
    elif link and not hasattr(tarfile, "data_filter"):
        # Without tarfile's data filter a chain of in-tree links can still escape.
        problem = "a link, and this Python cannot extract links safely"
    if problem:
        raise _unsafe(shown, f"member {member.name!r} is unsafe ({problem})")


def _extract_archive(archive: Path, target: Path, shown: str) -> Path:
    """Safely extract ``archive`` and atomically install its CSV folder as ``target``."""
    try:
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-extract-"))
    except OSError as err:
        raise _unwritable(target.parent, err) from None
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = tar.getmembers()
                for member in members:  # check everything before writing anything
                    _check_member(member, staging.resolve(), shown)
                # Second line of defence: the data filter checks links against the real tree.
                extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(staging, members=members, **extra)
        except _FILTER_ERROR as err:  # the data filter caught what the pre-check could not
            raise _unsafe(shown, str(err)) from None
        except (tarfile.TarError, EOFError, OSError) as err:
            why = "not a tar archive" if isinstance(err, tarfile.ReadError) else err
            raise UserError(
                f"cannot extract the STS Benchmark archive {shown} ({why}). Download "
                "it again, or pass an extracted folder with --sts PATH."
            ) from None
        found = [f for s in SPLITS if (f := _find_split(staging, s)) is not None]
        if not found:
            raise UserError(f"archive {shown} holds no sts-dev/test/train.csv. {_HINT}")
        for split in found:  # a bad file must not reach the cache; errors name the archive
            parse_sts_file(split, shown=f"{shown}, member {split.relative_to(staging)}")
        try:  # install the folder holding the CSVs (keeps readme/LICENSE beside them)
            _install_dir(found[0].parent, target)
        except OSError as err:
            raise _unwritable(target.parent, err) from None
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _install_dir(src: Path, target: Path) -> None:
    """Rename ``src`` to ``target``, replacing an older ``target`` if there is one."""
    old = target.with_name(f".{target.name}-old-{uuid.uuid4().hex}")
    if target.exists():
        os.rename(target, old)  # rename() cannot replace a non-empty folder
    try:
        os.rename(src, target)
    except OSError:
        if not target.exists():  # else a concurrent process won the race: keep its copy
            if old.exists():
                os.rename(old, target)
            raise
    shutil.rmtree(old, ignore_errors=True)


def _unsafe(shown: str, problem: str) -> UserError:
    return UserError(
        f"refusing to extract {shown}: {problem}. Use the official "
        "Stsbenchmark.tar.gz, or extract it yourself and pass --sts FOLDER."
    )


def _unwritable(folder: Path, err: OSError) -> UserError:
    return UserError(f"cannot write to {folder} ({err}); set DOMAINTUNE_CACHE to a writable dir.")
