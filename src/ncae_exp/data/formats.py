"""One parser per GroupLens archive layout, each returning :class:`Interactions`.

A parser knows which members of its archive hold the ratings and the titles, their
separators, headers and encodings, and what a value means (a rating, a play count, a
bookmark); the reading and line-exact checking is done by :mod:`ncae_exp.data.tables`.
Which dataset uses which parser, with which rating scale, is recorded in
:mod:`ncae_exp.data.registry`. :func:`read_ml100k_fold` reads ML-100K's canonical fold
files for :func:`ncae_exp.data.loader.canonical_fold`.
"""

from __future__ import annotations

import csv
import io
import logging
import zipfile
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from ncae_exp.data.interactions import Interactions, RatingScale
from ncae_exp.data.tables import (
    Table,
    check_ratings,
    find_member,
    int_column,
    names_from_lines,
    read_names,
    read_table,
)

log = logging.getLogger(__name__)

_RATING_COLUMNS = ("user id", "item id", "rating", "timestamp")


def build_interactions(
    name: str,
    table: Table,
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray,
    timestamps: np.ndarray | None,
    *,
    rating_scale: RatingScale | None,
    item_names: dict[int, str],
    duplicates: str = "error",
) -> Interactions:
    """Index users/items by sorted original id and build the canonical CSR matrix.

    ``duplicates="error"`` rejects a repeated (user, item) pair naming both lines;
    ``"earliest"`` keeps the occurrence with the smallest timestamp (Delicious, where a
    bookmark is tagged many times).
    """
    user_ids, u = np.unique(users, return_inverse=True)
    item_ids, i = np.unique(items, return_inverse=True)
    n_items = item_ids.size
    keys = u.astype(np.int64) * n_items + i
    if duplicates == "earliest":
        order = np.lexsort((timestamps, keys))
    else:
        order = np.argsort(keys, kind="stable")
    keys = keys[order]
    repeated = keys[1:] == keys[:-1]
    if repeated.any():
        if duplicates != "earliest":
            # Report the repeat that comes first in the file (stable sort: order[k] < order[k+1]).
            at = np.flatnonzero(repeated)
            k = int(at[np.argmin(order[at + 1])])
            first, second = int(order[k]), int(order[k + 1])
            raise table.error(
                second,
                f"duplicate rating for user {users[second]} item {items[second]}"
                f" (first at line {table.line(first)})",
            )
        keep = np.concatenate(([True], ~repeated))
        order, keys = order[keep], keys[keep]
    rows = keys // n_items
    indptr = np.zeros(user_ids.size + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=user_ids.size), out=indptr[1:])
    index_dtype = np.int32 if max(keys.size, n_items) < 2**31 else np.int64
    matrix = sp.csr_matrix(
        (
            values[order].astype(np.float32),
            (keys % n_items).astype(index_dtype),
            indptr.astype(index_dtype),
        ),
        shape=(user_ids.size, n_items),
    )
    matrix.has_sorted_indices = True
    known = set(item_ids.tolist())
    return Interactions(
        name=name,
        matrix=matrix,
        user_ids=user_ids.astype(np.int64),
        item_ids=item_ids.astype(np.int64),
        timestamps=None if timestamps is None else timestamps[order].astype(np.int64),
        rating_scale=rating_scale,
        item_names={k: v for k, v in item_names.items() if k in known},
    )


# --------------------------------------------------------------------------- MovieLens


class RatingLines(NamedTuple):
    """The checked ``user item rating`` columns of a rating file, one entry per data line;
    ``table.error(row, message)`` names the file and line of a row in an error."""

    users: np.ndarray  # int64 original ids
    items: np.ndarray  # int64 original ids
    ratings: np.ndarray  # float64, on the scale
    table: Table


def _read_ratings(
    zf: zipfile.ZipFile, label: str, member: str, *, sep: bytes, header: bool,
    scale: RatingScale, step: float,
) -> RatingLines:
    """``user item rating timestamp`` lines, the first three columns checked."""
    table = read_table(zf, member, label=label, sep=sep, columns=_RATING_COLUMNS, header=header)
    users = int_column(table, 0, "user id")
    items = int_column(table, 1, "item id")
    ratings = check_ratings(table, 2, scale, step)
    return RatingLines(users, items, ratings, table)


def read_ml100k_fold(
    zf: zipfile.ZipFile, label: str, fold: int, part: str, *, scale: RatingScale, step: float
) -> RatingLines:
    """ML-100K's canonical ``ml-100k/u{fold}.{part}`` (``part``: ``base`` or ``test``), laid
    out like ``u.data``."""
    if part not in ("base", "test"):
        raise ValueError(f"part must be 'base' or 'test', got {part!r}")
    return _read_ratings(
        zf, label, f"ml-100k/u{fold}.{part}", sep=b"\t", header=False, scale=scale, step=step
    )


