"""The implicit protocol: leave-one-out, full ranking of every item, HR@M and NDCG@M.

Validation ranks each user's validation item among all items not in their training set;
the test ranks the test item among all items the user has not interacted with in training
or validation (the validation item is a known positive by then, so it is not a candidate).
The best epoch is the one with the highest validation HR@100.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from omegaconf import DictConfig

from ncae_exp.data.interactions import Interactions
from ncae_exp.data.leave_one_out import keep_share, leave_one_out
from ncae_exp.errors import ConfigError
from ncae_exp.evaluation.ranking import RankingEvaluator, check_cutoffs
from ncae_exp.models.registry import build_model
from ncae_exp.protocols.explicit import ProtocolResult
from ncae_exp.tracking.base import Tracker
from ncae_exp.training.trainer import Trainer

log = logging.getLogger(__name__)


def _pairs_matrix(users: np.ndarray, items: np.ndarray, shape) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=shape)


def run_implicit(cfg: DictConfig, data: Interactions, tracker: Tracker, data_dir: Path) -> ProtocolResult:
    if str(cfg.split.kind) != "leave_one_out":
        raise ConfigError(f"protocol=implicit needs split=leave_one_out, got split kind {cfg.split.kind!r}")
    cutoffs = check_cutoffs(list(cfg.protocol.cutoffs))
    if 100 not in cutoffs or 50 not in cutoffs:
        raise ConfigError(f"protocol.cutoffs must include 50 and 100, got {list(cutoffs)}")
    seed = int(cfg.seed)
    split = leave_one_out(data, seed=seed, min_interactions=int(cfg.split.min_interactions))
    train = split.train
    share = float(cfg.split.keep_share)
    if share < 1.0:
        train = keep_share(train, share, seed)
    stats = {f"split.{k}": v for k, v in split.stats().items()}
    stats["split.n_train"] = int(train.nnz)  # after keep_share
    tracker.log_params(stats)
    log.info("split leave_one_out: %s", ", ".join(f"{k.split('.', 1)[1]}={v}" for k, v in stats.items()))
    if not split.test_by_timestamp:
        log.info("%s has no timestamps: each test item is a seeded random interaction", data.name)

    model = build_model(cfg.model, cfg.trainer, cfg.pretrain, seed, "implicit")
    model.prepare(train, None)
    tracker.log_params({f"model_info.{k}": v for k, v in model.describe().items()})

    val_eval = RankingEvaluator(train, cutoffs)
    known = train + _pairs_matrix(split.val_users, split.val_items, train.shape)
    test_eval = RankingEvaluator(known, cutoffs)

    def evaluate(m) -> dict[str, float]:
        return val_eval.evaluate(m, split.val_users, split.val_items, "val")

    trainer = Trainer(
        epochs=int(cfg.trainer.epochs),
        tracker=tracker,
        select=str(cfg.protocol.select),
        mode="max",
        patience=None if cfg.trainer.patience is None else int(cfg.trainer.patience),
    )
    fit = trainer.fit(model, evaluate)
    best_val = next(h for h in fit.history if h["step"] == fit.best_epoch)
    final = {
        **test_eval.evaluate(model, split.test_users, split.test_items, "test"),
        **{k: v for k, v in best_val.items() if k.startswith("val_")},
        "best_epoch": fit.best_epoch,
        "epochs_run": fit.epochs_run,
        "epoch_seconds": fit.epoch_seconds,
        "fit_seconds": fit.fit_seconds,
        **fit.extras,
    }
    return ProtocolResult(final_metrics=final, fit=fit, model=model)
