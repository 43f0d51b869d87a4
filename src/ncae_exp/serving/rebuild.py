"""Rebuild a saved model (``models/io.py``) with the data it was trained on.

Rebuilding loads the same dataset (from ``paths.data_dir``), recomputes the same seeded
split through the run's protocol, builds the model from its ``_target_`` and restores the
weights — so nothing but the parameters has to be stored, and the data never leaves the
user's disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import scipy.sparse as sp
from omegaconf import DictConfig

from ncae_exp.data.interactions import Interactions
from ncae_exp.errors import TrackingError
from ncae_exp.models.base import Recommender
from ncae_exp.models.io import WEIGHTS, load_model_config, load_state


@dataclass
class LoadedModel:
    model: Recommender
    data: Interactions
    train: sp.csr_matrix  # what the model was fit on (its input vectors at inference)
    cfg: DictConfig


def rebuild(model_dir: Path, data_dir: str | None = None) -> LoadedModel:
    """The model saved in ``model_dir``, ready to score, with its dataset and training matrix."""
    from ncae_exp.data.loader import load_dataset
    from ncae_exp.models.registry import build_model
    from ncae_exp.protocols.registry import build_protocol
    from ncae_exp.training.device import configure_device

    cfg = load_model_config(model_dir)
    if data_dir is not None:
        cfg.paths.data_dir = data_dir
    configure_device(str(cfg.trainer.device))
    data_path = Path(str(cfg.paths.data_dir))
    data = load_dataset(cfg.dataset, data_path)
    # A run with retrain=true saves the model retrained on training + validation (base seed).
    merge = bool(cfg.get("retrain", False))
    prepared = build_protocol(cfg.protocol).split(data, cfg.split, int(cfg.seed), data_path, merge_validation=merge)
    model = build_model(cfg.model)
    model.prepare(prepared.train, prepared.rating_scale)
    model.set_state(load_state(Path(model_dir) / WEIGHTS))
    return LoadedModel(model, data, prepared.train, cfg)


def download_model(run_id: str, tracking_uri: str, dest: Path) -> Path:
    """The ``model/`` artifact of an MLflow run, downloaded into ``dest``."""
    import mlflow

    try:
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model", dst_path=str(dest),
                                                        tracking_uri=tracking_uri))
    except Exception as err:  # noqa: BLE001 - any failure: no such run, no model, no store
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise TrackingError(f"cannot fetch the model of run {run_id!r} from {tracking_uri}: {first[:300]}") from err