def parse_explicit(
    zf: zipfile.ZipFile,
    label: str,
    *,
    name: str,
    member: str,
    sep: bytes,
    header: bool,
    scale: RatingScale,
    step: float,
    names: dict[int, str],
) -> Interactions:
    """``user item rating timestamp`` rating files (all MovieLens variants)."""
    users, items, ratings, table = _read_ratings(
        zf, label, member, sep=sep, header=header, scale=scale, step=step
    )
    stamps = int_column(table, 3, "timestamp")
    return build_interactions(
        name, table, users, items, ratings, stamps, rating_scale=scale, item_names=names
    )


def parse_ml100k(
    zf: zipfile.ZipFile, label: str, *, scale: RatingScale, step: float
) -> Interactions:
    """``u.data`` (tab-separated), titles from ``u.item`` (latin-1, ``|``-separated)."""
    names = read_names(zf, "ml-100k/u.item", label=label, sep="|", encoding="latin-1")
    return parse_explicit(
        zf, label, name="ml-100k", member="ml-100k/u.data", sep=b"\t", header=False,
        scale=scale, step=step, names=names,
    )


def parse_movielens_dat(
    zf: zipfile.ZipFile, label: str, *, dataset: str, folder: str, scale: RatingScale, step: float
) -> Interactions:
    """ML-1M / ML-10M: ``ratings.dat`` and ``movies.dat``, ``::`` separated."""
    member = find_member(zf, f"{folder}/movies.dat", label)
    raw = zf.read(member)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # ML-1M's titles are latin-1
    names = names_from_lines(text, f"{label}:{member}", "::", 0, 1, header=False)
    return parse_explicit(
        zf, label, name=dataset, member=f"{folder}/ratings.dat", sep=b"::", header=False,
        scale=scale, step=step, names=names,
    )


def _read_csv_names(zf: zipfile.ZipFile, member: str, *, label: str) -> dict[int, str]:
    """``movies.csv`` of ml-latest-small: quoted titles may contain commas."""
    member = find_member(zf, member, label)
    where = f"{label}:{member}"
    text = zf.read(member).decode("utf-8", errors="replace")
    names: dict[int, str] = {}
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader, None)  # header: movieId,title,genres
    for row in reader:
        try:
            names[int(row[0])] = row[1].strip()
        except (ValueError, IndexError):
            log.warning("%s: skipped unreadable name line %d", where, reader.line_num)
    return names


def parse_ml_latest_small(
    zf: zipfile.ZipFile, label: str, *, scale: RatingScale, step: float
) -> Interactions:
    """``ratings.csv`` with a header line, titles from ``movies.csv``."""
    names = _read_csv_names(zf, "ml-latest-small/movies.csv", label=label)
    return parse_explicit(
        zf, label, name="ml-latest-small", member="ml-latest-small/ratings.csv", sep=b",",
        header=True, scale=scale, step=step, names=names,
    )


# --------------------------------------------------------------------------- HetRec 2011


def parse_lastfm(zf: zipfile.ZipFile, label: str) -> Interactions:
    """``user_artists.dat``: implicit, value = listening count, no timestamps."""
    table = read_table(
        zf, "user_artists.dat", label=label, sep=b"\t",
        columns=("user id", "artist id", "weight"), header=True,
    )
    users = int_column(table, 0, "user id")
    items = int_column(table, 1, "artist id")
    weights = int_column(table, 2, "weight", positive=True).astype(np.float64)
    names = read_names(
        zf, "artists.dat", label=label, sep="\t", encoding="utf-8", errors="replace", header=True
    )
    return build_interactions(
        "lastfm", table, users, items, weights, None, rating_scale=None, item_names=names
    )


def parse_delicious(zf: zipfile.ZipFile, label: str) -> Interactions:
    """Distinct (user, bookmark) pairs of the tag assignments, earliest time, value 1."""
    table = read_table(
        zf, "user_taggedbookmarks-timestamps.dat", label=label, sep=b"\t",
        columns=("user id", "bookmark id", "tag id", "timestamp"), header=True,
    )
    users = int_column(table, 0, "user id")
    items = int_column(table, 1, "bookmark id")
    int_column(table, 2, "tag id")
    stamps = int_column(table, 3, "timestamp") // 1000  # milliseconds -> seconds
    names = read_names(
        zf, "bookmarks.dat", label=label, sep="\t", encoding="utf-8", errors="replace",
        name_col=2, header=True,
    )
    return build_interactions(
        "delicious", table, users, items, np.ones(users.size), stamps,
        rating_scale=None, item_names=names, duplicates="earliest",
    )
