"""Parsers for the GroupLens archive formats.

Rating files are parsed in two layers. :func:`read_table` turns a delimited member into a
float64 ``(rows, columns)`` array: a vectorised fast path handles well-formed files (ML-10M's
10M lines in seconds) and any irregularity sends the file through a line-by-line reader
whose only job is to name the first bad line exactly. The semantic checks (integer ids,
ratings on the scale, duplicate pairs) are vectorised on the array and map the offending row
back to its line. Every problem is a one-line :class:`DataError` naming
``<archive>:<member> line <n>``.
"""

from __future__ import annotations

import csv
import io
from array import array
import logging
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
import scipy.sparse as sp

from ncae_exp.data.interactions import Interactions, RatingScale
from ncae_exp.errors import DataError

log = logging.getLogger(__name__)

_SEP_NAMES = {b"\t": "tab", b"::": "'::'", b",": "comma", b"|": "'|'"}
_NUMBER = re.compile(rb"-?(?:\d+\.?\d*|\.\d+)")
_FAST_CHARS = np.zeros(256, dtype=bool)
_FAST_CHARS[list(b"0123456789. \t\n")] = True  # spaces: Lastfm pads some fields
_NUMBER_CHARS = np.zeros(256, dtype=bool)
_NUMBER_CHARS[list(b"0123456789.")] = True
_MAX_EXACT = 2.0**53  # largest float64 range in which every integer is exact


@dataclass
class Table:
    """Numeric columns of one delimited member, with the way back from rows to line numbers."""

    where: str  # "<archive>:<member>", the prefix of every message
    values: np.ndarray  # float64, shape (rows, columns)
    first_line: int  # file line of row 0 when rows are contiguous
    lines: np.ndarray | None = None  # explicit line of each row when they are not

    def line(self, row: int) -> int:
        return int(self.lines[row]) if self.lines is not None else self.first_line + int(row)

    def error(self, row: int, message: str) -> DataError:
        return DataError(f"{self.where} line {self.line(row)}: {message}")


def find_member(zf: zipfile.ZipFile, path: str, label: str) -> str:
    """The archive member at ``path``, or the only one with its basename (archives are
    sometimes re-packed with or without the top-level folder)."""
    names = zf.namelist()
    if path in names:
        return path
    base = PurePosixPath(path).name
    hits = sorted(n for n in names if PurePosixPath(n).name == base and not n.endswith("/"))
    if not hits:
        raise DataError(f"{label}: archive has no member '{path}' (is it the GroupLens archive?)")
    if len(hits) > 1:
        raise DataError(f"{label}: archive has several members named '{base}': {', '.join(hits)}")
    return hits[0]


def read_table(
    zf: zipfile.ZipFile,
    member: str,
    *,
    label: str,
    sep: bytes,
    columns: tuple[str, ...],
    header: bool = False,
) -> Table:
    """Read a delimited numeric member (``columns`` names the fields for messages)."""
    member = find_member(zf, member, label)
    where = f"{label}:{member}"
    data = zf.read(member)
    if not data.strip():
        raise DataError(f"{where} line 1: no data lines (the file is empty)")
    body, first_line = data, 1
    if header:
        cut = data.find(b"\n")
        head, body = (data, b"") if cut < 0 else (data[:cut], data[cut + 1 :])
        head_fields = [f.strip() for f in head.split(sep)]
        if head.strip() and all(_NUMBER.fullmatch(f) for f in head_fields):
            raise DataError(f"{where} line 1: expected a header line, found data")
        first_line = 2
    values = _fast_table(body, sep, len(columns))
    if values is not None:
        return Table(where, values, first_line)
    values, lines = _slow_table(body, sep, columns, where, first_line)
    return Table(where, values, first_line, lines)


