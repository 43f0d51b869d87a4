"""Top-M ranking evaluation (implicit protocol): HR@M and NDCG@M by full ranking.

Each evaluated user has one held-out item (leave-one-out). The model scores every item; the
user's training items are removed from the ranking (they are known, recommending them is
pointless), the held-out item never is. The evaluator only calls
:meth:`Recommender.score_items`; it never knows which model it scores.

Rank of the held-out item (0 = top) = number of candidate items scored strictly higher
+ number of *other* candidates scored exactly the same. Ties are thus resolved against the
held-out item (pessimistic). A model that cannot tell items apart — a constant scorer, or
NCAE without reweighting saturated at 1 everywhere — gets the worst rank, N_candidates − 1,
so it scores 0 unless the catalogue is smaller than M; "half the ties" or a random tie-break
would instead hand it the middle rank, a hit whenever M exceeds half the catalogue and a
non-zero HR@M for no information. With real-valued scores ties are rare and the rule changes
nothing.
A NaN score counts as −∞: a model that emits NaN for the target cannot be rewarded for it.

HR@M = 1 if rank < M; NDCG@M = 1/log2(rank + 2) if rank < M, else 0 (one relevant item, so
the ideal DCG is 1). Metrics are kept per user so callers can bucket users by activity
(paper Table 4); the evaluator reports their means.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from ncae_exp.errors import ConfigError
from ncae_exp.models.base import Recommender

DEFAULT_CUTOFFS = (50, 100, 150, 200, 250)


def check_cutoffs(cutoffs: Sequence[int]) -> tuple[int, ...]:
    """Distinct positive integer cutoffs, ascending; ConfigError otherwise."""
    try:
        raw = list(cutoffs) if not isinstance(cutoffs, (str, bytes)) else [cutoffs]
        values = [int(m) for m in raw]
        exact = all(v == float(m) for v, m in zip(values, raw))
    except (TypeError, ValueError):
        raw, values, exact = cutoffs, [], False
    if not values or not exact or min(values) <= 0:
        raise ConfigError(f"ranking cutoffs must be a non-empty list of positive integers, got {raw!r}")
    return tuple(sorted(set(values)))


def target_ranks(
    scores: np.ndarray, target: np.ndarray, exclude: sp.csr_matrix | None = None
) -> np.ndarray:
    """0-based rank of each row's ``target`` item among that row's candidates (int64).

    ``scores`` is (U × N); ``target[u]`` the held-out item of row u; ``exclude`` an optional
    (U × N) sparse matrix whose stored entries are removed from row u's candidates (the
    target is a candidate even if stored there). Ties count against the target (see the
    module docstring). ``scores`` is not modified.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D (users × items), got shape {scores.shape}")
    n_rows, n_items = scores.shape
    target = np.asarray(target, dtype=np.int64).ravel()
    if target.shape != (n_rows,):
        raise ValueError(f"need one target per score row: {target.shape[0]} targets, {n_rows} rows")
    if n_rows and (target.min() < 0 or target.max() >= n_items):
        raise ValueError(f"target items must lie in [0, {n_items})")

    # A private copy: NaN -> -inf, then excluded entries -> NaN, which compares false with
    # everything and so is neither above nor tied with the target.
    work = scores.astype(scores.dtype if np.issubdtype(scores.dtype, np.floating) else np.float64, copy=True)
    np.copyto(work, -np.inf, where=np.isnan(work))
    rows = np.arange(n_rows)
    t = work[rows, target].copy()
    if exclude is not None:
        exclude = sp.csr_matrix(exclude)
        if exclude.shape != scores.shape:
            raise ValueError(f"exclude has shape {exclude.shape}, scores {scores.shape}")
        ex_rows = np.repeat(rows, np.diff(exclude.indptr))
        work[ex_rows, exclude.indices] = np.nan
        work[rows, target] = t
    col = t[:, None]
    higher = np.count_nonzero(work > col, axis=1)
    tied = np.count_nonzero(work == col, axis=1) - 1  # minus the target itself
    return (higher + tied).astype(np.int64)


def metrics_from_ranks(
    ranks: np.ndarray, cutoffs: Sequence[int]
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``{M: (hit, ndcg)}`` per user from 0-based ranks: hit = 1.0 if rank < M else 0.0,
    ndcg = 1/log2(rank + 2) on a hit, else 0.0 (float64 arrays aligned with ``ranks``)."""
    ranks = np.asarray(ranks, dtype=np.int64)
    gain = 1.0 / np.log2(ranks + 2.0)
    out = {}
    for m in check_cutoffs(cutoffs):
        hit = ranks < m
        out[m] = (hit.astype(np.float64), np.where(hit, gain, 0.0))
    return out


class RankingEvaluator:
    """Full-ranking HR@M / NDCG@M of held-out (user, item) pairs, excluding training items.

    ``train`` is the matrix the model was fit on (for the final test after retraining on
    train + validation, pass that union). Users are scored ``batch_users`` at a time, so
    memory stays at one (batch × N) score block.
    """

    def __init__(
        self, train: sp.csr_matrix, cutoffs: Sequence[int] = DEFAULT_CUTOFFS, batch_users: int = 1024
    ):
        self.train = sp.csr_matrix(train)
        self.cutoffs = check_cutoffs(cutoffs)
        if int(batch_users) < 1:
            raise ConfigError(f"batch_users must be >= 1, got {batch_users}")
        self.batch_users = int(batch_users)

    def ranks(self, model: Recommender, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """0-based rank of ``items[k]`` in ``users[k]``'s ranking (int64, aligned with users)."""
        users = np.asarray(users, dtype=np.int64).ravel()
        items = np.asarray(items, dtype=np.int64).ravel()
        if users.shape != items.shape:
            raise ValueError(f"users and items differ in length: {users.shape[0]} vs {items.shape[0]}")
        n_users, n_items = self.train.shape
        if len(users) and (users.min() < 0 or users.max() >= n_users):
            raise ValueError(f"users must lie in [0, {n_users})")
        out = np.empty(len(users), dtype=np.int64)
        for start in range(0, len(users), self.batch_users):
            block = slice(start, start + self.batch_users)
            batch = users[block]
            scores = np.asarray(model.score_items(batch))
            if scores.shape != (len(batch), n_items):
                expected = (len(batch), n_items)
                raise ValueError(f"score_items returned shape {scores.shape}, expected {expected}")
            out[block] = target_ranks(scores, items[block], self.train[batch])
        return out

    def summarise(self, ranks: np.ndarray, prefix: str) -> dict[str, float]:
        """``{prefix}_hr_at_{M}`` and ``{prefix}_ndcg_at_{M}`` means for every cutoff
        (nothing for an empty set)."""
        if len(ranks) == 0:
            return {}
        out = {}
        for m, (hit, ndcg) in metrics_from_ranks(ranks, self.cutoffs).items():
            out[f"{prefix}_hr_at_{m}"] = float(hit.mean())
            out[f"{prefix}_ndcg_at_{m}"] = float(ndcg.mean())
        return out

    def evaluate(
        self, model: Recommender, users: np.ndarray, items: np.ndarray, prefix: str
    ) -> dict[str, float]:
        """Mean HR@M and NDCG@M over the pairs, named as in the MLflow contract."""
        return self.summarise(self.ranks(model, users, items), prefix)
