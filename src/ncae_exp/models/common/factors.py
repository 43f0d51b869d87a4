"""Scoring shared by the matrix-factorisation models (BiasedMF, ALS-WR, WMF, eALS, BPR).

Their parameters are plain numpy arrays in ``self.params``: ``user_factors`` (M × K) and
``item_factors`` (N × K), plus optional ``user_bias`` (M), ``item_bias`` (N) and
``global_bias`` (shape ()). A score is u·v (+ the biases present), so ``predict`` and
``score_items`` agree by construction and ``get_state``/``set_state`` are copies of the dict.
"""

from __future__ import annotations

import numpy as np

from ncae_exp.errors import ConfigError
from ncae_exp.models.base import Recommender


def init_factors(rng: np.random.Generator, n: int, k: int, scale: float) -> np.ndarray:
    """Gaussian initial factors N(0, scale²), float64."""
    return rng.normal(0.0, scale, size=(int(n), int(k)))


def check_positive(**values: float) -> None:
    """One-line ConfigError for the first value that is not > 0 (names as in the YAML)."""
    for key, value in values.items():
        if isinstance(value, bool) or not np.isfinite(float(value)) or float(value) <= 0:
            raise ConfigError(f"model.{key} must be > 0, got {value!r}")


def check_positive_int(**values: int) -> None:
    """One-line ConfigError for the first value that is not a whole number >= 1."""
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer)) or int(value) != value or value < 1:
            raise ConfigError(f"model.{key} must be an integer >= 1, got {value!r}")


def check_non_negative(**values: float) -> None:
    for key, value in values.items():
        if isinstance(value, bool) or not np.isfinite(float(value)) or float(value) < 0:
            raise ConfigError(f"model.{key} must be >= 0, got {value!r}")


class FactorModel(Recommender):
    """Base class: subclasses fill ``self.params`` in ``prepare`` and update it per epoch."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}

    def _bias(self, key: str, index: np.ndarray) -> np.ndarray | float:
        value = self.params.get(key)
        return 0.0 if value is None else value[index]

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        p = self.params
        out = np.einsum("ij,ij->i", p["user_factors"][users], p["item_factors"][items])
        out = out + self._bias("user_bias", users) + self._bias("item_bias", items)
        if "global_bias" in p:
            out = out + float(p["global_bias"])
        return np.asarray(out, dtype=np.float64)

    def score_items(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        p = self.params
        scores = p["user_factors"][users] @ p["item_factors"].T
        if "user_bias" in p:
            scores += p["user_bias"][users][:, None]
        if "item_bias" in p:
            scores += p["item_bias"][None, :]
        if "global_bias" in p:
            scores += float(p["global_bias"])
        return scores

    def get_state(self) -> dict[str, np.ndarray]:
        return {k: np.array(v, copy=True) for k, v in self.params.items()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        missing = set(self.params) - set(state)
        if missing:
            raise ConfigError(f"saved state lacks {sorted(missing)}")
        self.params = {k: np.array(state[k], copy=True) for k in self.params}

    def describe(self) -> dict[str, float]:
        return {"n_parameters": int(sum(v.size for v in self.params.values()))}
