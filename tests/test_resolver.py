"""resolve_base with real components: local SavedModels, bad paths, and TF-Hub
URLs served by a real HTTP server on 127.0.0.1 (no mocks, no outside network)."""

from __future__ import annotations

import functools
import http.server
import socket
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from domaintune import tf_runtime
from domaintune.errors import UserError
from domaintune.models.resolver import resolve_base
from tests.tiny_model import build_tiny_saved_model

TEXTS = ["data scientist", "registered nurse", "social media manager", "x"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_saved_model(tmp_path_factory.mktemp("tiny") / "model")


def _embed(model_dir) -> np.ndarray:
    rt = tf_runtime.load()
    layer = rt.hub.KerasLayer(str(model_dir))
    return np.asarray(layer(rt.tf.constant(TEXTS)))


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _QueryIgnoringHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files; drops the query string (hub appends ?tf-hub-format=compressed)."""

    requests: list[str]

    def translate_path(self, path: str) -> str:
        self.requests.append(path)
        return super().translate_path(path.split("?", 1)[0])

    def log_message(self, *args) -> None:  # keep test output clean
        pass


@pytest.fixture
def model_server(tmp_path, tiny_dir):
    """(base URL, request log) of a server holding tiny.tar.gz, files at the archive root."""
    root = tmp_path / "www"
    root.mkdir()
    with tarfile.open(root / "tiny.tar.gz", "w:gz") as tar:
        for item in sorted(tiny_dir.iterdir()):
            tar.add(item, arcname=item.name)  # TF-Hub layout: saved_model.pb at the root
    requests: list[str] = []
    handler = type("Handler", (_QueryIgnoringHandler,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "tfhub-cache"
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")  # never route loopback via a proxy
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return cache


def test_local_savedmodel_dir_is_returned_and_loads(tiny_dir):
    assert resolve_base(str(tiny_dir)) == tiny_dir
    assert resolve_base(f"  {tiny_dir}  ") == tiny_dir  # surrounding blanks are ignored
    vectors = _embed(resolve_base(str(tiny_dir)))
    assert vectors.shape == (len(TEXTS), 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_directory_without_saved_model_pb_is_a_user_error(tmp_path):
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "weights.h5").write_bytes(b"")
    with pytest.raises(UserError) as err:
        resolve_base(str(folder))
    message = str(err.value)
    assert str(folder) in message
    assert "saved_model.pb" in message


def test_missing_path_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=r"'\./nope' not found") as err:
        resolve_base("./nope")
    assert "use-m3" in str(err.value)


def test_url_is_downloaded_into_the_hub_cache(model_server, hub_cache, tiny_dir):
    base_url, requests = model_server
    url = f"{base_url}/tiny.tar.gz"

    local = resolve_base(url)

    assert local.is_dir() and (local / "saved_model.pb").is_file()
    assert local.resolve().is_relative_to(hub_cache.resolve())
    assert requests and all(r.startswith("/tiny.tar.gz") for r in requests)
    np.testing.assert_allclose(_embed(local), _embed(tiny_dir), atol=1e-6)

    # A second resolve is served from the cache without touching the server.
    n_requests = len(requests)
    assert resolve_base(url) == local
    assert len(requests) == n_requests


def test_unreachable_url_is_a_quick_user_error(hub_cache):
    url = f"http://127.0.0.1:{_closed_port()}/model.tar.gz"
    start = time.monotonic()
    with pytest.raises(UserError) as err:
        resolve_base(url)
    elapsed = time.monotonic() - start
    message = str(err.value)
    assert "could not download" in message.lower()
    assert url in message
    assert "local directory" in message and "use-m3" in message
    assert elapsed < 10, f"resolving an unreachable URL took {elapsed:.1f} s"


def test_url_serving_404_is_a_user_error(model_server, hub_cache):
    base_url, _ = model_server
    with pytest.raises(UserError, match="(?i)could not download.*404"):
        resolve_base(f"{base_url}/missing.tar.gz")
    # A failed download leaves no half-written module behind.
    leftovers = [p for p in hub_cache.glob("*") if p.is_dir()] if hub_cache.exists() else []
    assert leftovers == []


def test_missing_local_folder_ending_in_a_number_is_not_a_hub_handle(tmp_path, monkeypatch):
    """runs/export/1 looks like owner/model/version, but runs/ is a local folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    start = time.monotonic()
    with pytest.raises(UserError) as err:
        resolve_base("runs/export/1")
    message = str(err.value)
    assert "'runs/export/1' not found: no such folder" in message
    assert "download" not in message.lower() and "TF-Hub" not in message
    assert time.monotonic() - start < 5  # no network attempt


@pytest.fixture
def own_caches(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """(domaintune cache, system temp dir), both empty, no TFHUB_CACHE_DIR."""
    import tempfile

    cache, temp = tmp_path / "dt-cache", tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("DOMAINTUNE_CACHE", str(cache))
    monkeypatch.delenv("TFHUB_CACHE_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # gettempdir() caches its answer
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return cache, temp


def test_hub_downloads_go_to_the_domaintune_cache(model_server, own_caches):
    cache, temp = own_caches
    base_url, _ = model_server
    local = resolve_base(f"{base_url}/tiny.tar.gz")
    assert local.resolve().is_relative_to((cache / "tfhub_modules").resolve())
    assert list(temp.iterdir()) == []
    import os

    assert "TFHUB_CACHE_DIR" not in os.environ  # the user's environment is left as it was


def test_failed_hub_download_leaves_no_empty_cache_folder(model_server, own_caches):
    cache, temp = own_caches
    base_url, _ = model_server
    with pytest.raises(UserError, match="(?i)could not download"):
        resolve_base(f"{base_url}/missing.tar.gz")
    assert not (cache / "tfhub_modules").exists()
    assert list(temp.iterdir()) == []