def _fast_table(body: bytes, sep: bytes, ncols: int) -> np.ndarray | None:
    """Vectorised parse of a perfectly regular file; ``None`` if anything looks off."""
    if b"\r" in body:
        body = body.replace(b"\r\n", b"\n")
    if sep != b"\t":
        if b"\t" in body:
            return None
        body = body.replace(sep, b"\t")
    body = body.rstrip(b"\n")
    if not body or body[:1] in (b"\t", b"\n"):
        return None
    if any(p in body for p in (b"\n\n", b"\t\t", b"\t\n", b"\n\t")) or body.endswith(b"\t"):
        return None
    body += b"\n"
    chars = np.frombuffer(body, dtype=np.uint8)
    if not _FAST_CHARS[chars].all():
        return None
    if b" " in body and not _spaces_only_pad(chars):
        return None
    newlines = np.flatnonzero(chars == 10)
    tabs = np.flatnonzero(chars == 9)
    nrows = newlines.size
    if tabs.size != nrows * (ncols - 1):
        return None
    if ncols > 1:
        # Tabs grouped in order, ncols-1 per row, must all lie inside their own row; with the
        # totals equal, that means every row has exactly ncols-1 of them.
        tabs = tabs.reshape(nrows, ncols - 1)
        row_start = np.concatenate(([-1], newlines[:-1]))
        if not ((tabs[:, 0] > row_start).all() and (tabs[:, -1] < newlines).all()):
            return None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            flat = np.fromstring(body, dtype=np.float64, sep=" ")  # text mode: C parser
        except (ValueError, DeprecationWarning):  # unparsable, or a future numpy's warning:
            return None  # the line-by-line reader is always correct, only slower
    if flat.size != nrows * ncols:
        return None
    return flat.reshape(nrows, ncols)


