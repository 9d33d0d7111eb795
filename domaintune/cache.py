"""Where domaintune keeps converted models and downloaded data."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache root: ``$DOMAINTUNE_CACHE``, else ``$XDG_CACHE_HOME/domaintune``,
    else ``~/.cache/domaintune``. Created on first use."""
    explicit = os.environ.get("DOMAINTUNE_CACHE")
    if explicit:
        root = Path(explicit)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg) if xdg else Path.home() / ".cache") / "domaintune"
    root.mkdir(parents=True, exist_ok=True)
    return root
