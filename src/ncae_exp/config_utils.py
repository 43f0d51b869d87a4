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


# Overrides that describe the main model (or its search), not a model it is compared with.
_MODEL_KEYS = ("model", "hparams_search", "compare_to", "compare_overrides", "protocol_model")


def compare_overrides(task_overrides: list[str], compare_to: str, extra: list[str] | None = None) -> list[str]:
    """The overrides that compose ``compare_to``'s config: this command's own without the main
    model's (``model=…``, ``model.*``, ``hparams_search=…``), then ``model=<compare_to>`` and
    ``extra`` (the compared model's settings, ``compare_overrides``)."""

    def about_model(override: str) -> bool:
        key = override.split("=", 1)[0].lstrip("+~")
        return key.split(".", 1)[0].split("@", 1)[0] in _MODEL_KEYS

    kept = [str(o) for o in task_overrides if not about_model(str(o))]
    return kept + [f"model={compare_to}"] + [str(o) for o in extra or []]


def compose_config(config_name: str, overrides: list[str], what: str) -> DictConfig:
    """Hydra's compose inside a running app (a job or a sweep callback); a bad override is a
    one-line ConfigError naming ``what`` it was for."""
    from hydra import compose
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from ncae_exp.errors import ConfigError

    try:
        return compose(config_name=config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(f"{what}: {unknown_option(err) or ' '.join(str(err).split())}") from None


def unknown_option(err: BaseException) -> str | None:
    """Hydra's "missing config file" error as one line with the valid choices, its "could not
    override" error as an unknown key with the nearest valid one, else None."""
    missing, options = getattr(err, "missing_cfg_file", None), getattr(err, "options", None)
    if missing and options is not None and "/" in str(missing):
        group, name = str(missing).rsplit("/", 1)
        return f"unknown {group} {name!r}; choose one of: {', '.join(sorted(options))}"
    return _unknown_override(err)


def _unknown_override(err: BaseException) -> str | None:
    """``model.hiden=[10]`` fails in Hydra with advice to add the key with ``+``; adding it
    would not change the model, so say what the key should have been instead."""
    import re

    text = str(err)
    added = re.match(r"Could not append to config\. An item is already at '([^']+)'", text)
    if added:
        return f"{added.group(1)} already exists: set it without the + ({added.group(1)}=...)"
    wrote = re.match(r"Could not override '([^']+)'", text)
    cause = err.__cause__
    parent, full_key = getattr(cause, "parent_node", None), getattr(cause, "full_key", None)
    if not wrote or not full_key or parent is None or not hasattr(parent, "keys"):
        return None
    prefix, _, missing = str(full_key).rpartition(".")
    if not wrote.group(1).startswith(str(full_key)):
        return None
    rest = wrote.group(1)[len(str(full_key)):]
    return unknown_key_message(prefix, missing, [str(k) for k in parent.keys()], rest)


def unknown_key_message(prefix: str, key: str, known: list[str], rest: str = "") -> str:
    """``unknown key model.hiden; did you mean model.hidden?`` (difflib's nearest of
    ``known``), or the valid keys when none is near; ``rest``: what followed the key."""
    import difflib

    path = f"{prefix}.{key}" if prefix else key
    known = sorted({k for k in known if k != "hydra" and not k.startswith("_")})
    near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if near:
        suggestion = f"{prefix}.{near[0]}" if prefix else near[0]
        return f"unknown key {path}{rest}; did you mean {suggestion}{rest}?"
    where = prefix or "the config"
    return f"unknown key {path}{rest}; {where} has: {', '.join(known)}"