def _spaces_only_pad(chars: np.ndarray) -> bool:
    """Every run of spaces touches a number on exactly one side: padding, never a space
    inside a number ("6 7", which the C parser would read as two) or a blank field."""
    numeric = _NUMBER_CHARS[chars]
    edges = np.diff(np.concatenate(([0], (chars == 32).view(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    before = (starts > 0) & numeric[np.maximum(starts - 1, 0)]
    after = numeric[ends]  # the body ends with "\n", so a run never reaches its end
    return bool((before != after).all())


def _slow_table(
    body: bytes, sep: bytes, columns: tuple[str, ...], where: str, first_line: int
) -> tuple[np.ndarray, np.ndarray]:
    """Line-by-line reader: exact messages for the first malformed line."""
    ncols = len(columns)
    sep_name = _SEP_NAMES.get(sep, repr(sep.decode("latin-1")))
    values = array("d")  # flat and compact: ML-10M-sized files stay within a few hundred MB
    lines = array("q")
    for offset, raw in enumerate(body.split(b"\n")):
        lineno = first_line + offset
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if not line.strip():
            continue  # blank lines carry no data
        fields = [f.strip() for f in line.split(sep)]  # padding spaces are harmless
        if len(fields) != ncols:
            raise DataError(
                f"{where} line {lineno}: expected {ncols} {sep_name}-separated fields,"
                f" got {len(fields)}"
            )
        for j, field in enumerate(fields):
            if not _NUMBER.fullmatch(field):
                shown = field.decode("latin-1")[:40]
                raise DataError(
                    f"{where} line {lineno}: field {j + 1} ({columns[j]})"
                    f" is not a number: {shown!r}"
                )
        values.extend(map(float, fields))
        lines.append(lineno)
    if not lines:
        raise DataError(f"{where} line {first_line}: no data lines after the header")
    return (np.frombuffer(values, dtype=np.float64).reshape(-1, ncols),
            np.frombuffer(lines, dtype=np.int64))


def int_column(table: Table, col: int, what: str, *, positive: bool = False) -> np.ndarray:
    """Column ``col`` as int64, rejecting fractions, negatives and out-of-range values."""
    x = table.values[:, col]
    bad = (x != np.floor(x)) | (x < (1 if positive else 0)) | (x >= _MAX_EXACT)
    if bad.any():
        row = int(np.argmax(bad))
        kind = "a positive" if positive else "a non-negative"
        raise table.error(row, f"{what} {x[row]:g} is not {kind} integer")
    return x.astype(np.int64)


def check_ratings(table: Table, col: int, scale: RatingScale, step: float) -> np.ndarray:
    """Ratings must lie in the scale and on its grid (1–5 rejects 3.5; 0.5–5 rejects 3.25)."""
    r = table.values[:, col]
    outside = ~((r >= scale.low) & (r <= scale.high))  # also catches NaN
    if outside.any():
        row = int(np.argmax(outside))
        raise table.error(
            row, f"rating {r[row]:g} is outside the {scale.low:g}-{scale.high:g} scale"
        )
    steps = (r - scale.low) / step
    off_grid = np.abs(steps - np.round(steps)) > 1e-6
    if off_grid.any():
        row = int(np.argmax(off_grid))
        raise table.error(
            row,
            f"rating {r[row]:g} is not on the {scale.low:g}-{scale.high:g} scale"
            f" (steps of {step:g})",
        )
    return r


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


# --------------------------------------------------------------------------- item names


def _names_from_lines(
    text: str, where: str, sep: str, id_col: int, name_col: int, header: bool
) -> dict[int, str]:
    """Item names are for display only: lines that cannot be read are skipped with a
    warning instead of failing a dataset whose ratings are fine."""
    names: dict[int, str] = {}
    skipped: list[int] = []
    # split on "\n" only: str.splitlines() would also break at characters such as U+0085,
    # which latin-1 titles may contain
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if (header and lineno == 1) or not line.strip():
            continue
        fields = line.split(sep)
        try:
            names[int(fields[id_col])] = fields[name_col].strip()
        except (ValueError, IndexError):
            skipped.append(lineno)
    if skipped:
        log.warning(
            "%s: skipped %d unreadable name line(s), first at line %d",
            where, len(skipped), skipped[0],
        )
    return names


def read_names(
    zf: zipfile.ZipFile,
    member: str,
    *,
    label: str,
    sep: str,
    encoding: str,
    errors: str = "strict",
    id_col: int = 0,
    name_col: int = 1,
    header: bool = False,
) -> dict[int, str]:
    member = find_member(zf, member, label)
    where = f"{label}:{member}"
    try:
        text = zf.read(member).decode(encoding, errors=errors)
    except UnicodeDecodeError as err:
        raise DataError(f"{where}: not valid {encoding} text ({err.reason} at byte {err.start})")
    return _names_from_lines(text, where, sep, id_col, name_col, header)


def read_csv_names(zf: zipfile.ZipFile, member: str, *, label: str) -> dict[int, str]:
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


# --------------------------------------------------------------------------- formats

_RATING_COLUMNS = ("user id", "item id", "rating", "timestamp")


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
    table = read_table(zf, member, label=label, sep=sep, columns=_RATING_COLUMNS, header=header)
    users = int_column(table, 0, "user id")
    items = int_column(table, 1, "item id")
    ratings = check_ratings(table, 2, scale, step)
    stamps = int_column(table, 3, "timestamp")
    return build_interactions(
        name, table, users, items, ratings, stamps, rating_scale=scale, item_names=names
    )


def parse_ml100k(
    zf: zipfile.ZipFile, label: str, *, scale: RatingScale, step: float
) -> Interactions:
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
    names = _names_from_lines(text, f"{label}:{member}", "::", 0, 1, header=False)
    return parse_explicit(
        zf, label, name=dataset, member=f"{folder}/ratings.dat", sep=b"::", header=False,
        scale=scale, step=step, names=names,
    )


def parse_ml_latest_small(
    zf: zipfile.ZipFile, label: str, *, scale: RatingScale, step: float
) -> Interactions:
    names = read_csv_names(zf, "ml-latest-small/movies.csv", label=label)
    return parse_explicit(
        zf, label, name="ml-latest-small", member="ml-latest-small/ratings.csv", sep=b",",
        header=True, scale=scale, step=step, names=names,
    )


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
