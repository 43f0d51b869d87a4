"""The models the ``model`` config group offers, and building one from its config.

A model is registered by its file ``conf/model/<name>.yaml``: ``_target_`` names the class,
every other key (except ``name``, the model's label in tags and reports) is a constructor
argument. Building is Hydra instantiation; nothing here lists models by hand.
"""

from __future__ import annotations

from pathlib import Path

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from ncae_exp.config_utils import instantiate_node
from ncae_exp.errors import ConfigError
from ncae_exp.models.base import Recommender

MODEL_CONF_DIR = Path(__file__).resolve().parents[1] / "conf" / "model"
# Keys of every model node that say what to do with the trained model (register it in the
# MLflow Model Registry, under which name), not constructor arguments: declared once in
# conf/config.yaml and config/schema.py (ModelPublishConf), stripped before building.
PUBLISH_KEYS = ("register", "register_name")


def available_models() -> list[str]:
    """Every choice of the ``model`` config group."""
    return sorted(p.stem for p in MODEL_CONF_DIR.glob("*.yaml"))


def model_class(model_cfg: DictConfig) -> type[Recommender]:
    target = model_cfg.get("_target_")
    if not target:
        raise ConfigError(f"model config {model_cfg.get('name')!r} has no _target_ (the model's class)")
    try:
        cls = get_class(str(target))
    except Exception as err:  # noqa: BLE001 - any import failure is a config mistake here
        raise ConfigError(f"model _target_ {target!r} cannot be imported: {err}") from err
    if not (isinstance(cls, type) and issubclass(cls, Recommender)):
        raise ConfigError(f"model _target_ {target!r} is not a Recommender")
    return cls


def check_protocol(model_cfg: DictConfig, protocol: str) -> None:
    """Refuse a model on a protocol it cannot run (e.g. an implicit-only model on ratings)."""
    cls = model_class(model_cfg)
    if protocol not in cls.protocols:
        raise ConfigError(
            f"model {model_cfg.get('name')!r} runs under protocol={'|'.join(cls.protocols)}, not protocol={protocol}"
        )


def check_pretrain(model_cfg: DictConfig, pretrain: str) -> None:
    """``pretrain=<schedule>`` is NCAE's: refuse it for a model without pre-training."""
    if pretrain != "none" and "pretrain" not in model_cfg:
        raise ConfigError(f"pretrain={pretrain} applies to NCAE only; use pretrain=none with model={model_cfg.get('name')}")


def with_batch_size(model_cfg: DictConfig, batch_size: int | None) -> DictConfig:
    """``trainer.batch_size``, when set, written into the model's own ``batch_size``."""
    if batch_size is not None:
        if "batch_size" not in model_cfg:
            raise ConfigError(f"trainer.batch_size: model {model_cfg.get('name')!r} has no mini-batches")
        model_cfg.batch_size = batch_size
    return model_cfg


def build_model(model_cfg: DictConfig) -> Recommender:
    """The model described by a resolved ``model`` config node."""
    model_class(model_cfg)
    return instantiate_node(OmegaConf.masked_copy(model_cfg, [k for k in model_cfg if k not in PUBLISH_KEYS]), "model")
