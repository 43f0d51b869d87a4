"""The interface every model implements — NCAE and each baseline alike.

The trainer drives epochs through it, the evaluator scores through it, and neither knows
which model is behind it. Models see data only as a scipy CSR user×item matrix.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import scipy.sparse as sp

from ncae_exp.data.interactions import RatingScale


class Recommender(ABC):
    """A collaborative-filtering model.

    Life cycle: ``prepare(train, scale)`` once, then ``train_epoch()`` per epoch (a model fit
    in closed form does it all in its first epoch), ``predict``/``score_items`` at any time.
    ``get_state``/``set_state`` snapshot the parameters (best-epoch restore, checkpoints).

    A model is built from its ``conf/model/<name>.yaml`` by Hydra (``_target_`` = the class;
    every other key a constructor argument whose default equals the YAML's value).
    """

    # The protocols the model can run under (explicit: ratings; implicit: interactions).
    protocols: tuple[str, ...] = ("explicit", "implicit")
    # False for a model fit in closed form: the trainer then runs one "epoch" whatever
    # trainer.epochs says; ALS-style models count trainer.epochs as sweeps.
    iterative: bool = True

    @abstractmethod
    def prepare(self, train: sp.csr_matrix, rating_scale: RatingScale | None) -> None:
        """Bind the training matrix (users × items) and build the parameters."""

    def before_fit(self, log_metrics) -> dict[str, float]:
        """Work before the first epoch, such as pre-training; ``log_metrics(dict, step)``
        reports its series. Returns summary figures (e.g. seconds spent)."""
        return {}

    @abstractmethod
    def train_epoch(self) -> float:
        """One pass over the training data; returns the mean training objective."""

    @abstractmethod
    def training_loss(self) -> float:
        """The training objective as ``train_epoch`` measures it, without updating anything
        (the epoch-0 point of the learning curve)."""

    @abstractmethod
    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted ratings for the (user, item) pairs, as float64."""

    @abstractmethod
    def score_items(self, users: np.ndarray) -> np.ndarray:
        """Dense scores (len(users) × n_items, float32 or float64) for ranking every item."""

    @abstractmethod
    def get_state(self) -> dict[str, np.ndarray]:
        """A copy of all parameters."""

    @abstractmethod
    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore parameters from ``get_state``."""

    def describe(self) -> dict[str, float]:
        """Size facts worth logging (e.g. parameter count)."""
        return {}
