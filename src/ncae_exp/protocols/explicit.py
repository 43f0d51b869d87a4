"""The explicit protocol: rating prediction on a random (or published) split, scored by RMSE.

The best epoch is the one with the lowest validation RMSE; test RMSE is measured once, on
the restored best model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from ncae_exp.data.interactions import Interactions
from ncae_exp.data.splits import RatingPairs, make_split
from ncae_exp.errors import ConfigError
from ncae_exp.evaluation.rating import RatingEvaluator
from ncae_exp.models.registry import build_model
from ncae_exp.tracking.base import Tracker
from ncae_exp.training.trainer import FitResult, Trainer

log = logging.getLogger(__name__)


@dataclass
class ProtocolResult:
    final_metrics: dict[str, float]
    fit: FitResult
    model: object


def run_explicit(cfg: DictConfig, data: Interactions, tracker: Tracker, data_dir: Path,
                 output_dir: Path) -> ProtocolResult:
    if data.rating_scale is None:
        raise ConfigError(
            f"dataset {data.name!r} has interactions, not ratings: use protocol=implicit "
            "(or an explicit dataset such as ml-100k)"
        )
    seed = int(cfg.seed)
    split = make_split(data, cfg.split, data_dir, seed)
    stats = {f"split.{k}": v for k, v in split.stats().items()}
    evaluator = RatingEvaluator(split.train, data.rating_scale)
    stats["split.val_cold_pairs"] = int(evaluator.cold_mask(split.val).sum())
    stats["split.test_cold_pairs"] = int(evaluator.cold_mask(split.test).sum())
    tracker.log_params({"split.name": split.name, **stats})
    log.info("split %s: %s", split.name, ", ".join(f"{k.split('.', 1)[1]}={v}" for k, v in stats.items()))

    model = build_model(cfg.model, cfg.trainer, cfg.pretrain, seed, "explicit")
    model.prepare(split.train, data.rating_scale)
    tracker.log_params({f"model_info.{k}": v for k, v in model.describe().items()})

    train_pairs = None
    if bool(cfg.trainer.log_train_rmse):
        coo = split.train.tocoo()
        train_pairs = RatingPairs(coo.row.astype("int64"), coo.col.astype("int64"), coo.data)

    def evaluate(m) -> dict[str, float]:
        out = evaluator.evaluate(m, split.val, "val")
        if train_pairs is not None:
            out.update(evaluator.evaluate(m, train_pairs, "train"))
        if bool(cfg.trainer.log_test_rmse):  # a curve for plots (Fig. 5); never used to select
            out.update(evaluator.evaluate(m, split.test, "test"))
        return out

    trainer = Trainer(
        epochs=int(cfg.trainer.epochs),
        tracker=tracker,
        select="val_rmse",
        mode="min",
        patience=None if cfg.trainer.patience is None else int(cfg.trainer.patience),
    )
    fit = trainer.fit(model, evaluate)
    final = {
        **evaluator.evaluate(model, split.test, "test"),
        "best_epoch": fit.best_epoch,
        "epochs_run": fit.epochs_run,
        "epoch_seconds": fit.epoch_seconds,
        "fit_seconds": fit.fit_seconds,
        **fit.extras,
    }
    if fit.best_value is not None:
        final["val_rmse"] = fit.best_value
    return ProtocolResult(final_metrics=final, fit=fit, model=model)
