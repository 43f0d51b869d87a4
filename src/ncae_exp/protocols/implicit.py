"""The implicit protocol: leave-one-out, full ranking of every item, HR@M and NDCG@M.

Validation ranks each user's validation item among all items not in their training set;
the test ranks the test item among all items the user has not interacted with in training
or validation (the validation item is a known positive by then, so it is not a candidate).
The best epoch is the one with the highest validation HR@100 (``protocol.select``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from omegaconf import DictConfig

from ncae_exp.data.interactions import Interactions
from ncae_exp.data.leave_one_out import (VALIDATION_ITEMS, LeaveOneOutSplit, check_keep_share, check_min_interactions,
                                         keep_share, leave_one_out)
from ncae_exp.errors import ConfigError
from ncae_exp.evaluation.buckets import bucket_markdown, bucket_table, check_edges
from ncae_exp.evaluation.ranking import RankingEvaluator, check_cutoffs
from ncae_exp.models.base import Recommender
from ncae_exp.protocols.base import PreparedSplit, Protocol, merged
from ncae_exp.tracking.base import Tracker

log = logging.getLogger(__name__)


def check_kind(split_cfg: DictConfig) -> None:
    if str(split_cfg.get("kind")) != "leave_one_out":
        raise ConfigError(f"protocol=implicit needs split=leave_one_out, got split kind {split_cfg.get('kind')!r}")


def implicit_split(data: Interactions, split_cfg: DictConfig, seed: int) -> tuple[LeaveOneOutSplit, sp.csr_matrix]:
    """The leave-one-out split and the training matrix (after Table 5's keep_share)."""
    check_kind(split_cfg)
    split = leave_one_out(data, seed=seed, min_interactions=int(split_cfg.min_interactions),
                          validation=str(split_cfg.get("validation", "random")))
    share = float(split_cfg.keep_share)
    return split, (keep_share(split.train, share, seed) if share < 1.0 else split.train)


class ImplicitProtocol(Protocol):
    name = "implicit"

    def __init__(self, select: str = "val_hr_at_100", mode: str = "max",
                 cutoffs=(50, 100, 150, 200, 250), activity_buckets=None):
        super().__init__(select, mode)
        self.cutoffs = check_cutoffs(list(cutoffs))
        if 100 not in self.cutoffs or 50 not in self.cutoffs:
            raise ConfigError(f"protocol.cutoffs must include 50 and 100, got {list(self.cutoffs)}")
        # checked here, before any data is read or model trained (used only at test time)
        self.activity_buckets = check_edges(activity_buckets) if activity_buckets else None
        self.data_split: LeaveOneOutSplit | None = None
        self.train: sp.csr_matrix | None = None

    def check_split(self, split_cfg: DictConfig, dataset: str) -> None:
        check_kind(split_cfg)
        check_min_interactions(split_cfg["min_interactions"])
        check_keep_share(split_cfg["keep_share"])
        if split_cfg.get("validation", "random") not in VALIDATION_ITEMS:
            raise ConfigError(f"split.validation must be one of {', '.join(VALIDATION_ITEMS)}, "
                              f"got {split_cfg.get('validation')!r}")

    def split(self, data: Interactions, split_cfg: DictConfig, seed: int, data_dir: Path,
              merge_validation: bool = False) -> PreparedSplit:
        split, train = implicit_split(data, split_cfg, seed)
        if not split.test_by_timestamp:
            log.info("%s has no timestamps: each test item is a seeded random interaction", data.name)
        val = sp.csr_matrix((np.ones(len(split.val_users), np.float32), (split.val_users, split.val_items)),
                            shape=train.shape)
        train_and_val = merged(train, val)
        # Retraining: the validation item joins the user's input vector (the model's matrix).
        self.merged = merge_validation
        if merge_validation:
            train = train_and_val
        self.data_split, self.train = split, train
        self.val_eval = None if merge_validation else RankingEvaluator(train, self.cutoffs)
        self.test_eval = RankingEvaluator(train_and_val, self.cutoffs)
        stats: dict[str, object] = {"name": "leave_one_out", **split.stats(), "n_train": int(train.nnz),  # after keep_share
                                    "merged_validation": merge_validation}
        return PreparedSplit(train=train, rating_scale=None, stats=stats)

    def evaluate(self, model: Recommender) -> dict[str, float]:
        if self.val_eval is None:  # retraining on training ∪ validation: nothing to validate on
            return {}
        split = self.data_split
        return self.val_eval.evaluate(model, split.val_users, split.val_items, "val")

    def test(self, model: Recommender, tracker: Tracker, output_dir: Path) -> dict[str, float]:
        split = self.data_split
        ranks = self.test_eval.ranks(model, split.test_users, split.test_items)
        if self.activity_buckets:
            activity = np.diff(self.train.indptr)[split.test_users]
            self._log_buckets(tracker, ranks, activity, Path(output_dir))
        return self.test_eval.summarise(ranks, "test")

    def _log_buckets(self, tracker: Tracker, ranks: np.ndarray, activity: np.ndarray, output_dir: Path) -> None:
        """Paper Table 4: test HR/NDCG@100 by the user's number of training interactions,
        buckets [e0, e1], (e1, e2], … (``users_1_5`` = (1, 5]; see evaluation/buckets.py)."""
        rows = bucket_table(ranks, activity, self.activity_buckets, cutoff=100)
        for r in rows:
            tag = r["tag"]
            if r["users"]:
                tracker.log_metrics({f"test_hr_at_100_{tag}": r["hr_at_100"], f"test_ndcg_at_100_{tag}": r["ndcg_at_100"]})
            tracker.log_params({f"buckets.n_{tag}": r["users"]})
        path = output_dir / "activity_buckets.md"
        path.write_text(bucket_markdown(rows, cutoff=100))
        tracker.log_artifact(path)
        log.info("test metrics by user activity:\n%s", path.read_text())
