"""Train / validation / test splits of explicit ratings.

A split never changes the matrix shape: users and items keep their indices, so a user or
item can be absent from training and present in test (a "cold" pair; the evaluator gives
it a documented fallback prediction).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ncae_exp.data.interactions import Interactions
from ncae_exp.errors import ConfigError


@dataclass
class RatingPairs:
    """Held-out ratings as parallel arrays (user index, item index, rating)."""

    users: np.ndarray
    items: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class ExplicitSplit:
    name: str
    train: sp.csr_matrix  # M × N, only the training ratings
    val: RatingPairs
    test: RatingPairs

    def stats(self) -> dict[str, int]:
        return {
            "n_train": int(self.train.nnz),
            "n_val": len(self.val),
            "n_test": len(self.test),
            "train_users": int(np.count_nonzero(np.diff(self.train.indptr))),
            "train_items": int(np.count_nonzero(np.bincount(self.train.indices, minlength=self.train.shape[1]))),
        }


def _entries(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    coo = matrix.tocoo()
    return coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.astype(np.float32)


def _assemble(name: str, data: Interactions, part: np.ndarray) -> ExplicitSplit:
    """``part`` labels each entry (in CSR order) 0 = train, 1 = val, 2 = test."""
    rows, cols, vals = _entries(data.matrix)
    tr = part == 0
    train = sp.csr_matrix((vals[tr], (rows[tr], cols[tr])), shape=data.matrix.shape, dtype=np.float32)
    train.sort_indices()

    def pairs(label: int) -> RatingPairs:
        sel = part == label
        return RatingPairs(rows[sel], cols[sel], vals[sel])

    return ExplicitSplit(name=name, train=train, val=pairs(1), test=pairs(2))


def ratio_split(data: Interactions, train: float, val: float, test: float, seed: int) -> ExplicitSplit:
    """Each rating goes to train/val/test at random in the given proportions (seeded):
    exactly round(share·n) ratings per part, the rest to train."""
    check_fractions(train, val, test)
    n = data.n_ratings
    n_val, n_test = int(round(val * n)), int(round(test * n))
    order = np.random.default_rng(seed).permutation(n)
    part = np.zeros(n, dtype=np.int8)
    part[order[:n_test]] = 2
    part[order[n_test : n_test + n_val]] = 1
    name = f"ratio_{round(train * 100)}_{round(val * 100)}_{round(test * 100)}"
    return _assemble(name, data, part)


def canonical_split(
    data: Interactions, test_mask: np.ndarray, fold: int, val_fraction: float, seed: int
) -> ExplicitSplit:
    """A published fold (ML-100K ``u{fold}.base``/``u{fold}.test``): test is the fold's test
    file; validation is a seeded random ``val_fraction`` of its base file."""
    check_val_fraction(val_fraction)
    part = np.where(test_mask, 2, 0).astype(np.int8)
    base = np.flatnonzero(~test_mask)
    n_val = int(round(val_fraction * len(base)))
    part[np.random.default_rng(seed).permutation(base)[:n_val]] = 1
    return _assemble(f"canonical_u{fold}", data, part)


def check_fractions(train: float, val: float, test: float) -> None:
    shares = np.array([train, val, test], dtype=float)
    if np.any(shares < 0) or not np.isclose(shares.sum(), 1.0) or train <= 0 or test <= 0:
        raise ConfigError(
            f"split fractions must be >= 0, sum to 1, with train and test > 0; got {train}/{val}/{test}"
        )


def check_val_fraction(val_fraction: float) -> None:
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"split.val_fraction must be in [0, 1), got {val_fraction}")


def check_split_settings(cfg, dataset: str) -> None:
    """The explicit protocol's ``split`` config, checked before any data is read."""
    kind = cfg.get("kind")
    if kind == "ratio":
        check_fractions(float(cfg["train"]), float(cfg["val"]), float(cfg["test"]))
    elif kind == "canonical":
        from ncae_exp.data.loader import check_canonical_fold

        check_canonical_fold(dataset, cfg["fold"])
        check_val_fraction(float(cfg["val_fraction"]))
    elif kind == "leave_one_out":
        raise ConfigError("split=leave_one_out is the implicit protocol's split: use protocol=implicit")
    else:
        raise ConfigError(f"unknown split kind {kind!r}; choose 'ratio' or 'canonical'")


def make_split(data: Interactions, cfg, data_dir: Path, seed: int) -> ExplicitSplit:
    """The split named by the ``split`` config group."""
    kind = cfg.kind
    if kind == "ratio":
        return ratio_split(data, float(cfg.train), float(cfg.val), float(cfg.test), seed)
    if kind == "canonical":
        from ncae_exp.data.loader import canonical_fold

        mask = canonical_fold(data, data_dir, int(cfg.fold))
        return canonical_split(data, mask, int(cfg.fold), float(cfg.val_fraction), seed)
    if kind == "leave_one_out":
        raise ConfigError("split=leave_one_out is the implicit protocol's split: use protocol=implicit")
    raise ConfigError(f"unknown split kind {kind!r}; choose 'ratio' or 'canonical'")
