"""Rating-prediction evaluation (explicit protocol): RMSE on held-out (user, item, rating).

The evaluator only calls :meth:`Recommender.predict`; it never knows which model it scores.

Cold pairs — the user or the item has no training rating — get a fallback instead of the
model's output (an autoencoder has no input vector, or an untrained output unit, for them):
the user's mean training rating if the user has one, else the item's mean, else the global
mean. All models are scored with the same fallback, so comparisons stay fair; the number of
cold pairs is reported with every evaluation.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ncae_exp.data.interactions import RatingScale
from ncae_exp.data.splits import RatingPairs
from ncae_exp.evaluation.metrics import rmse
from ncae_exp.models.base import Recommender


def _row_means(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Mean of each row's stored values (0 for an empty row) and the row counts."""
    counts = np.diff(matrix.indptr)
    sums = np.asarray(matrix.sum(axis=1), dtype=np.float64).ravel()
    return np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0), counts


class RatingEvaluator:
    def __init__(self, train: sp.csr_matrix, rating_scale: RatingScale):
        self.scale = rating_scale
        self.user_mean, self.user_count = _row_means(train.tocsr())
        self.item_mean, self.item_count = _row_means(train.T.tocsr())
        self.global_mean = float(train.data.mean()) if train.nnz else rating_scale.mid

    def cold_mask(self, pairs: RatingPairs) -> np.ndarray:
        return (self.user_count[pairs.users] == 0) | (self.item_count[pairs.items] == 0)

    def fallback(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.where(
            self.user_count[users] > 0,
            self.user_mean[users],
            np.where(self.item_count[items] > 0, self.item_mean[items], self.global_mean),
        )

    def predict(self, model: Recommender, pairs: RatingPairs) -> np.ndarray:
        """Model predictions for warm pairs, the fallback for cold ones, clipped to the scale."""
        cold = self.cold_mask(pairs)
        pred = np.empty(len(pairs), dtype=np.float64)
        warm = ~cold
        pred[warm] = model.predict(pairs.users[warm], pairs.items[warm])
        pred[cold] = self.fallback(pairs.users[cold], pairs.items[cold])
        return np.clip(pred, self.scale.low, self.scale.high)

    def evaluate(self, model: Recommender, pairs: RatingPairs, prefix: str) -> dict[str, float]:
        """``{prefix}_rmse`` (and nothing for an empty set)."""
        if len(pairs) == 0:
            return {}
        return {f"{prefix}_rmse": rmse(self.predict(model, pairs), pairs.values)}
