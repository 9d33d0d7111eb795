"""STS Benchmark loader: parsing, path specs, download/verify/extract via a local server."""

from __future__ import annotations

import hashlib
import http.server
import io
import logging
import socket
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from domaintune.data.sts import StsPairs, download_sts_archive, load_sts, parse_sts_file
from domaintune.errors import UserError
from tests.conftest import shared_path

# Real STS-B format: genre, file, year, id, score, sentence1, sentence2 [, extra fields].
LINES = [
    "main-captions\tMSRvid\t2012test\t0000\t5.000\tA man is dancing.\tA man dances.",
    'main-captions\tMSRvid\t2012test\t0002\t4.750\tA "young" child rides.\tA child rides.',
    "main-news\theadlines\t2016\t0281\t5\tCourt limits power\tHigh court checks power"
    "\tEurope Media Monitor\tEurope Media Monitor",
    "main-news\theadlines\t2016\t0294\t0.5\tEuro crisis is over\tRain in Spain\tExtra",
]
SAMPLE = "\n".join(LINES) + "\n"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache, no user STS folder, and never the real download URL."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("DOMAINTUNE_CACHE", str(cache))
    monkeypatch.setenv("DOMAINTUNE_STS_URL", f"http://127.0.0.1:{_closed_port()}/none.tar.gz")
    for name in (
        "DOMAINTUNE_STS_DIR",
        "DOMAINTUNE_STS_MD5",
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    return cache


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _targz(members: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in members.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _Server:
    """A real HTTP server on 127.0.0.1 serving one archive and counting requests."""

    def __init__(self, payload: bytes) -> None:
        self.payload, self.requests = payload, 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(outer.payload)))
                self.end_headers()
                self.wfile.write(outer.payload)

            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/Stsbenchmark.tar.gz"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch):
    """Serve an archive; point DOMAINTUNE_STS_URL/MD5 at it (``md5`` overrides the true one)."""
    servers: list[_Server] = []

    def start(payload: bytes, md5: str | None = None) -> _Server:
        server = _Server(payload)
        servers.append(server)
        monkeypatch.setenv("DOMAINTUNE_STS_URL", server.url)
        monkeypatch.setenv("DOMAINTUNE_STS_MD5", md5 or hashlib.md5(payload).hexdigest())
        return server

    yield start
    for server in servers:
        server.close()


# --- the real data ----------------------------------------------------------------


def test_real_dev_and_train() -> None:
    real_sts = shared_path("stsbenchmark")
    dev = parse_sts_file(real_sts / "sts-dev.csv")
    assert len(dev) == 1500 and isinstance(dev, StsPairs)
    assert dev.scores.dtype == np.float32
    assert dev.scores.min() >= 0.0 and dev.scores.max() <= 5.0
    assert len(dev.sentences1) == len(dev.sentences2) == 1500
    assert dev.sentences1[0] == "A man with a hard hat is dancing."
    assert len(load_sts(str(real_sts), "train")) == 5749  # type: ignore[arg-type]


# --- parsing and path specs -------------------------------------------------------


def test_parse_extra_fields_and_quotes(tmp_path: Path) -> None:
    csv_file = tmp_path / "pairs.csv"
    csv_file.write_text(SAMPLE, encoding="utf-8")
    pairs = parse_sts_file(csv_file)
    assert len(pairs) == 4
    assert pairs.sentences1[1] == 'A "young" child rides.'  # quotes stay literal
    assert pairs.sentences2[2] == "High court checks power"  # extra fields dropped
    np.testing.assert_allclose(pairs.scores, [5.0, 4.75, 5.0, 0.5])
    assert pairs.source == str(csv_file)


def test_folder_and_single_csv_specs(tmp_path: Path) -> None:
    folder = tmp_path / "sts"
    folder.mkdir()
    (folder / "sts-test.csv").write_text(SAMPLE, encoding="utf-8")
    assert len(load_sts(str(folder), "test")) == 4  # type: ignore[arg-type]
    with pytest.raises(UserError, match="has no sts-dev.csv"):
        load_sts(str(folder), "dev")
    # One CSV is used whatever the split.
    single = load_sts(str(folder / "sts-test.csv"), "train")
    assert single is not None and len(single) == 4


