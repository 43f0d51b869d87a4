"""The explicit protocol: rating prediction on a random (or published) split, scored by RMSE.

The best epoch is the one with the lowest validation RMSE; test RMSE is measured once, on
the restored best model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
from omegaconf import DictConfig

from ncae_exp.data.interactions import Interactions
from ncae_exp.data.splits import ExplicitSplit, RatingPairs, check_split_settings, make_split
from ncae_exp.evaluation.rating import RatingEvaluator
from ncae_exp.models.base import Recommender
from ncae_exp.errors import ConfigError
from ncae_exp.protocols.base import PreparedSplit, Protocol, interactions_not_ratings, merged
from ncae_exp.tracking.base import Tracker


class ExplicitProtocol(Protocol):
    name = "explicit"

    def __init__(self, select: str = "val_rmse", mode: str = "min", log_train_rmse: bool = True,
                 log_test_rmse: bool = False):
        super().__init__(select, mode)
        self.log_train_rmse = bool(log_train_rmse)
        self.log_test_rmse = bool(log_test_rmse)  # a curve for plots (Fig. 5); never selects
        self.data_split: ExplicitSplit | None = None
        self.evaluator: RatingEvaluator | None = None
        self.train_pairs: RatingPairs | None = None
        self.merged = False

    def check_dataset(self, name: str, implicit_only: bool) -> None:
        if implicit_only:
            raise interactions_not_ratings(name)

    def check_split(self, split_cfg: DictConfig, dataset: str) -> None:
        check_split_settings(split_cfg, dataset)

    def split(self, data: Interactions, split_cfg: DictConfig, seed: int, data_dir: Path,
              merge_validation: bool = False) -> PreparedSplit:
        if data.rating_scale is None:
            raise interactions_not_ratings(data.name)
        split = make_split(data, split_cfg, data_dir, seed)
        if merge_validation:
            if len(split.val) == 0:
                raise ConfigError(f"split {split.name} has no validation set: nothing to select on or merge "
                                  "(use a split with validation, e.g. split=ratio_80_10_10, or retrain=false)")
            val = sp.csr_matrix((split.val.values.astype(np.float32), (split.val.users, split.val.items)),
                                shape=split.train.shape)
            empty = RatingPairs(*(np.zeros(0, dtype=a.dtype) for a in (split.val.users, split.val.items, split.val.values)))
            split = ExplicitSplit(name=split.name, train=merged(split.train, val), val=empty, test=split.test)
        self.data_split = split
        self.evaluator = RatingEvaluator(split.train, data.rating_scale)
        if self.log_train_rmse:
            coo = split.train.tocoo()
            self.train_pairs = RatingPairs(coo.row.astype("int64"), coo.col.astype("int64"), coo.data)
        self.merged = merge_validation
        stats: dict[str, object] = {"name": split.name, **split.stats(), "merged_validation": merge_validation}
        stats["val_cold_pairs"] = int(self.evaluator.cold_mask(split.val).sum())
        stats["test_cold_pairs"] = int(self.evaluator.cold_mask(split.test).sum())
        return PreparedSplit(train=split.train, rating_scale=data.rating_scale, stats=stats)

    def evaluate(self, model: Recommender) -> dict[str, float]:
        out = self.evaluator.evaluate(model, self.data_split.val, "val")
        if self.train_pairs is not None:
            out.update(self.evaluator.evaluate(model, self.train_pairs, "train"))
        if self.log_test_rmse and not self.merged:
            out.update(self.evaluator.evaluate(model, self.data_split.test, "test"))
        return out

    def test(self, model: Recommender, tracker: Tracker, output_dir: Path) -> dict[str, float]:
        return self.evaluator.evaluate(model, self.data_split.test, "test")
