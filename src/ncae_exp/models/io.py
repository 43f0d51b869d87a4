"""Saving and loading a model's parameters, beside the config that rebuilds it.

A saved model is a folder: ``weights.npz`` (the parameters from ``get_state``) and
``config.yaml`` (the run's resolved config; its ``model`` node has the ``_target_`` that
rebuilds the model). Serving and, later, checkpoints build on this; nothing here knows
about MLflow or data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from ncae_exp.atomic import replace_atomically
from ncae_exp.errors import ConfigError
from ncae_exp.models.base import Recommender

WEIGHTS = "weights.npz"
CONFIG = "config.yaml"


def save_state(state: dict[str, np.ndarray], path: Path) -> Path:
    """Write ``state`` to ``path`` (npz) atomically: a reader never sees half a file."""
    path = Path(path)
    with replace_atomically(path, "wb", private=True) as fh:  # owner-only, as it always was
        # npz keys cannot hold "/": keep the variable paths in a parallel array
        np.savez(fh, names=np.array(list(state)), **{f"v{i}": v for i, v in enumerate(state.values())})
    return path


def load_state(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as npz:
            return {str(name): npz[f"v{i}"] for i, name in enumerate(npz["names"])}
    except (OSError, KeyError, ValueError) as err:
        raise ConfigError(f"cannot read model weights {path}: {err}") from err


def save_model(model: Recommender, cfg: DictConfig, folder: Path) -> Path:
    """``folder/weights.npz`` + ``folder/config.yaml``; returns ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_state(model.get_state(), folder / WEIGHTS)
    (folder / CONFIG).write_text(OmegaConf.to_yaml(cfg, resolve=True))
    return folder


def load_model_config(folder: Path) -> DictConfig:
    """The config saved with a model; refuses one written before models carried ``_target_``."""
    cfg = OmegaConf.load(Path(folder) / CONFIG)
    if not OmegaConf.select(cfg, "model._target_"):
        raise ConfigError(
            f"the model in {folder} was saved by an older ncae-exp (its config has no model._target_); retrain it"
        )
    return cfg
