"""Fetch a dataset archive so that ``dest`` is either the complete, readable zip or absent.

The body is streamed into a uniquely named temp file beside ``dest`` and only moved into
place (atomically, ``os.replace``) after its size and zip structure check out; any failure
removes the temp file (and the folders made for it), so an interrupted or truncated download
never looks like an archive. Errors read ``cannot download <file> from <url> (<reason>)``.
"""

from __future__ import annotations

import logging
import sys
import zipfile
import zlib
from pathlib import Path

import requests
from tqdm import tqdm

from ncae_exp.atomic import replace_atomically
from ncae_exp.errors import DataError, connection_reason

log = logging.getLogger(__name__)


def download(url: str, dest: Path, *, timeout: float = 30, chunk: int = 1 << 20) -> Path:
    """Download ``url`` to ``dest`` (a zip archive); raise :class:`DataError` on any failure."""
    dest = Path(dest)
    made = [p for p in (dest.parent, *dest.parent.parents) if not p.exists()]  # to remove on failure

    def fail(what: str) -> DataError:
        return DataError(f"cannot download {dest.name} from {url} ({what})")

    try:
        # owner-only (mkstemp's mode), as it always was; read back ("w+b") for the checks,
        # which all pass before the archive appears at ``dest``
        with replace_atomically(dest, "w+b", private=True, suffix=".part") as out:
            received, expected = _stream(url, out, timeout, chunk, dest.name, fail)
            if expected is not None and received != expected:
                raise fail(f"received {received} of {expected} bytes")
            sizes = f"received {received}" + (f" of {expected}" if expected else "") + " bytes"
            out.flush()
            try:
                with zipfile.ZipFile(out) as zf:
                    bad = zf.testzip()
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as err:
                raise fail(f"archive is truncated or corrupt ({sizes})") from err
            if bad is not None:
                raise fail(f"archive is corrupt (member {bad} fails its CRC check; {sizes})")
    except BaseException:  # the temp file is gone already; now the folders made for it
        for folder in made:  # innermost first; only folders still empty
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    log.info("downloaded %s (%d bytes) to %s", url, received, dest)
    return dest


def _stream(url, out, timeout, chunk, label, fail) -> tuple[int, int | None]:
    """Copy the response body into ``out``; return (bytes received, Content-Length or None)."""
    received = 0
    expected: int | None = None
    resp = None
    try:
        # identity: the byte count must be comparable with Content-Length
        with requests.get(
            url, stream=True, timeout=timeout, headers={"Accept-Encoding": "identity"}
        ) as response:
            resp = response
            if resp.status_code >= 400:
                raise fail(f"HTTP {resp.status_code} {resp.reason or ''}".rstrip())
            length = resp.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            with tqdm(
                total=expected, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                file=sys.stderr, disable=None, leave=False,
            ) as bar:
                for block in resp.iter_content(chunk_size=chunk):
                    out.write(block)
                    received += len(block)
                    bar.update(len(block))
    except requests.RequestException as err:
        if resp is not None:  # bytes that came off the wire, a partial chunk included
            received = max(received, int(getattr(resp.raw, "tell", lambda: 0)() or 0))
        got = f"after {received} of {expected} bytes" if expected else f"after {received} bytes"
        if isinstance(err, requests.Timeout):
            raise fail(f"timed out {got} (timeout {timeout:g} s)") from err
        if isinstance(err, requests.exceptions.ChunkedEncodingError):
            raise fail(f"connection broken {got} (the server closed it early)") from err
        if received:
            raise fail(f"connection broken {got}: {connection_reason(err)}") from err
        if isinstance(err, requests.ConnectionError):
            raise fail(f"could not connect: {connection_reason(err)}") from err
        raise fail(connection_reason(err)) from err
    return received, expected
