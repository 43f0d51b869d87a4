"""The parsed form of a dataset, kept as ``<data_dir>/processed/<name>.npz``.

Parsing ML-10M takes seconds; loading this file takes a fraction of that. The cache is only
trusted when its format version matches and its key (the archive's size and mtime) says it
was built from the archive now in ``raw/``. Integrity: every array is a member of the npz
(zip) file with its CRC-32, checked as it is read, and the arrays must fit together; a damaged
cache is ignored with a one-line warning and rebuilt. Writes are atomic (temp file +
``os.replace``), so a killed run never leaves half a cache; a cache that cannot be written
is only a warning.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ncae_exp.atomic import replace_atomically
from ncae_exp.data.interactions import Interactions, RatingScale

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


def cache_path(data_dir: Path, name: str) -> Path:
    return Path(data_dir) / "processed" / f"{name}.npz"


def archive_key(archive: Path) -> str:
    """Identifies one copy of an archive: replacing or touching it invalidates the cache."""
    st = Path(archive).stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def save(path: Path, inter: Interactions, key: str) -> None:
    path = Path(path)
    m = inter.matrix
    name_ids = np.fromiter(inter.item_names.keys(), dtype=np.int64, count=len(inter.item_names))
    encoded = [s.encode("utf-8") for s in inter.item_names.values()]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    scale = inter.rating_scale
    arrays = dict(
        format_version=np.int64(FORMAT_VERSION),
        key=np.str_(key),
        name=np.str_(inter.name),
        shape=np.asarray(m.shape, dtype=np.int64),
        indptr=m.indptr,
        indices=m.indices,
        data=m.data,
        user_ids=inter.user_ids,
        item_ids=inter.item_ids,
        has_timestamps=np.bool_(inter.timestamps is not None),
        timestamps=inter.timestamps if inter.timestamps is not None else np.zeros(0, np.int64),
        rating_scale=np.asarray([scale.low, scale.high] if scale else [], dtype=np.float64),
        name_ids=name_ids,
        # names as one UTF-8 blob + offsets: a fixed-width string array would pad every
        # title to the longest one (hundreds of MB for Delicious)
        name_blob=np.frombuffer(b"".join(encoded), dtype=np.uint8),
        name_offsets=offsets,
    )
    try:  # owner-only (mkstemp's mode), as it always was
        with replace_atomically(path, "wb", private=True, suffix=".part") as out:
            np.savez(out, **arrays)
    except OSError as err:  # a full disk or a read-only folder: the data is parsed, go on
        log.warning("could not write the cache %s (%s); continuing without it", path, _one_line(err))
        return
    log.info("cached parsed %s at %s", inter.name, path)


def _one_line(err: BaseException, limit: int = 160) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load(path: Path, key: str | None) -> Interactions | None:
    """The cached dataset, or ``None`` when absent, stale (``key`` differs) or unreadable.
    ``key=None`` accepts any key (the archive is gone but its parsed form is still here)."""
    path = Path(path)
    if not path.is_file():
        return None
    if not zipfile.is_zipfile(path):  # np.load would try to unpickle it
        log.warning("ignoring unreadable cache %s (not an npz file); rebuilding it", path)
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["format_version"]) != FORMAT_VERSION:
                log.info("cache %s has an old format; re-parsing", path)
                return None
            if key is not None and str(z["key"]) != key:
                log.info("archive changed since %s was written; re-parsing", path)
                return None
            return _unpack(z)
    except Exception as err:  # noqa: BLE001 - any damage means "rebuild", never a crash
        log.warning("ignoring unreadable cache %s (%s: %s); rebuilding it",
                    path, type(err).__name__, _one_line(err))
        return None


def _unpack(z) -> Interactions:
    shape = tuple(int(v) for v in z["shape"])
    matrix = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=shape)
    matrix.check_format(full_check=False)
    user_ids, item_ids = z["user_ids"], z["item_ids"]
    if user_ids.shape != (shape[0],) or item_ids.shape != (shape[1],):
        raise ValueError("id maps do not match the matrix shape")
    timestamps = z["timestamps"] if bool(z["has_timestamps"]) else None
    if timestamps is not None and timestamps.shape != matrix.data.shape:
        raise ValueError("timestamps do not match the matrix")
    if not matrix.has_canonical_format:
        raise ValueError("matrix is not canonical")
    scale = z["rating_scale"]
    blob, offsets = z["name_blob"].tobytes(), z["name_offsets"]
    names = {
        int(i): blob[offsets[k] : offsets[k + 1]].decode("utf-8")
        for k, i in enumerate(z["name_ids"])
    }
    return Interactions(
        name=str(z["name"]),
        matrix=matrix,
        user_ids=user_ids,
        item_ids=item_ids,
        timestamps=timestamps,
        rating_scale=RatingScale(float(scale[0]), float(scale[1])) if scale.size else None,
        item_names=names,
    )
