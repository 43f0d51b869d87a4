"""Downloads from a real HTTP server on 127.0.0.1: success, cache reuse, and every way to fail
leaving nothing behind in raw/ or processed/."""

import io
import socket
import threading
import zipfile
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from ncae_exp.data import loader
from ncae_exp.data.download import download
from ncae_exp.data.loader import load_dataset
from ncae_exp.errors import DataError


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.routes[path] = (body, mode)``; mode "ok", or "cut" to announce the
    whole body in Content-Length, send half of it and hang up."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.server.requests.append(self.path)
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404, "Not Found")
            return
        body, mode = route
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "cut":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.routes, httpd.requests = {}, []
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def ml100k_bytes(real_archive):
    return real_archive("ml-100k").read_bytes()


def _listing(data_dir):
    """Every file under data_dir, hidden temp files included."""
    return sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*") if p.is_file())


def _cfg(server, path="/ml-100k.zip"):
    return {"name": "ml-100k", "url": server.base + path}


def test_download_parse_cache_then_no_request(server, ml100k_bytes, tmp_path, monkeypatch):
    server.routes["/ml-100k.zip"] = (ml100k_bytes, "ok")
    data_dir = tmp_path / "data"
    first = load_dataset(_cfg(server), data_dir)
    assert (first.n_users, first.n_items, first.n_ratings) == (943, 1682, 100_000)
    assert server.requests == ["/ml-100k.zip"]
    assert _listing(data_dir) == ["processed/ml-100k.npz", "raw/ml-100k.zip"]
    assert (data_dir / "raw" / "ml-100k.zip").read_bytes() == ml100k_bytes

    def no_parse(*args):
        raise AssertionError("the archive was parsed again instead of using the cache")

    monkeypatch.setattr(loader, "parse_archive", no_parse)
    second = load_dataset(_cfg(server), data_dir)
    assert server.requests == ["/ml-100k.zip"]  # served from the cache, no new request
    assert (second.matrix != first.matrix).nnz == 0
    assert np.array_equal(second.timestamps, first.timestamps)


def _fails(server, tmp_path, *needles):
    data_dir = tmp_path / "data"
    with pytest.raises(DataError) as err:
        load_dataset(_cfg(server), data_dir)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"cannot download ml-100k.zip from {server.base}/ml-100k.zip ("), message
    # says what to do: where the archive goes
    assert message.endswith(f": place the archive at {data_dir.resolve() / 'raw' / 'ml-100k.zip'}"
                            " (or set NCAE_DATA_DIR / paths.data_dir)"), message
    for needle in needles:
        assert needle in message, message
    assert not data_dir.exists()  # no archive, no .part file, no cache, not even raw/
    return message


def test_truncated_archive_is_rejected(server, ml100k_bytes, tmp_path):
    n = 1200
    server.routes["/ml-100k.zip"] = (ml100k_bytes[:n], "ok")  # consistent Content-Length
    _fails(server, tmp_path, f"archive is truncated or corrupt (received {n} of {n} bytes)")


def test_server_hanging_up_mid_body(server, ml100k_bytes, tmp_path):
    server.routes["/ml-100k.zip"] = (ml100k_bytes, "cut")
    message = _fails(server, tmp_path, f"of {len(ml100k_bytes)} bytes")
    assert "connection broken" in message or "received" in message


def test_http_404(server, tmp_path):
    _fails(server, tmp_path, "HTTP 404")


def test_nothing_listening(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ml-100k.zip"
    with pytest.raises(DataError) as err:
        download(url, tmp_path / "raw" / "ml-100k.zip", timeout=5)
    assert str(err.value) == f"cannot download ml-100k.zip from {url} (could not connect: connection refused)"
    assert list(tmp_path.iterdir()) == []  # the raw/ folder made for it is gone too


def _tiny_ml100k() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-100k/u.data", "1\t1\t5\t881250949\n2\t1\t3\t881250950\n")
        zf.writestr("ml-100k/u.item", "1|Toy Story (1995)|01-Jan-1995||\n")
    return buf.getvalue()


def test_downloaded_archive_with_wrong_statistics_is_deleted(server, tmp_path):
    server.routes["/ml-100k.zip"] = (_tiny_ml100k(), "ok")
    data_dir = tmp_path / "data"
    with pytest.raises(DataError) as err:
        load_dataset(_cfg(server), data_dir)
    assert str(err.value) == (
        "ml-100k.zip: expected 943 users, 1682 items, 100000 ratings for ml-100k; got 2, 1, 2"
    )
    assert _listing(data_dir) == []


def test_hand_placed_archive_with_wrong_statistics_is_kept(tmp_path):
    (tmp_path / "raw").mkdir()
    archive = tmp_path / "raw" / "ml-100k.zip"
    archive.write_bytes(_tiny_ml100k())
    with pytest.raises(DataError, match="expected 943 users"):
        load_dataset({"name": "ml-100k", "url": "http://127.0.0.1:9/unused"}, tmp_path)
    assert _listing(tmp_path) == ["raw/ml-100k.zip"]  # the user's file, untouched; no cache


def test_download_function_replaces_atomically(server, ml100k_bytes, tmp_path):
    server.routes["/a.zip"] = (ml100k_bytes, "ok")
    dest = tmp_path / "raw" / "a.zip"
    assert download(server.base + "/a.zip", dest, chunk=4096) == dest
    assert dest.read_bytes() == ml100k_bytes
    assert _listing(tmp_path) == ["raw/a.zip"]


def test_archive_with_corrupt_compressed_data_is_rejected(server, tmp_path):
    """A member whose deflated bytes are damaged (zlib fails before any CRC check)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ml-100k/u.data", "".join(f"{u}\t{i}\t3\t88125{u:04d}\n" for u in range(1, 300) for i in range(9)))
    body = bytearray(buf.getvalue())
    body[30 + len("ml-100k/u.data")] = 0b111  # first deflate block: final, reserved type 3
    with pytest.raises(zlib.error, match="invalid block type"):
        zipfile.ZipFile(io.BytesIO(body)).testzip()
    server.routes["/ml-100k.zip"] = (bytes(body), "ok")
    _fails(server, tmp_path, "archive is truncated or corrupt")
