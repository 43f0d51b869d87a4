"""The in-memory form of a dataset: a sparse user×item matrix plus id maps and timestamps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class RatingScale:
    """Closed interval of valid ratings, e.g. 1–5 (ML-100K) or 0.5–5 (ML-10M)."""

    low: float
    high: float

    @property
    def mid(self) -> float:
        return (self.low + self.high) / 2.0

    @property
    def half_range(self) -> float:
        return (self.high - self.low) / 2.0


@dataclass
class Interactions:
    """A parsed dataset.

    ``matrix`` is an M×N ``scipy.sparse.csr_matrix`` (float32) with canonical (sorted,
    duplicate-free) indices: the rating for explicit datasets, the raw interaction weight
    (play count, 1 for a bookmark) for implicit ones. ``timestamps`` (int64, seconds) is
    aligned with ``matrix.data`` or ``None`` when the source has none (Lastfm's
    user_artists.dat). ``user_ids`` / ``item_ids`` map internal indices to the original ids.
    ``rating_scale`` is ``None`` for datasets without ratings (implicit only).
    """

    name: str
    matrix: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray
    timestamps: np.ndarray | None = None
    rating_scale: RatingScale | None = None
    item_names: dict[int, str] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def n_ratings(self) -> int:
        return int(self.matrix.nnz)

    def stats(self) -> dict[str, float]:
        return {
            "n_users": self.n_users,
            "n_items": self.n_items,
            "n_ratings": self.n_ratings,
            "density": self.n_ratings / float(max(1, self.n_users * self.n_items)),
        }
