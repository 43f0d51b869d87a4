"""``validate_config``: every value of a composed config, checked right after composition —
before any data is read, before an MLflow run exists, before TensorFlow is configured.

In order (the first mistake is reported, as one line):

1. keys and types everywhere: the top level and the fixed nodes (trainer, mlflow, paths,
   dataset, split) against config/schema.py, the object nodes (protocol, pretrain, model and
   its feedback) against their classes' constructors — so ``+model.hiden=[10]`` is refused
   with "did you mean model.hidden?" instead of training with the default;
2. values: the schema's ranges, the dataset's name (and the synthetic generator's sizes), the
   split's values for the protocol (protocols' ``check_split``), ``retrain``/``repeats``/
   ``compare_to``, the model against the protocol and the pre-training;
3. the protocol and the model are built: their constructors check their own settings.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ncae_exp.config.checks import check_dataclass, check_keys, check_target, check_value, join
from ncae_exp.config.schema import FIXED, GROUPS, SPLITS, DatasetConf, ModelPublishConf, RunConf
from ncae_exp.errors import ConfigError, NcaeError


_PUBLISH_KEYS = {f.name for f in dataclasses.fields(ModelPublishConf)}


def validate_config(cfg: DictConfig, what: str | None = None) -> None:
    """Raise a one-line :class:`NcaeError` for the first bad key or value of ``cfg`` (a
    composed ``ncae-run`` config, without its ``hydra`` node); ``what`` prefixes the
    message (e.g. ``compare_to=biasedmf``)."""
    try:
        _validate(resolved_tree(cfg))
    except NcaeError as err:
        if what:
            raise type(err)(f"{what}: {err}") from None
        raise


def resolved_tree(cfg: DictConfig) -> dict:
    from omegaconf.errors import OmegaConfBaseException

    try:
        tree = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        raise ConfigError(f"cannot resolve the config: {' '.join(str(err).split())}") from None
    tree.pop("hydra", None)
    return tree


def _validate(tree: dict) -> None:
    hints = typing.get_type_hints(RunConf)
    fields = {f.name: f for f in dataclasses.fields(RunConf)}
    check_keys(tree, "", [*fields, *GROUPS])
    for key in GROUPS:
        if key not in tree:
            raise ConfigError(f"missing config group {key}")
    for name, f in fields.items():
        if name in tree:
            check_value(tree[name], hints[name], name, f.metadata)
    for name, schema in FIXED.items():
        check_dataclass(tree[name], schema, name)
    spec = _check_dataset(tree["dataset"])
    split = _check_split(tree["split"])
    check_target(tree["protocol"], "protocol")

    from ncae_exp.models.registry import available_models
    from ncae_exp.protocols.registry import build_protocol
    from ncae_exp.protocols.selection import check_settings

    check_settings(bool(tree.get("retrain", False)), int(tree.get("repeats", 1)), tree.get("compare_to"), split)
    compare_to = tree.get("compare_to")
    if compare_to is not None and str(compare_to) not in available_models():
        raise ConfigError(f"compare_to={compare_to}: unknown model {str(compare_to)!r}; "
                          f"choose one of: {', '.join(available_models())}")
    protocol = build_protocol(OmegaConf.create(tree["protocol"]))
    protocol.check_dataset(spec.name, spec.implicit)
    protocol.check_split(split, spec.name)

    from ncae_exp.training.device import import_tensorflow_quietly

    import_tensorflow_quietly()  # NCAE's classes import it: without its start-up lines
    # The publishing keys (model.register, …) are the schema's, not the model class's.
    publish = {k: tree["model"].pop(k) for k in [f.name for f in dataclasses.fields(ModelPublishConf)]
               if k in tree["model"]}
    check_dataclass(publish, ModelPublishConf, "model", optional=_PUBLISH_KEYS)
    if publish.get("register") and not tree["mlflow"]["enabled"]:
        raise ConfigError("model.register=true registers the run's model in MLflow: set mlflow.enabled=true")
    check_target(tree["pretrain"], "pretrain")
    check_target(tree["model"], "model", also=_PUBLISH_KEYS)  # so +model.regster=… suggests register
    _check_model(tree, protocol.name)


def _check_dataset(node: Any):
    """The dataset's keys, its name (data/registry.py) and, for ``synthetic``, the
    generator's arguments and sizes; returns its registry entry."""
    from ncae_exp.data.registry import get_spec

    if not isinstance(node, Mapping) or "name" not in node:
        raise ConfigError(f"dataset must be a group of settings with a name, got {node!r}")
    spec = get_spec(node["name"])
    if spec.parser is not None:
        check_dataclass(node, DatasetConf, "dataset", optional=("url",))
        return spec
    import inspect

    from ncae_exp.data.synthetic import check_settings, generate_synthetic

    base = typing.get_type_hints(DatasetConf)
    generator = typing.get_type_hints(generate_synthetic)
    known = {**base, **{k: generator[k] for k in inspect.signature(generate_synthetic).parameters}}
    check_keys(node, "dataset", known)
    for key, value in node.items():
        check_value(value, known[key], join("dataset", key))
    check_settings(**{k: v for k, v in node.items() if k not in base})
    return spec


def _check_split(node: Any) -> Mapping:
    """The split's keys and types for its kind; its values are the protocol's to check."""
    kind = node.get("kind") if isinstance(node, Mapping) else None
    if kind not in SPLITS:
        raise ConfigError(f"split.kind must be one of {', '.join(SPLITS)}, got {kind!r}")
    check_dataclass(node, SPLITS[kind], "split")
    return node


def _check_model(tree: dict, protocol: str) -> None:
    """The model against the protocol and the pre-training, then built (its constructor
    checks its settings), with ``trainer.batch_size`` in place of its own when set."""
    from ncae_exp.models.registry import build_model, check_pretrain, check_protocol, with_batch_size

    model = OmegaConf.create(tree["model"])
    check_protocol(model, protocol)
    check_pretrain(model, str(tree["pretrain"].get("name", "none")))
    with_batch_size(model, tree["trainer"].get("batch_size"))
    from ncae_exp.config_utils import instantiate_node

    instantiate_node(OmegaConf.create(tree["pretrain"]), "pretrain")
    build_model(model)
