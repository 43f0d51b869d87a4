"""Sparsity-aware data augmentation (Sec. 4.2): extra training rows for sparse users.

A user with few interactions gives the autoencoder little to learn from, and what there is is
dominated by popular items, which pushes the model towards popularity. For each user with
|R_i| / N < ε the training set gets a second copy of the user's vector with its ⌊|R_i|·p⌋
most popular items removed: the same user, seen through their less mainstream taste.
p = 1 removes everything, i.e. no augmentation ("NCAE+" is NCAE with p < 1).

The augmented rows are extra *training inputs* only: they are appended after the original
rows, and ``origin`` maps each back to its user, so evaluation still scores original rows.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ncae_exp.errors import ConfigError

# ⌊|R_i|·p⌋ in floating point: 100·0.29 is 28.999999999999996, which must floor to 29.
_FLOOR_SLACK = 1e-9


def augment_sparse_users(
    train: sp.csr_matrix,
    item_popularity: np.ndarray,
    epsilon: float = 0.001,
    p: float = 0.8,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """``(stacked, origin)``: ``train``'s rows followed by one augmented row per sparse user,
    and for each augmented row the index of its user (int64, ascending).

    ``item_popularity`` (length N; normally the training count of each item) orders a user's
    items; among equally popular items the lower item index counts as more popular, so the
    result is deterministic. Augmented rows keep the original values of the surviving items.
    A row that would be empty is skipped. When nothing is added (p = 1, or no user is sparse)
    ``train`` itself is returned with an empty ``origin``.
    """
    p, epsilon = float(p), float(epsilon)
    if not 0.0 < p <= 1.0:
        raise ConfigError(f"augmentation share p must be in (0, 1], got {p}")
    if not 0.0 <= epsilon < np.inf:
        raise ConfigError(f"augmentation threshold epsilon must be a finite number >= 0, got {epsilon}")
    train = train.tocsr()
    n_users, n_items = train.shape
    popularity = np.asarray(item_popularity, dtype=np.float64).ravel()
    if popularity.shape != (n_items,):
        raise ValueError(f"item_popularity has {popularity.shape[0]} entries for {n_items} items")
    empty = np.zeros(0, dtype=np.int64)
    if p == 1.0:
        return train, empty

    counts = np.diff(train.indptr)
    n_drop = np.floor(counts * p + _FLOOR_SLACK).astype(np.int64)
    users = np.flatnonzero((counts / max(n_items, 1) < epsilon) & (counts - n_drop > 0))
    if len(users) == 0:
        return train, empty

    # The sparse users' entries, then each entry's position in its row by popularity.
    sub = train[users]
    if not sub.has_sorted_indices:
        sub.sort_indices()
    sub_counts = np.diff(sub.indptr)
    row = np.repeat(np.arange(len(users)), sub_counts)
    order = np.lexsort((sub.indices, -popularity[sub.indices], row))
    position = np.empty(sub.nnz, dtype=np.int64)
    position[order] = np.arange(sub.nnz) - sub.indptr[row[order]]
    keep = position >= n_drop[users][row]

    indptr = np.concatenate([[0], np.cumsum(np.bincount(row[keep], minlength=len(users)))])
    extra = sp.csr_matrix((sub.data[keep], sub.indices[keep], indptr), shape=(len(users), n_items))
    stacked = sp.vstack([train, extra], format="csr", dtype=train.dtype)
    return stacked, users.astype(np.int64)
