"""Small helpers on the resolved Hydra config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'model': {'hidden': [500]}} → {'model.hidden': [500]} (lists stay values)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def resolved_params(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as MLflow params with dotted keys."""
    return flatten(OmegaConf.to_container(cfg, resolve=True))
