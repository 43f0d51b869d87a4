"""Uniform negative sampling for implicit-feedback models (NCF, and any pointwise or
pairwise learner that needs "an item this user has not interacted with").

A negative for user u is drawn uniformly from the items u has no stored entry for in the
positives matrix. Drawing is vectorised rejection sampling: draw every item at once uniformly
from the whole catalogue, look the (user, item) keys up in the sorted keys of the positives,
redraw only the hits. Each accepted draw is uniform over u's negatives (rejection keeps the
uniform proposal's conditional distribution), and with sparse data almost every first draw
is accepted, so the loop ends after a few rounds.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class NegativeSampler:
    """Draws negatives against a fixed users × items positives matrix (CSR; any stored
    non-zero counts as a positive)."""

    def __init__(self, positives: sp.csr_matrix):
        positives = sp.csr_matrix(positives, copy=True)
        positives.eliminate_zeros()  # an explicit zero is not an interaction
        positives.sum_duplicates()
        positives.sort_indices()
        self.n_users, self.n_items = positives.shape
        counts = np.diff(positives.indptr)
        rows = np.repeat(np.arange(self.n_users, dtype=np.int64), counts)
        # Row-major keys of a CSR matrix with sorted indices are sorted: searchsorted works.
        self._keys = rows * self.n_items + positives.indices.astype(np.int64)
        self.n_negatives = (self.n_items - counts).astype(np.int64)  # per user

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Boolean mask: is (users[k], items[k]) a stored positive?"""
        keys = np.asarray(users, dtype=np.int64) * self.n_items + np.asarray(items, dtype=np.int64)
        if len(self._keys) == 0:
            return np.zeros(keys.shape, dtype=bool)
        at = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        return self._keys[at] == keys

    def sample(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One negative item (int64) per entry of ``users``, drawn with ``rng``.

        Raises ValueError for a user with no negative at all (they would loop forever)."""
        users = np.asarray(users, dtype=np.int64)
        if len(users) and np.any(self.n_negatives[users] == 0):
            bad = users[self.n_negatives[users] == 0][0]
            raise ValueError(f"user {bad} has interacted with every item: no negative to draw")
        items = rng.integers(0, self.n_items, len(users), dtype=np.int64)
        todo = np.flatnonzero(self.is_positive(users, items))
        while len(todo):
            items[todo] = rng.integers(0, self.n_items, len(todo), dtype=np.int64)
            todo = todo[self.is_positive(users[todo], items[todo])]
        return items


def sample_negatives(positives: sp.csr_matrix, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniform negative per entry of ``users`` (a one-off :class:`NegativeSampler`)."""
    return NegativeSampler(positives).sample(users, rng)
