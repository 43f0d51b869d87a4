"""The pyfunc flavour of a logged model: ``mlflow.pyfunc.load_model("runs:/<id>/model")``.

``predict(df)`` takes a DataFrame with either

- ``user``: a known user's original id, and optional ``k`` (default 10): their top-k items
  among those they have not rated anywhere in the dataset (training, validation or test —
  what ``ncae-recommend`` always excluded); or
- ``items`` (a list of original item ids) with optional ``ratings`` (one per item; needed by
  a model trained on ratings, 1 = an interaction otherwise) and optional ``k``: a new user,
  folded in without retraining (``Recommender.score_vectors``); their given items are
  excluded. ``user``, if present, labels the rows; else the row's position does.

and returns one row per recommendation: ``user``, ``rank`` (1 = best), ``item`` (original
id), ``score`` (the model's own: a predicted rating, or a ranking score). Ties are broken
by the item's index. The files it reads are written by ``models/mlflow_model.py``.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ncae_exp.errors import ConfigError
from ncae_exp.models.mlflow_model import ARTIFACT, DEFAULT_K, ServingData, load_serving_data


class RecommenderModel(mlflow.pyfunc.PythonModel):
    """Any registered model (its ``_target_``), with the data scoring needs."""

    def load_context(self, context) -> None:
        self.load(Path(context.artifacts[ARTIFACT]))

    def load(self, folder: Path) -> "RecommenderModel":
        """Rebuild the model from ``folder`` (weights, config, serving data)."""
        from ncae_exp.models.io import WEIGHTS, load_model_config, load_state
        from ncae_exp.models.registry import build_model
        from ncae_exp.training.device import configure_device

        self.cfg = load_model_config(folder)
        configure_device("auto")  # TensorFlow quiet, the GPU if there is one
        self.data: ServingData = load_serving_data(folder)
        self.model = build_model(self.cfg.model)
        self.model.prepare(self.data.train, self.data.rating_scale)
        self.model.set_state(load_state(folder / WEIGHTS))
        self.explicit = str(self.cfg.protocol.name) == "explicit"
        return self

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        df = pd.DataFrame(model_input)
        if "items" in df.columns:
            return self._fold_in(df)
        if "user" not in df.columns:
            raise ConfigError("give a column user (known users' ids), or items (+ ratings) for new users")
        users = [int(u) for u in df["user"]]
        ks = _ks(df)
        positions = [self.user_position(u) for u in users]
        scores = self.model.score_items(np.array(positions, dtype=np.int64)) if positions else None
        rows = []
        for r, (user, pos, k) in enumerate(zip(users, positions, ks)):
            seen = self.data.seen.indices[self.data.seen.indptr[pos] : self.data.seen.indptr[pos + 1]]
            rows += self._top(user, scores[r], seen, k)
        return _frame(rows)

    # -- helpers (also used by ncae-recommend) ---------------------------------------------
    def user_position(self, user: int) -> int:
        ids = self.data.user_ids
        pos = int(np.searchsorted(ids, user))
        if pos >= len(ids) or ids[pos] != user:
            raise ConfigError(f"user {user} is not in {self.data.dataset} ({id_range(ids, 'user')})")
        return pos

    def item_name(self, item: int) -> str:
        return self.data.item_names.get(int(item), "")

    def vectors(self, items: list[list[int]], ratings: list[list[float] | None]) -> sp.csr_matrix:
        """New users' vectors over the model's items, from original item ids (and ratings)."""
        ids = self.data.item_ids
        indptr, indices, values = [0], [], []
        for its, rs in zip(items, ratings):
            its = [int(i) for i in its]
            if rs is None:
                if self.explicit:
                    raise ConfigError("this model was trained on ratings: give ratings with items (one per item)")
                rs = [1.0] * len(its)
            if len(rs) != len(its):
                raise ConfigError(f"{len(its)} items but {len(rs)} ratings: give one rating per item")
            pos = np.searchsorted(ids, its)
            bad = [i for i, p in zip(its, pos) if p >= len(ids) or ids[p] != i]
            if bad:
                raise ConfigError(f"item {bad[0]} is not in {self.data.dataset} ({id_range(ids, 'item')})")
            if len(set(its)) != len(its):
                raise ConfigError("an item is given twice: give each item once")
            scale = self.data.rating_scale
            if self.explicit and scale and any(not scale.low <= float(r) <= scale.high for r in rs):
                raise ConfigError(f"ratings must be in {scale.low:g}..{scale.high:g} for {self.data.dataset}")
            indices += [int(p) for p in pos]
            values += [float(r) for r in rs]
            indptr.append(len(indices))
        return sp.csr_matrix((np.array(values, np.float32), np.array(indices, np.int64), np.array(indptr)),
                             shape=(len(items), len(ids)))

    def _fold_in(self, df: pd.DataFrame) -> pd.DataFrame:
        items = [list(_as_list(v)) for v in df["items"]]
        ratings = ([None if _missing(v) else list(_as_list(v)) for v in df["ratings"]]
                   if "ratings" in df.columns else [None] * len(items))
        labels = [int(u) for u in df["user"]] if "user" in df.columns else list(range(len(items)))
        x = self.vectors(items, ratings)
        scores = self.model.score_vectors(x) if len(items) else None
        rows = []
        for r, (label, k) in enumerate(zip(labels, _ks(df))):
            rows += self._top(label, scores[r], x.indices[x.indptr[r] : x.indptr[r + 1]], k)
        return _frame(rows)

    def _top(self, user: int, scores: np.ndarray, exclude: np.ndarray, k: int) -> list[tuple]:
        top, scores = top_k(scores, exclude, k)
        return [(user, rank, int(self.data.item_ids[j]), float(scores[j])) for rank, j in enumerate(top, start=1)]


def top_k(scores: np.ndarray, exclude: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(the ``k`` best item indices outside ``exclude``, best first — ties by item index —
    and the scores as float64 with the excluded ones at −inf)."""
    scores = np.asarray(scores, dtype=np.float64).copy()
    scores[exclude] = -np.inf
    k = min(k, int(np.isfinite(scores).sum()))
    top = np.argpartition(-scores, k - 1)[:k] if k else np.array([], int)
    return top[np.lexsort((top, -scores[top]))], scores


def _ks(df: pd.DataFrame) -> list[int]:
    ks = [DEFAULT_K if "k" not in df.columns or _missing(v) else int(v) for v in (df["k"] if "k" in df.columns
                                                                                 else [None] * len(df))]
    if any(k < 1 for k in ks):
        raise ConfigError(f"k must be >= 1, got {min(ks)}")
    return ks


def _missing(value) -> bool:
    return value is None or (np.isscalar(value) and pd.isna(value))


def _as_list(value):
    if _missing(value):
        raise ConfigError("items must be a list of item ids on every row")
    return np.atleast_1d(np.asarray(value))


def _frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user", "rank", "item", "score"])
    return frame.astype({"user": "int64", "rank": "int64", "item": "int64", "score": "float64"})


def id_range(ids: np.ndarray, what: str) -> str:
    """``user ids 1..943``, or with gaps ``1892 user ids between 2 and 2100``."""
    if len(ids) == 0:
        return f"no {what}s"
    lo, hi = int(ids[0]), int(ids[-1])
    if hi - lo + 1 == len(ids):
        return f"{what} ids {lo}..{hi}"
    return f"{len(ids)} {what} ids between {lo} and {hi}, not every one in between"
