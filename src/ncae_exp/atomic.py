"""Files written atomically: a reader sees the old file or the new one, never half of one.

The data goes to a uniquely named temp file beside the target (``.<name>.<random><suffix>``,
in the same folder so that ``os.replace`` is a rename within one file system), which
replaces the target only when the ``with`` block has ended without an error; any failure,
an interrupt included, removes the temp file and leaves the target as it was. Checks that
must pass before the file appears at its path belong in the ``with`` block.

Permissions are the caller's choice, made at every call: ``private=True`` keeps mkstemp's
owner-only 0600 (a file that may hold a secret, e.g. a tracking URI with a password);
``private=False`` gives the mode ``open()`` would (0666 less the umask).

The bottom of the package, beside ``errors``: it imports nothing from ``ncae_exp``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    umask = os.umask(0)  # the only way to read it: set it, then put it back
    os.umask(umask)
    return umask


@contextmanager
def replace_atomically(path: str | Path, mode: str = "w", *, private: bool, suffix: str = ".tmp",
                       fsync: bool = False) -> Iterator[IO[Any]]:
    """An open temp file beside ``path`` (``mode``: ``"w"``, ``"wb"``, or ``"w+b"`` to read
    it back for a check) that becomes ``path`` when the block ends without an error.
    ``fsync=True`` also forces the data to disk before the rename. The parent folders are
    made as needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        with os.fdopen(fd, mode) as fh:
            if not private:
                os.fchmod(fh.fileno(), 0o666 & ~_umask())  # as open() would create it
            yield fh
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomically(path: str | Path, data: Any, *, private: bool, allow_nan: bool = True,
                          fsync: bool = False, suffix: str = ".tmp") -> Path:
    """``data`` as indented JSON (and a final newline) at ``path``, written atomically;
    returns ``path``. ``allow_nan=False`` refuses NaN and infinities (strict JSON) before
    anything replaces ``path``."""
    path = Path(path)
    with replace_atomically(path, "w", private=private, suffix=suffix, fsync=fsync) as fh:
        json.dump(data, fh, indent=2, allow_nan=allow_nan)
        fh.write("\n")
    return path
