"""The implicit-feedback split: leave-one-out, and thinning of the training data (Table 5).

Every stored entry of the dataset is an interaction and becomes 1 (play counts and ratings
are not preferences here). For each user with enough interactions, the test item is the
latest one — the protocol's "predict what comes next" — and the validation item a random
one of the rest; everything else is training. Datasets without timestamps (Lastfm's
user_artists.dat) get a random test item instead, and the split says so
(``test_by_timestamp``).

Like the explicit splits, this never changes the matrix shape. All randomness comes from one
permutation of the entries drawn from ``seed``: it breaks timestamp ties, picks the random
items, and makes the split reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ncae_exp.data.interactions import Interactions
from ncae_exp.errors import ConfigError


@dataclass
class LeaveOneOutSplit:
    """``train``: M × N binary (float32 1.0) CSR without the held-out items; one validation
    and one test item per eligible user as parallel int64 arrays, ascending by user."""

    train: sp.csr_matrix
    val_users: np.ndarray
    val_items: np.ndarray
    test_users: np.ndarray
    test_items: np.ndarray
    n_users_too_few: int
    test_by_timestamp: bool

    def stats(self) -> dict[str, int | bool]:
        return {
            "n_train": int(self.train.nnz),
            "n_val": len(self.val_items),
            "n_test": len(self.test_items),
            "n_users_too_few": int(self.n_users_too_few),
            "test_by_timestamp": bool(self.test_by_timestamp),
        }


def _segment_argmax(key: np.ndarray, indptr: np.ndarray, row_of: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Boolean mask (over entries) of the entry with the largest ``key`` in each of ``rows``.

    Candidates have distinct keys >= 0 within a row, every other entry −1; each of ``rows``
    has a candidate, and every entry of a row not in ``rows`` is −1 — ``reduceat`` over the
    starts of ``rows`` then also sweeps those rows' entries without changing any maximum.
    """
    best = np.full(len(indptr) - 1, -2, dtype=key.dtype)  # -2 matches no key
    if len(rows):
        best[rows] = np.maximum.reduceat(key, indptr[rows])
    return key == best[row_of]


def _binary_rows(row_counts: np.ndarray, indices: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """A float32 CSR of ones from per-row entry counts and the (already sorted) column indices."""
    indptr = np.concatenate([[0], np.cumsum(row_counts)]).astype(np.int64)
    m = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=shape)
    m.has_sorted_indices = True
    return m


def check_min_interactions(min_interactions: int) -> None:
    if int(min_interactions) != min_interactions or min_interactions < 2:
        raise ConfigError(
            f"min_interactions must be an integer >= 2 (a test and a validation item), got {min_interactions}"
        )


def check_keep_share(share: float) -> None:
    if not 0.0 < float(share) <= 1.0:
        raise ConfigError(f"the kept share of training data must be in (0, 1], got {share}")


VALIDATION_ITEMS = ("random", "latest")


def leave_one_out(data: Interactions, seed: int, min_interactions: int = 3,
                  validation: str = "random") -> LeaveOneOutSplit:
    """Split ``data`` for the implicit protocol (see the module docstring).

    Users with fewer than ``min_interactions`` interactions keep all of them in training and
    are not evaluated. ``min_interactions`` >= 2 (a test and a validation item); the default
    3 also leaves at least one training item per evaluated user. ``validation``: ``random``
    (the paper's: one random other interaction) or ``latest`` (the latest interaction but the
    test item, so that validation asks the question the test asks; random without timestamps).
    """
    check_min_interactions(min_interactions)
    if validation not in VALIDATION_ITEMS:
        raise ConfigError(f"split.validation must be one of {', '.join(VALIDATION_ITEMS)}, got {validation!r}")
    matrix = data.matrix.tocsr()
    if not matrix.has_canonical_format:
        raise ValueError("leave_one_out needs a canonical CSR matrix (sorted, duplicate-free indices)")
    n_users, n_items = matrix.shape
    nnz = matrix.nnz
    counts = np.diff(matrix.indptr)
    eligible = np.flatnonzero(counts >= min_interactions)
    row_of = np.repeat(np.arange(n_users), counts)
    in_eligible = counts[row_of] >= min_interactions

    # A random permutation: distinct keys, so each row's maximum is unique.
    rand = np.random.default_rng(seed).permutation(nnz).astype(np.int64)
    by_time = data.timestamps is not None
    if by_time:
        stamps = np.asarray(data.timestamps, dtype=np.int64)
        if stamps.shape != (nnz,):
            raise ValueError(f"timestamps must align with the matrix entries: {stamps.shape} vs ({nnz},)")
        latest = np.full(n_users, np.iinfo(np.int64).min, dtype=np.int64)
        nonempty = np.flatnonzero(counts)
        # Only empty rows lie between consecutive non-empty ones, so the segments are exact.
        latest[nonempty] = np.maximum.reduceat(stamps, matrix.indptr[nonempty])
        test_key = np.where(stamps == latest[row_of], rand, -1)
    else:
        test_key = rand
    is_test = _segment_argmax(np.where(in_eligible, test_key, -1), matrix.indptr, row_of, eligible)
    val_key = rand
    if by_time and validation == "latest":
        rest = np.where(is_test, np.iinfo(np.int64).min, stamps)
        latest[nonempty] = np.maximum.reduceat(rest, matrix.indptr[nonempty])
        val_key = np.where(~is_test & (stamps == latest[row_of]), rand, -1)
    is_val = _segment_argmax(np.where(in_eligible & ~is_test, val_key, -1), matrix.indptr, row_of, eligible)

    keep = ~(is_test | is_val)
    row_counts = np.bincount(row_of[keep], minlength=n_users)
    train = _binary_rows(row_counts, matrix.indices[keep], (n_users, n_items))
    # Entries are in CSR order, so both lists come out ascending by user.
    return LeaveOneOutSplit(
        train=train,
        val_users=row_of[is_val].astype(np.int64),
        val_items=matrix.indices[is_val].astype(np.int64),
        test_users=row_of[is_test].astype(np.int64),
        test_items=matrix.indices[is_test].astype(np.int64),
        n_users_too_few=int(n_users - len(eligible)),
        test_by_timestamp=by_time,
    )


def keep_share(train: sp.csr_matrix, share: float, seed: int) -> sp.csr_matrix:
    """A random share D of each user's training interactions (paper Table 5).

    A user with n training items keeps max(1, ⌊D·n + ½⌋) of them, chosen at random (seeded),
    so nobody who had data is left without any. Values and shape are preserved; D = 1
    returns a copy.
    """
    share = float(share)
    check_keep_share(share)
    train = sp.csr_matrix(train, copy=True)
    train.sum_duplicates()
    if share == 1.0:
        return train
    counts = np.diff(train.indptr)
    row_of = np.repeat(np.arange(train.shape[0]), counts)
    n_keep = np.maximum(1, np.floor(share * counts + 0.5).astype(np.int64))
    # Position of each entry in its row's random order: sort by row + U[0, 1) (one float
    # sort instead of a two-key lexsort; rows stay apart, entries within a row shuffle).
    order = np.argsort(row_of + np.random.default_rng(seed).random(train.nnz))
    position = np.empty(train.nnz, dtype=np.int64)
    position[order] = np.arange(train.nnz) - train.indptr[row_of[order]]
    keep = position < n_keep[row_of]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(row_of[keep], minlength=train.shape[0]))])
    out = sp.csr_matrix((train.data[keep], train.indices[keep], indptr), shape=train.shape)
    out.has_sorted_indices = True
    return out
