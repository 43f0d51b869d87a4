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
from ncae_exp.data.leave_one_out import LeaveOneOutSplit, keep_share, leave_one_out
from ncae_exp.errors import ConfigError
from ncae_exp.evaluation.buckets import bucket_markdown, bucket_table
from ncae_exp.evaluation.ranking import RankingEvaluator, check_cutoffs
from ncae_exp.models.registry import build_model
from ncae_exp.protocols.explicit import ProtocolResult
from ncae_exp.tracking.base import Tracker
from ncae_exp.training.trainer import Trainer

log = logging.getLogger(__name__)


def _pairs_matrix(users: np.ndarray, items: np.ndarray, shape) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=shape)


def make_implicit_split(cfg: DictConfig, data: Interactions) -> tuple[LeaveOneOutSplit, sp.csr_matrix]:
    """The leave-one-out split and the training matrix (after Table 5's keep_share)."""
    if str(cfg.split.kind) != "leave_one_out":
        raise ConfigError(f"protocol=implicit needs split=leave_one_out, got split kind {cfg.split.kind!r}")
    seed = int(cfg.seed)
    split = leave_one_out(data, seed=seed, min_interactions=int(cfg.split.min_interactions))
    share = float(cfg.split.keep_share)
    return split, (keep_share(split.train, share, seed) if share < 1.0 else split.train)


def _log_buckets(cfg, tracker: Tracker, ranks, activity, output_dir: Path) -> None:
    """Paper Table 4: test HR/NDCG@100 by the user's number of training interactions."""
    rows = bucket_table(ranks, activity, list(cfg.protocol.activity_buckets), cutoff=100)
    for r in rows:
        tag = f"users_{r['low']:g}_{'inf' if np.isinf(r['high']) else format(r['high'], 'g')}"
        if r["users"]:
            tracker.log_metrics({f"test_hr_at_100_{tag}": r["hr_at_100"], f"test_ndcg_at_100_{tag}": r["ndcg_at_100"]})
        tracker.log_params({f"buckets.n_{tag}": r["users"]})
    path = Path(output_dir) / "activity_buckets.md"
    path.write_text(bucket_markdown(rows, cutoff=100))
    tracker.log_artifact(path)
    log.info("test metrics by user activity:\n%s", path.read_text())


def run_implicit(cfg: DictConfig, data: Interactions, tracker: Tracker, data_dir: Path,
                 output_dir: Path) -> ProtocolResult:
    cutoffs = check_cutoffs(list(cfg.protocol.cutoffs))
    if 100 not in cutoffs or 50 not in cutoffs:
        raise ConfigError(f"protocol.cutoffs must include 50 and 100, got {list(cutoffs)}")
    seed = int(cfg.seed)
    split, train = make_implicit_split(cfg, data)
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
    test_ranks = test_eval.ranks(model, split.test_users, split.test_items)
    if cfg.protocol.get("activity_buckets"):
        _log_buckets(cfg, tracker, test_ranks, np.diff(train.indptr)[split.test_users], output_dir)
    final = {
        **test_eval.summarise(test_ranks, "test"),
        **{k: v for k, v in best_val.items() if k.startswith("val_")},
        "best_epoch": fit.best_epoch,
        "epochs_run": fit.epochs_run,
        "epoch_seconds": fit.epoch_seconds,
        "fit_seconds": fit.fit_seconds,
        **fit.extras,
    }
    return ProtocolResult(final_metrics=final, fit=fit, model=model)
