"""Model name (the ``model`` config group) → constructor."""

from __future__ import annotations

from collections.abc import Callable

from omegaconf import DictConfig

from ncae_exp.errors import ConfigError
from ncae_exp.models.base import Recommender


def _ncae(model_cfg: DictConfig, trainer_cfg: DictConfig, pretrain_cfg: DictConfig, seed: int) -> Recommender:
    from ncae_exp.models.ncae.model import NCAE
    from ncae_exp.models.ncae.pretrain import PretrainSchedule

    return NCAE(
        hidden=list(model_cfg.hidden),
        based=str(model_cfg.based),
        dropout=float(model_cfg.dropout),
        alpha=float(model_cfg.alpha),
        beta=float(model_cfg.beta),
        l2=float(model_cfg.l2),
        learning_rate=float(model_cfg.learning_rate),
        batch_size=int(trainer_cfg.batch_size),
        predict_batch_size=int(trainer_cfg.predict_batch_size),
        seed=seed,
        pretrain=PretrainSchedule.from_config(pretrain_cfg),
    )


MODELS: dict[str, Callable[[DictConfig, DictConfig, DictConfig, int], Recommender]] = {"ncae": _ncae}


def build_model(model_cfg: DictConfig, trainer_cfg: DictConfig, pretrain_cfg: DictConfig, seed: int) -> Recommender:
    name = str(model_cfg.name)
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}")
    try:
        return MODELS[name](model_cfg, trainer_cfg, pretrain_cfg, seed)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"bad model/trainer setting for {name}: {err}") from err
