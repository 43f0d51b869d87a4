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


def instantiate_node(node: DictConfig, what: str):
    """Hydra-instantiate a resolved config node with a ``_target_`` (a model, a protocol),
    passing every key but ``name`` (the node's label in tags) as an argument. A setting the
    class rejects surfaces as the class's own one-line error."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from ncae_exp.errors import ConfigError, NcaeError

    if not node.get("_target_"):
        raise ConfigError(f"{what} config {node.get('name')!r} has no _target_ (the class to build)")
    args = OmegaConf.masked_copy(node, [k for k in node if k != "name"])
    try:
        return instantiate(args, _convert_="all")
    except InstantiationException as err:
        cause = err.__cause__
        while cause is not None and not isinstance(cause, NcaeError) and cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, NcaeError):
            raise cause from None
        text = " ".join(str(err.__cause__ or err).split())
        raise ConfigError(f"bad setting for {what} {node.get('name')!r}: {text}") from err
