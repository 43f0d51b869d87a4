"""Reading delimited numeric tables and id/name files out of a zip archive.

Nothing here knows a dataset: the archive layouts live in :mod:`ncae_exp.data.formats`, which
calls these readers with a member path, a separator and column names. A rating file is read
in two layers. :func:`read_table` turns a delimited member into a float64
``(rows, columns)`` array: a vectorised fast path handles well-formed files (ML-10M's 10M
lines in seconds) and any irregularity sends the file through a line-by-line reader whose
only job is to name the first bad line exactly. The column checks (:func:`int_column`,
:func:`check_ratings`) are vectorised on the array and map the offending row back to its
line. Every problem is a one-line :class:`DataError` naming ``<archive>:<member> line <n>``.
"""

from __future__ import annotations

import logging
import re
import warnings
import zipfile
from array import array
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from ncae_exp.data.interactions import RatingScale
from ncae_exp.errors import DataError

log = logging.getLogger(__name__)

_SEP_NAMES = {b"\t": "tab", b"::": "'::'", b",": "comma", b"|": "'|'", b";": "semicolon"}
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
    if not [n for n in names if not n.endswith("/")]:
        raise DataError(f"{label}: the archive is empty (is it the GroupLens archive?)")
    base = PurePosixPath(path).name
    hits = sorted(n for n in names if PurePosixPath(n).name == base and not n.endswith("/"))
    if not hits:
        raise DataError(f"{label}: archive has no member '{path}' (is it the GroupLens archive?)")
    if len(hits) > 1:
        raise DataError(f"{label}: archive has several members named '{base}': {', '.join(hits)}")
    return hits[0]


# --------------------------------------------------------------------------- numeric tables


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
                f" got {len(fields)}{_other_separator(line, sep, ncols)}"
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


def _other_separator(line: bytes, sep: bytes, ncols: int) -> str:
    """`` (the line is comma-separated)`` when another separator splits it right."""
    for other, name in _SEP_NAMES.items():
        if other != sep and len(line.split(other)) == ncols:
            return f" (the line is {name}-separated)"
    return ""


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


# --------------------------------------------------------------------------- id -> name files


def names_from_lines(
    text: str, where: str, sep: str, id_col: int, name_col: int, header: bool
) -> dict[int, str]:
    """``{id: name}`` from separated text lines. Names are for display only: lines that
    cannot be read are skipped with a warning instead of failing a dataset whose ratings
    are fine."""
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
    """:func:`names_from_lines` of a member decoded as ``encoding``."""
    member = find_member(zf, member, label)
    where = f"{label}:{member}"
    try:
        text = zf.read(member).decode(encoding, errors=errors)
    except UnicodeDecodeError as err:
        raise DataError(f"{where}: not valid {encoding} text ({err.reason} at byte {err.start})")
    return names_from_lines(text, where, sep, id_col, name_col, header)
