"""A trained model as an MLflow model (pyfunc flavour): the folder every run logs as ``model/``.

The folder holds what scoring needs without the raw dataset, under ``artifacts/recommender/``:

- ``weights.npz`` + ``config.yaml`` (``models/io.py``: the config's ``model._target_``
  rebuilds any registered model);
- ``serving.npz``: the original user and item ids, the matrix the model was trained on (its
  input vectors at inference; training ∪ validation for a ``retrain=true`` run) and the
  other rated pairs of the dataset (validation, test), which are never recommended;
- ``item_names.json``: titles or names, where the dataset has them.

Loading is the serving layer's (``serving/pyfunc.py``, named here by its file: MLflow's
"models from code"), so nothing below ``serving/`` imports it. Writing costs about a copy of
the weights: the pip requirements and the signature are given, not inferred (inferring loads
the model again).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from omegaconf import DictConfig

from ncae_exp.data.interactions import Interactions, RatingScale
from ncae_exp.errors import ConfigError
from ncae_exp.models.base import Recommender
from ncae_exp.models.io import save_model

ARTIFACT = "recommender"  # the artifact folder's name (context.artifacts key)
SERVING, NAMES = "serving.npz", "item_names.json"
# The loader MLflow runs ("models from code"): the serving layer's, named by its path.
LOADER_CODE = Path(__file__).resolve().parents[1] / "serving" / "pyfunc_code.py"
# Pinned to this environment, so `mlflow models serve --env-manager local` finds no mismatch;
# ncae-exp itself provides the loader code and the model classes.
REQUIREMENTS = ("ncae-exp", "mlflow", "tensorflow", "numpy", "scipy", "pandas", "hydra-core", "omegaconf",
                "implicit")
DEFAULT_K = 10
PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


@dataclass
class ServingData:
    """What scoring needs besides the parameters: ids, names, the training matrix, the
    rated pairs to exclude, the rating scale (None for interactions)."""

    dataset: str
    user_ids: np.ndarray
    item_ids: np.ndarray
    train: sp.csr_matrix
    seen: sp.csr_matrix  # every rated pair of the dataset (training, validation, test)
    rating_scale: RatingScale | None
    item_names: dict[int, str]


def save_serving_data(folder: Path, data: Interactions, train: sp.csr_matrix) -> None:
    """``serving.npz`` and ``item_names.json`` in ``folder`` (uncompressed: fast to write)."""
    train = sp.csr_matrix(train, dtype=np.float32)
    train.sort_indices()
    # The dataset's other rated pairs (held out): train + these = every rated pair.
    heldout = (sp.csr_matrix(data.matrix != 0, dtype=np.int8) - sp.csr_matrix(train != 0, dtype=np.int8)) > 0
    heldout = sp.csr_matrix(heldout, dtype=np.int8)
    scale = [] if data.rating_scale is None else [data.rating_scale.low, data.rating_scale.high]
    np.savez(folder / SERVING, dataset=np.array(data.name), user_ids=data.user_ids, item_ids=data.item_ids,
             train_indptr=train.indptr, train_indices=train.indices, train_data=train.data,
             heldout_indptr=heldout.indptr, heldout_indices=heldout.indices, rating_scale=np.array(scale, float))
    (folder / NAMES).write_text(json.dumps({str(k): v for k, v in data.item_names.items()}, ensure_ascii=False))


def load_serving_data(folder: Path) -> ServingData:
    try:
        with np.load(Path(folder) / SERVING) as z:
            shape = (len(z["user_ids"]), len(z["item_ids"]))
            train = sp.csr_matrix((z["train_data"], z["train_indices"], z["train_indptr"]), shape=shape)
            held = sp.csr_matrix((np.ones(len(z["heldout_indices"]), np.int8), z["heldout_indices"],
                                  z["heldout_indptr"]), shape=shape)
            scale = z["rating_scale"]
            out = ServingData(str(z["dataset"]), z["user_ids"], z["item_ids"], train,
                              sp.csr_matrix((train != 0) + (held != 0)),
                              RatingScale(float(scale[0]), float(scale[1])) if len(scale) else None, {})
        out.item_names = {int(k): v for k, v in json.loads((Path(folder) / NAMES).read_text()).items()}
        return out
    except (OSError, KeyError, ValueError) as err:
        raise ConfigError(f"cannot read the serving data in {folder}: {err}") from err


def write_mlflow_model(dest: Path, model: Recommender, cfg: DictConfig, data: Interactions,
                       train: sp.csr_matrix) -> float:
    """Write the MLflow model folder ``dest`` (replacing an older one); returns the seconds
    it took."""
    import mlflow

    start = time.perf_counter()
    dest = Path(dest)
    with tempfile.TemporaryDirectory(prefix=".model-", dir=dest.parent) as tmp:
        stage = save_model(model, cfg, Path(tmp) / ARTIFACT)
        save_serving_data(stage, data, train)
        built = Path(tmp) / "mlflow"
        first = int(data.user_ids[0]) if len(data.user_ids) else 0
        with _quiet_mlflow():
            mlflow.pyfunc.save_model(
                path=str(built), python_model=str(LOADER_CODE), artifacts={ARTIFACT: str(stage)},
                signature=signature(), input_example=_example(first), pip_requirements=pinned_requirements(),
                metadata={"ncae_model": str(cfg.model.name), "dataset": data.name,
                          "protocol": str(cfg.protocol.name)},
            )
        if dest.exists():  # a resumed or rerun job: the new model replaces the old one
            shutil.rmtree(dest)
        built.rename(dest)
    return time.perf_counter() - start


@contextmanager
def _quiet_mlflow():
    """No progress bar (copying the artifacts is a "download") nor INFO line from MLflow."""
    saved_env = os.environ.get(PROGRESS_BAR)
    os.environ[PROGRESS_BAR] = "false"
    logger = logging.getLogger("mlflow.pyfunc")
    saved_level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(saved_level)
        if saved_env is None:
            os.environ.pop(PROGRESS_BAR, None)
        else:
            os.environ[PROGRESS_BAR] = saved_env


def signature():
    """Input: ``user`` (a known user's original id) or ``items`` (+ ``ratings``: a new user,
    folded in), optional ``k``; output: one row per recommendation."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, Schema

    inputs = Schema([ColSpec("long", "user", required=False), ColSpec("long", "k", required=False),
                     ColSpec(Array("long"), "items", required=False),
                     ColSpec(Array("double"), "ratings", required=False)])
    outputs = Schema([ColSpec("long", "user"), ColSpec("long", "rank"), ColSpec("long", "item"),
                      ColSpec("double", "score")])
    return ModelSignature(inputs=inputs, outputs=outputs)


def _example(user: int):
    import pandas as pd

    return pd.DataFrame({"user": [user], "k": [DEFAULT_K]})


def pinned_requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in REQUIREMENTS:
        try:
            out.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            out.append(name)
    return out


def default_register_name(cfg: DictConfig, dataset: str) -> str:
    """``ncae-<model>-<protocol>-<dataset>``, e.g. ``ncae-ncae-explicit-ml-100k``."""
    return f"ncae-{cfg.model.name}-{cfg.protocol.name}-{dataset}"
