"""Model name (the ``model`` config group) → constructor."""

from __future__ import annotations

from collections.abc import Callable

from omegaconf import DictConfig

from ncae_exp.errors import ConfigError
from ncae_exp.models.base import Recommender


def _ncae(
    model_cfg: DictConfig, trainer_cfg: DictConfig, pretrain_cfg: DictConfig, seed: int, protocol: str
) -> Recommender:
    from ncae_exp.models.ncae.implicit import NCAEImplicit
    from ncae_exp.models.ncae.model import NCAE
    from ncae_exp.models.ncae.pretrain import PretrainSchedule

    schedule = PretrainSchedule.from_config(pretrain_cfg)
    common = dict(
        hidden=list(model_cfg.hidden),
        based=str(model_cfg.based),
        dropout=float(model_cfg.dropout),
        l2=float(model_cfg.l2),
        learning_rate=float(model_cfg.learning_rate),
        batch_size=int(trainer_cfg.batch_size),
        predict_batch_size=int(trainer_cfg.predict_batch_size),
        seed=seed,
    )
    if protocol == "implicit":
        if schedule is not None:
            raise ConfigError("layer-wise pre-training is for explicit ratings; use pretrain=none with protocol=implicit")
        imp = model_cfg.implicit
        return NCAEImplicit(
            **common,
            output=str(imp.output),
            loss_path=str(imp.loss_path),
            weighting=str(imp.weighting),
            c0=float(imp.c0),
            omega=float(imp.omega),
            uniform_c=float(imp.uniform_c),
            augment_epsilon=float(imp.augment_epsilon),
            augment_p=float(imp.augment_p),
        )
    return NCAE(**common, alpha=float(model_cfg.alpha), beta=float(model_cfg.beta), pretrain=schedule)


MODELS: dict[str, Callable[..., Recommender]] = {"ncae": _ncae}


def build_model(
    model_cfg: DictConfig, trainer_cfg: DictConfig, pretrain_cfg: DictConfig, seed: int, protocol: str
) -> Recommender:
    """The model named by ``model_cfg.name``, set up for ``protocol`` (explicit | implicit)."""
    name = str(model_cfg.name)
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}")
    try:
        return MODELS[name](model_cfg, trainer_cfg, pretrain_cfg, seed, protocol)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"bad model/trainer setting for {name}: {err}") from err
