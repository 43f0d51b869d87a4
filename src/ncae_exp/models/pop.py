"""POP: most-popular items, the non-personalised implicit baseline of the paper's Sec. 5.3
(as in He et al. 2016, "Fast Matrix Factorization for Online Recommendation with Implicit
Feedback", and most top-N studies since).

An item's score is its number of training interactions, counted once per user (the matrix is
binarised: a user who played an artist 300 times is one interaction), and every user gets the
same ranked list. There is nothing to learn but the counts, so the fit is one pass.

Ties: the score is the count itself, so items with equal counts tie. The ranking evaluator
resolves ties against the held-out item (pessimistic) and ``ncae-recommend`` lists tied items
by item index, so the ranking is deterministic either way; no arbitrary tie-break is baked into
the scores.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ncae_exp.data.interactions import RatingScale
from ncae_exp.errors import ConfigError
from ncae_exp.models.base import Recommender
from ncae_exp.models.common.interactions import binarise


class Pop(Recommender):
    protocols = ("implicit",)
    iterative = False

    def __init__(self) -> None:
        self.train: sp.csr_matrix | None = None
        self.counts = np.zeros(0, np.float64)  # per item; zeros until fitted (epoch 0)

    def prepare(self, train: sp.csr_matrix, rating_scale: RatingScale | None) -> None:
        train = binarise(train)  # one entry per interacting (user, item): bincount counts users
        self.train = train
        self.counts = np.zeros(train.shape[1], np.float64)

    def _check_prepared(self) -> sp.csr_matrix:
        if self.train is None:
            raise ConfigError("POP: call prepare(train, ...) before training or scoring")
        return self.train

    def train_epoch(self) -> float:
        train = self._check_prepared()
        # Binarised: number of distinct users per item.
        self.counts = np.bincount(train.indices, minlength=train.shape[1]).astype(np.float64)
        return self.training_loss()

    def training_loss(self) -> float:
        # POP optimises nothing; 0.0 keeps the learning curve's epoch-0 point defined.
        self._check_prepared()
        return 0.0

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        items = np.asarray(items, dtype=np.int64)
        return self.counts[items].astype(np.float64)

    def score_items(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        # Counts are integers well below 2**24, so float32 holds them exactly.
        return np.broadcast_to(self.counts.astype(np.float32), (len(users), len(self.counts))).copy()

    def score_vectors(self, x: sp.csr_matrix) -> np.ndarray:
        """Fold-in: the same popularity for every new user (their vector changes nothing)."""
        return np.broadcast_to(self.counts.astype(np.float32), (x.shape[0], len(self.counts))).copy()

    def get_state(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts.copy()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        if "counts" not in state:
            raise ConfigError(f"saved POP state lacks 'counts' (has {sorted(state)})")
        counts = np.asarray(state["counts"], dtype=np.float64)
        if self.train is not None and counts.shape != (self.train.shape[1],):
            raise ConfigError(f"saved POP counts have shape {counts.shape}, the data has {self.train.shape[1]} items")
        self.counts = counts.copy()

    def describe(self) -> dict[str, float]:
        return {"n_parameters": int(self.counts.size)}