def test_none_and_bad_split() -> None:
    assert load_sts("none") is None
    assert load_sts("None", "train") is None
    with pytest.raises(UserError, match="split 'validation'"):
        load_sts("auto", "validation")


def test_missing_explicit_path_is_an_error_even_if_optional(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "sts"
    for required in (True, False):
        with pytest.raises(UserError) as err:
            load_sts(str(missing), required=required)
        assert str(missing) in str(err.value) and "--sts PATH" in str(err.value)


@pytest.mark.parametrize(
    "bad_line, problem",
    [
        ("main\tx\t2012\t0001\t3.0\tonly one sentence", "found 6"),
        ("main\tx\t2012\t0001\tabc\ts1\ts2", "not a number"),
        ("main\tx\t2012\t0001\t5.5\ts1\ts2", "outside 0..5"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, bad_line: str, problem: str) -> None:
    csv_file = tmp_path / "sts-dev.csv"
    csv_file.write_text(LINES[0] + "\n" + LINES[1] + "\n" + bad_line + "\n", encoding="utf-8")
    with pytest.raises(UserError) as err:
        parse_sts_file(csv_file)
    assert f"{csv_file}, line 3" in str(err.value) and problem in str(err.value)


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "sts-dev.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(UserError, match="no sentence pairs"):
        load_sts(str(empty))


def test_archive_spec_is_extracted_into_cache(tmp_path: Path, _isolated_env: Path) -> None:
    archive = tmp_path / "Stsbenchmark.tar.gz"
    archive.write_bytes(_targz({"stsbenchmark/sts-dev.csv": SAMPLE, "stsbenchmark/readme.txt": ""}))
    assert len(load_sts(str(archive))) == 4  # type: ignore[arg-type]
    slots = [p.name for p in _isolated_env.iterdir()]
    assert len(slots) == 1 and slots[0].startswith("stsbenchmark-")  # not the canonical slot
    assert len(load_sts(str(archive))) == 4  # type: ignore[arg-type]  # reuses the slot


def test_malformed_archive_names_the_archive_and_stays_out_of_the_cache(
    tmp_path: Path, _isolated_env: Path
) -> None:
    archive = tmp_path / "Stsbenchmark.tar.gz"
    bad = SAMPLE + "main\tx\t2012\t0001\tabc\ts1\ts2\n"  # line 5: no score
    archive.write_bytes(_targz({"stsbenchmark/sts-dev.csv": bad}))
    for _ in range(2):  # the second run is refused the same way: nothing was cached
        with pytest.raises(UserError) as err:
            load_sts(str(archive))
        assert str(err.value).startswith(
            f"{archive}, member stsbenchmark/sts-dev.csv, line 5: score 'abc' is not a number"
        )
        assert [p for p in _isolated_env.rglob("*") if p.is_file()] == []
    archive.write_bytes(_targz({"stsbenchmark/sts-dev.csv": SAMPLE}))  # fixed
    assert len(load_sts(str(archive))) == 4  # type: ignore[arg-type]


# --- download, checksum, safe extraction ------------------------------------------


def test_download_verifies_parses_then_uses_cache(serve, _isolated_env: Path) -> None:
    server = serve(_targz({"stsbenchmark/sts-dev.csv": SAMPLE, "stsbenchmark/LICENSE.txt": "x"}))
    first = load_sts("auto")
    assert first is not None and len(first) == 4
    assert (_isolated_env / "stsbenchmark" / "sts-dev.csv").is_file()
    second = load_sts(None)
    assert second is not None and second.source == first.source
    assert server.requests == 1
    # Only the installed folder remains: no temp download or staging directory.
    assert sorted(p.name for p in _isolated_env.iterdir()) == ["stsbenchmark"]


def test_bad_checksum_leaves_nothing(serve, _isolated_env: Path) -> None:
    serve(_targz({"stsbenchmark/sts-dev.csv": SAMPLE}), md5="0" * 32)
    with pytest.raises(UserError) as err:
        load_sts("auto")
    message = str(err.value)
    assert "checksum mismatch" in message and "expected MD5 " + "0" * 32 in message
    assert "--sts PATH" in message
    assert list(_isolated_env.iterdir()) == []


@pytest.mark.parametrize("evil", ["../evil.csv", "stsbenchmark/../../evil.csv", "ABS"])
def test_escaping_members_are_refused(
    serve, tmp_path: Path, _isolated_env: Path, evil: str
) -> None:
    target = tmp_path / "evil.csv"
    name = str(tmp_path / "abs_evil.csv") if evil == "ABS" else evil
    payload = _targz({"stsbenchmark/sts-dev.csv": SAMPLE, name: "pwned"})
    server = serve(payload)
    with pytest.raises(UserError, match="unsafe"):
        download_sts_archive(server.url, hashlib.md5(payload).hexdigest(), _isolated_env)
    with pytest.raises(UserError, match="unsafe"):
        load_sts("auto")
    assert not target.exists() and not (tmp_path / "abs_evil.csv").exists()
    assert not (tmp_path.parent / "evil.csv").exists()
    assert list(_isolated_env.iterdir()) == []


def _link_archive(tmp_path: Path, links: list[tuple[str, str]], extra: str = "") -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, target in links:
            link = tarfile.TarInfo(name)
            link.type, link.linkname = tarfile.SYMTYPE, target
            tar.addfile(link)
        if extra:
            info = tarfile.TarInfo(extra)
            info.size = len(SAMPLE)
            tar.addfile(info, io.BytesIO(SAMPLE.encode()))
    archive = tmp_path / "Stsbenchmark.tar.gz"
    archive.write_bytes(buf.getvalue())
    return archive


def test_symlink_pointing_outside_is_refused(tmp_path: Path, _isolated_env: Path) -> None:
    archive = _link_archive(tmp_path, [("stsbenchmark/sts-dev.csv", "../../../etc/passwd")])
    with pytest.raises(UserError, match="symlink"):
        load_sts(str(archive))
    assert list(_isolated_env.iterdir()) == []


@pytest.mark.skipif(not hasattr(tarfile, "data_filter"), reason="links refused outright")
def test_chained_in_tree_symlinks_cannot_escape(tmp_path: Path, _isolated_env: Path) -> None:
    # Each link looks inside on its own ("d/d/d/.." -> "d/d"), yet "e" resolves to ".."
    archive = _link_archive(tmp_path, [("d", "."), ("e", "d/d/d/..")], extra="e/sts-dev.csv")
    with pytest.raises(UserError, match="refusing to extract"):
        load_sts(str(archive))
    assert list(_isolated_env.iterdir()) == [] and not (tmp_path / "sts-dev.csv").exists()


def test_unreachable_server(caplog: pytest.LogCaptureFixture, _isolated_env: Path) -> None:
    # The autouse fixture points DOMAINTUNE_STS_URL at a closed port on 127.0.0.1.
    with caplog.at_level(logging.WARNING, logger="domaintune"):
        assert load_sts("auto", required=False) is None
    assert "--sts PATH" in caplog.text and "could not be downloaded" in caplog.text
    with pytest.raises(UserError, match="--sts PATH") as err:
        load_sts("auto", required=True)
    assert "STS Benchmark not found" in str(err.value)
    assert list(_isolated_env.iterdir()) == []


def test_sts_dir_env_is_used_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "sts-dev.csv").write_text(SAMPLE, encoding="utf-8")
    monkeypatch.setenv("DOMAINTUNE_STS_DIR", str(folder))
    pairs = load_sts("auto")
    assert pairs is not None and pairs.source == str(folder / "sts-dev.csv")
