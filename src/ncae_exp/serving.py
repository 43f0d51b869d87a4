"""Using a trained model: save it with its run, rebuild it from MLflow, recommend.

A logged model is ``model/weights.npz`` (the parameters of the selected epoch) and
``model/config.yaml`` (the resolved config of the run). Rebuilding loads the same dataset
(from ``paths.data_dir``), recomputes the same seeded split, and restores the weights —
so nothing but the parameters has to be stored, and the data never leaves the user's disk.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from omegaconf import DictConfig, OmegaConf

from ncae_exp.data.interactions import Interactions
from ncae_exp.errors import ConfigError, TrackingError
from ncae_exp.models.base import Recommender

log = logging.getLogger(__name__)


def save_model(model: Recommender, cfg: DictConfig, folder: Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = model.get_state()
    # npz keys cannot hold "/": keep the variable paths in a parallel array
    np.savez(folder / "weights.npz", names=np.array(list(state)), **{f"v{i}": v for i, v in enumerate(state.values())})
    (folder / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    return folder


def _load_state(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {str(name): npz[f"v{i}"] for i, name in enumerate(npz["names"])}


@dataclass
class LoadedModel:
    model: Recommender
    data: Interactions
    train: sp.csr_matrix  # what the model was fit on (its input vectors at inference)
    cfg: DictConfig


def rebuild(model_dir: Path, data_dir: str | None = None) -> LoadedModel:
    """The model saved in ``model_dir``, ready to score, with its dataset and training matrix."""
    from ncae_exp.data.loader import load_dataset
    from ncae_exp.data.splits import make_split
    from ncae_exp.models.registry import build_model
    from ncae_exp.protocols.implicit import make_implicit_split
    from ncae_exp.training.device import configure_device

    cfg = OmegaConf.load(Path(model_dir) / "config.yaml")
    if data_dir is not None:
        cfg.paths.data_dir = data_dir
    configure_device(str(cfg.trainer.device))
    data = load_dataset(cfg.dataset, Path(str(cfg.paths.data_dir)))
    protocol = str(cfg.protocol.name)
    seed = int(cfg.seed)
    if protocol == "implicit":
        _, train = make_implicit_split(cfg, data)
    else:
        train = make_split(data, cfg.split, Path(str(cfg.paths.data_dir)), seed).train
    model = build_model(cfg.model, cfg.trainer, OmegaConf.create({"name": "none"}), seed, protocol)
    model.prepare(train, data.rating_scale if protocol == "explicit" else None)
    model.set_state(_load_state(Path(model_dir) / "weights.npz"))
    return LoadedModel(model, data, train, cfg)


def download_model(run_id: str, tracking_uri: str, dest: Path) -> Path:
    import mlflow

    try:
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model", dst_path=str(dest),
                                                        tracking_uri=tracking_uri))
    except Exception as err:  # noqa: BLE001 - any failure: no such run, no model, no store
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise TrackingError(f"cannot fetch the model of run {run_id!r} from {tracking_uri}: {first[:300]}") from err


def recommend(loaded: LoadedModel, user_id: int, k: int) -> list[tuple[int, float, str]]:
    """Top-``k`` (original item id, score, name) among items the user has not rated."""
    data = loaded.data
    pos = int(np.searchsorted(data.user_ids, user_id))
    if pos >= len(data.user_ids) or data.user_ids[pos] != user_id:
        raise ConfigError(f"user {user_id} is not in dataset {data.name}")
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    scores = loaded.model.score_items(np.array([pos]))[0].astype(np.float64)
    rated = data.matrix.indices[data.matrix.indptr[pos] : data.matrix.indptr[pos + 1]]
    scores[rated] = -np.inf
    k = min(k, int(np.isfinite(scores).sum()))
    top = np.argpartition(-scores, k - 1)[:k] if k else np.array([], int)
    top = top[np.lexsort((top, -scores[top]))]  # by score, then item index for ties
    return [(int(data.item_ids[j]), float(scores[j]), data.item_names.get(int(data.item_ids[j]), "")) for j in top]


def main(argv: list[str] | None = None) -> None:
    """``ncae-recommend run_id=<id> user=<original user id> k=<int>`` (also tracking_uri=, data_dir=)."""
    import sys

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ncae_exp.errors import NcaeError
    from ncae_exp.tracking.mlflow_tracker import resolve_tracking_uri

    args = sys.argv[1:] if argv is None else argv
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
        with tempfile.TemporaryDirectory() as tmp:
            loaded = rebuild(download_model(opts["run_id"], uri, Path(tmp)), opts.get("data_dir"))
        for rank, (item, score, name) in enumerate(recommend(loaded, user, k), start=1):
            print(f"{rank}\t{item}\t{score:.4f}\t{name}")
    except NcaeError as err:
        print(f"ncae-recommend: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
