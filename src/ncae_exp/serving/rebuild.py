"""Rebuild a saved model (``models/io.py``) with the data it was trained on.

Rebuilding loads the same dataset (from ``paths.data_dir``), recomputes the same seeded
split through the run's protocol, builds the model from its ``_target_`` and restores the
weights — so nothing but the parameters has to be stored, and the data never leaves the
user's disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import scipy.sparse as sp
from omegaconf import DictConfig

from ncae_exp.data.interactions import Interactions
from ncae_exp.errors import ConfigError, TrackingError, connection_reason
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


def check_model_run(run_id: str, tracking_uri: str, retry: str) -> None:
    """Refuse, saying what to do instead, a run without a model to rebuild: an unknown id, a
    sweep's parent (pointing to its best child, tag ``ncae.best_child``), a run that ended
    before saving one. ``retry``: the command to suggest, ``{run_id}`` where the id goes."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from ncae_exp.tracking.mlflow_tracker import check_store, shown_uri
    from ncae_exp.tracking.sweep import SWEEP_TAG

    shown, db = shown_uri(tracking_uri), urlparse(tracking_uri).path
    if tracking_uri.startswith("sqlite:///") and not Path(db).is_file():  # do not create an empty store
        raise TrackingError(f"no MLflow store at {Path(db).resolve()}: run ncae-recommend in the folder where"
                            " ncae-run ran, or pass tracking_uri=<uri>")
    check_store(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    try:
        run = client.get_run(run_id)
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise TrackingError(f"cannot read run {run_id!r} from {shown} ({connection_reason(err)})") from err
        raise TrackingError(f"no run {run_id!r} in MLflow store {shown}; run ids are in the MLflow UI"
                            " (make ui) and in ncae-run's log ('logged to MLflow run <id>')") from None
    if client.list_artifacts(run_id, "model"):
        return
    tags = run.data.tags
    if tags.get(SWEEP_TAG) == "true":
        best = tags.get("ncae.best_child")
        if best:
            raise ConfigError(f"run {run_id} is a sweep parent (it has no model); its best child is {best}:"
                              f" {retry.replace('{run_id}', best)}")
        raise ConfigError(f"run {run_id} is a sweep parent (it has no model) without a best child yet;"
                          " pick one of its child runs in the MLflow UI (make ui)")
    raise ConfigError(f"run {run_id} ({run.info.status}) has no logged model (model/); use a run that finished")


def download_model(run_id: str, tracking_uri: str, dest: Path) -> Path:
    """The ``model/`` artifact of an MLflow run, downloaded into ``dest``."""
    import mlflow

    try:
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model", dst_path=str(dest),
                                                        tracking_uri=tracking_uri))
    except Exception as err:  # noqa: BLE001 - any failure: no such run, no model, no store
        from ncae_exp.tracking.mlflow_tracker import shown_uri

        raise TrackingError(f"cannot fetch the model of run {run_id!r} from {shown_uri(tracking_uri)}"
                            f" ({connection_reason(err)})") from err
