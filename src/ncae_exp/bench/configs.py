"""The benchmark's models come from the project's configs, as ``ncae-run`` builds them:
Hydra compose of ``ncae_exp.conf`` with command-line style overrides, ``pipeline.resolve``,
then ``models.registry.build_model``. No settings are repeated here."""

from __future__ import annotations

from collections.abc import Sequence

from omegaconf import DictConfig


def compose_config(overrides: Sequence[str]) -> DictConfig:
    """The resolved job config ``ncae-run <overrides>`` would run."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from ncae_exp.pipeline import resolve

    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_module(config_module="ncae_exp.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    return resolve(cfg)


def build(overrides: Sequence[str]):
    """``(model, resolved config)`` for ``overrides``; the model is not prepared yet."""
    from ncae_exp.models.registry import build_model

    cfg = compose_config(overrides)
    return build_model(cfg.model), cfg
