"""The :class:`Protocol` interface and what every protocol reports the same way.

A protocol is built from ``conf/protocol/<name>.yaml`` (Hydra ``_target_``). The pipeline
calls it in this order: :meth:`Protocol.check_dataset` (before any data is read),
:meth:`Protocol.split` (data → the training matrix), :meth:`Protocol.evaluate` each epoch
(validation metrics only), then :meth:`Protocol.final` once on the restored best model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import scipy.sparse as sp
from omegaconf import DictConfig

from ncae_exp.data.interactions import Interactions, RatingScale
from ncae_exp.errors import ConfigError
from ncae_exp.models.base import Recommender
from ncae_exp.tracking.base import Tracker
from ncae_exp.training.trainer import FitResult

MODES = ("min", "max")


@dataclass
class PreparedSplit:
    """What the model is fit on, and the split's statistics (logged as ``split.*`` params)."""

    train: sp.csr_matrix  # users × items
    rating_scale: RatingScale | None  # None: the model sees interactions, not ratings
    stats: dict[str, object] = field(default_factory=dict)


class Protocol(ABC):
    """``select``: the validation metric (``val_…``) that picks the best epoch and the best
    run of a sweep; ``mode``: ``min`` or ``max``, from the config, never guessed."""

    name: str = "protocol"

    def __init__(self, select: str, mode: str):
        select, mode = str(select), str(mode)
        if not select.startswith("val_"):
            raise ConfigError(f"protocol.select must be a validation metric (val_...), got {select!r}")
        if mode not in MODES:
            raise ConfigError(f"protocol.mode must be 'min' or 'max', got {mode!r}")
        self.select, self.mode = select, mode

    def check_dataset(self, name: str, implicit_only: bool) -> None:
        """Refuse a dataset this protocol cannot use, before it is loaded."""

    def check_split(self, split_cfg: DictConfig, dataset: str) -> None:
        """Refuse a ``split`` config this protocol cannot use (its kind, its values), before
        any data is read."""

    @abstractmethod
    def split(self, data: Interactions, split_cfg: DictConfig, seed: int, data_dir: Path,
              merge_validation: bool = False) -> PreparedSplit:
        """Split ``data``; keeps what :meth:`evaluate` and :meth:`test` need.

        ``merge_validation``: train on training ∪ validation (the paper's retraining after
        selection, protocols/selection.py); :meth:`evaluate` then has no validation metric
        and the test is unchanged (same held-out entries for the same seed)."""

    @abstractmethod
    def evaluate(self, model: Recommender) -> dict[str, float]:
        """The per-epoch metrics: validation (and optional curves such as train RMSE)."""

    @abstractmethod
    def test(self, model: Recommender, tracker: Tracker, output_dir: Path) -> dict[str, float]:
        """The final test metrics of the selected model (may log extra artifacts)."""

    def final(self, model: Recommender, fit: FitResult, tracker: Tracker, output_dir: Path) -> dict[str, float]:
        """One run's final metrics: test, the selected epoch's validation metrics, timings."""
        return {**self.test(model, tracker, output_dir), **self.selected(fit)}

    @staticmethod
    def selected(fit: FitResult) -> dict[str, float]:
        """What selection on validation found: the selected epoch's validation metrics, the
        epoch, and timings (no test metric)."""
        best = next((h for h in fit.history if h["step"] == fit.best_epoch), {})
        return {
            **{k: v for k, v in best.items() if k.startswith("val_")},
            "best_epoch": fit.best_epoch,
            "epochs_run": fit.epochs_run,
            "epoch_seconds": fit.epoch_seconds,
            "fit_seconds": fit.fit_seconds,
            **fit.extras,
        }


def merged(train: sp.csr_matrix, val: sp.csr_matrix) -> sp.csr_matrix:
    """Training ∪ validation as one matrix; the two parts never share an entry."""
    union = (train + val).tocsr()
    if union.nnz != train.nnz + val.nnz:
        raise ValueError("training and validation share entries: the split is broken")
    union.sort_indices()
    return union


def interactions_not_ratings(name: str) -> ConfigError:
    return ConfigError(
        f"dataset {name!r} has interactions, not ratings: use protocol=implicit (or an explicit dataset such as ml-100k)"
    )
