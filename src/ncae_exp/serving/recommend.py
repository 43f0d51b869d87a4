"""``ncae-recommend``: the top-k unrated items for a user, from a model logged to MLflow."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from ncae_exp.errors import ConfigError
from ncae_exp.serving.rebuild import LoadedModel, check_model_run, download_model, rebuild

USAGE = """usage: ncae-recommend run_id=<mlflow run id> user=<original user id> [k=10] [tracking_uri=<uri>] [data_dir=<dir>]

Prints the top-k items (original ids, scores and names where the dataset has them) that the
user has not rated, from the model logged by an ncae-run run (its model/ artifact). The
model is rebuilt from the run's config and the same dataset, read from data_dir (default:
the run's paths.data_dir). tracking_uri defaults to $MLFLOW_TRACKING_URI, else
sqlite:///mlflow.db."""


def recommend(loaded: LoadedModel, user_id: int, k: int) -> list[tuple[int, float, str]]:
    """Top-``k`` (original item id, score, name) among items the user has not rated."""
    data = loaded.data
    pos = int(np.searchsorted(data.user_ids, user_id))
    if pos >= len(data.user_ids) or data.user_ids[pos] != user_id:
        raise ConfigError(f"user {user_id} is not in {data.name} ({id_range(data.user_ids, 'user')})")
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    scores = loaded.model.score_items(np.array([pos]))[0].astype(np.float64)
    rated = data.matrix.indices[data.matrix.indptr[pos] : data.matrix.indptr[pos + 1]]
    scores[rated] = -np.inf
    k = min(k, int(np.isfinite(scores).sum()))
    top = np.argpartition(-scores, k - 1)[:k] if k else np.array([], int)
    top = top[np.lexsort((top, -scores[top]))]  # by score, then item index for ties
    return [(int(data.item_ids[j]), float(scores[j]), data.item_names.get(int(data.item_ids[j]), "")) for j in top]


def id_range(ids: np.ndarray, what: str) -> str:
    """``user ids 1..943``, or with gaps ``1892 user ids between 2 and 2100``."""
    if len(ids) == 0:
        return f"no {what}s"
    lo, hi = int(ids[0]), int(ids[-1])
    if hi - lo + 1 == len(ids):
        return f"{what} ids {lo}..{hi}"
    return f"{len(ids)} {what} ids between {lo} and {hi}, not every one in between"


def main(argv: list[str] | None = None) -> None:
    """``ncae-recommend run_id=<id> user=<original user id> k=<int>`` (also tracking_uri=, data_dir=)."""
    import sys

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # stdout is the ranking only
    from ncae_exp.errors import NcaeError
    from ncae_exp.tracking.mlflow_tracker import resolve_tracking_uri

    args = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in args):
        print(USAGE)
        return
    allowed = {"run_id", "user", "k", "tracking_uri", "data_dir"}
    try:
        opts = {}
        for arg in args:
            key, sep, value = arg.partition("=")
            if not sep or key not in allowed:
                raise ConfigError(f"unknown argument {arg!r}; usage: ncae-recommend run_id=<id> user=<user id> k=<int>")
            opts[key] = value
        if "run_id" not in opts or "user" not in opts:
            raise ConfigError("usage: ncae-recommend run_id=<id> user=<user id> [k=10] [tracking_uri=...] [data_dir=...]")
        try:
            user, k = int(opts["user"]), int(opts.get("k", 10))
        except ValueError as err:
            raise ConfigError(f"user and k must be integers: {err}") from None
        uri = resolve_tracking_uri(opts.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db")
        logging.basicConfig(level=logging.WARNING)
        retry = " ".join(["ncae-recommend", *("run_id={run_id}" if a.startswith("run_id=") else a for a in args)])
        check_model_run(opts["run_id"], uri, retry)
        with tempfile.TemporaryDirectory() as tmp:
            loaded = rebuild(download_model(opts["run_id"], uri, Path(tmp)), opts.get("data_dir"))
        for rank, (item, score, name) in enumerate(recommend(loaded, user, k), start=1):
            print(f"{rank}\t{item}\t{score:.4f}\t{name}")
    except NcaeError as err:
        print(f"ncae-recommend: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
