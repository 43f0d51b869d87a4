"""The interface every model implements — NCAE and each baseline alike.

The trainer drives epochs through it, the evaluator scores through it, and neither knows
which model is behind it. Models see data only as a scipy CSR user×item matrix.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod

import numpy as np
import scipy.sparse as sp

from ncae_exp.data.interactions import RatingScale
from ncae_exp.errors import ConfigError

PARAM, RNG = "param/", "rng/"  # key prefixes of a training state (models add e.g. "opt/")


def rng_state(rng: np.random.Generator) -> np.ndarray:
    """A generator's full bit-generator state as a 0-d string array (JSON; npz-safe)."""
    return np.array(json.dumps(rng.bit_generator.state))


def restore_rng(rng: np.random.Generator, saved: np.ndarray) -> None:
    """Put ``rng`` (in place: whoever holds it sees the change) back to ``rng_state``'s value."""
    rng.bit_generator.state = json.loads(str(np.asarray(saved)[()]))


def with_prefix(state: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The entries of ``state`` under ``prefix``, with the prefix taken off."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


class Recommender(ABC):
    """A collaborative-filtering model.

    Life cycle: ``prepare(train, scale)`` once, then ``train_epoch()`` per epoch (a model fit
    in closed form does it all in its first epoch), ``predict``/``score_items`` at any time.
    ``get_state``/``set_state`` snapshot the parameters (best-epoch restore, saved models);
    ``get_train_state``/``set_train_state`` snapshot everything training goes on from
    (checkpoints: parameters, optimizer slots, random generators, counters).

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

    # Why the model cannot score a user it was not trained on (None: it can, see
    # score_vectors); the refusal says it and names the models that can.
    no_fold_in: str | None = "its user parameters exist only for the users it was trained on"

    def score_vectors(self, x: sp.csr_matrix) -> np.ndarray:
        """Fold-in: dense scores (x.shape[0] × n_items) for users who were not in training,
        from their vectors over the model's items (ratings, or interactions), without
        retraining — the same scale and ranking as ``score_items``. A model that cannot
        refuses in one line, saying why (``no_fold_in``)."""
        raise ConfigError(f"{type(self).__name__} cannot fold in a new user: {self.no_fold_in}; retrain with"
                          " their ratings, or use a model that folds in (ncae, autorec, cfn, biasedmf, alswr,"
                          " pop, ease, wmf, eals, multvae)")

    @abstractmethod
    def get_state(self) -> dict[str, np.ndarray]:
        """A copy of all parameters."""

    @abstractmethod
    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore parameters from ``get_state``."""

    # -- the training state (checkpoints, resume) ------------------------------------------
    def train_rngs(self) -> dict[str, np.random.Generator]:
        """The numpy generators training draws from (dropout masks, batch order, negative
        samples), by name. Training must draw all of its randomness from these (TensorFlow
        ops stateless, seeded from them): nothing else is saved."""
        return {}

    def get_train_state(self) -> dict[str, np.ndarray]:
        """A copy of everything the next epochs depend on, as named arrays: the parameters
        (``param/<name>``, from ``get_state``), each generator of ``train_rngs``
        (``rng/<name>``), and whatever a model adds by overriding this (optimizer slots
        ``opt/…``, update counters). Restored with ``set_train_state`` into a fresh instance
        of the same config, prepared on the same data (without ``before_fit``: pre-training
        is in the state already), training on gives exactly what uninterrupted training
        gives on CPU (tests/test_model_contract.py)."""
        state = {PARAM + k: np.array(v, copy=True) for k, v in self.get_state().items()}
        state.update({RNG + name: rng_state(rng) for name, rng in self.train_rngs().items()})
        return state

    def set_train_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore ``get_train_state``'s value (the model is prepared)."""
        self.set_state(with_prefix(state, PARAM))
        for name, rng in self.train_rngs().items():
            if RNG + name not in state:
                raise ConfigError(f"the checkpoint lacks the random generator {name!r} of {type(self).__name__}")
            restore_rng(rng, state[RNG + name])

    def describe(self) -> dict[str, float]:
        """Size facts worth logging (e.g. parameter count)."""
        return {}
