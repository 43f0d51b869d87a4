"""The Optuna sampler of ``conf/hparams_search/*.yaml``: the first trial is the composed
config's own values (the model's defaults, or what the command line set), then TPE.

A search of 20 trials over a wide space (orders of magnitude around the defaults, so it holds
the optimum on data unlike ours) can miss the region the defaults sit in; starting from them
means the search never ends worse on validation than the defaults it was meant to improve.
A first value outside the space (or not one of a choice's options) is left to TPE. The values
come from the sweep's own config: Hydra's sweeper passes the sampler only TPE's settings, so
a Hydra callback (:class:`SweepConfigCallback`, in conf/config.yaml) hands the sampler the
sweep's composed config when the sweep starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution, CategoricalDistribution


def _as_choice(value: Any) -> Any:
    """A config value as the sweeper's choice strings spell it: ``[500, 500]`` → ``"[500,500]"``."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(str(_as_choice(v)) for v in value) + "]"
    return value


_SWEEP_CONFIG: dict[str, Any] = {}  # the sweep's composed config, flattened (SweepConfigCallback)


class SweepConfigCallback(Callback):
    """Hands the sweep's composed config to the sampler: Hydra's Optuna sweeper gives a sampler
    only TPE's settings, and callbacks see the config before the first trial is drawn."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from ncae_exp.config_utils import flatten

        task = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
        _SWEEP_CONFIG.clear()
        _SWEEP_CONFIG.update(flatten(OmegaConf.to_container(task, resolve=True)))


class DefaultsFirstSampler(optuna.samplers.BaseSampler):
    """``first``: {searched key: value} for trial 0 (None: the sweep's composed config, from
    :class:`SweepConfigCallback`); the other arguments go to :class:`optuna.samplers.TPESampler`."""

    def __init__(self, first: Mapping[str, Any] | None = None, **tpe: Any):
        self.first = None if first is None else {str(k): _as_choice(v) for k, v in first.items()}
        self._tpe = optuna.samplers.TPESampler(**tpe)

    def _first_value(self, name: str, distribution: BaseDistribution) -> tuple[bool, Any]:
        if self.first is None:
            self.first = {k: _as_choice(v) for k, v in _SWEEP_CONFIG.items()}
        if name not in self.first:
            return False, None
        value = self.first[name]
        if isinstance(distribution, CategoricalDistribution):
            matches = [c for c in distribution.choices if c == value or str(c) == str(value)]
            return (True, matches[0]) if matches else (False, None)
        try:
            value = float(value) if not isinstance(value, int) else value
            return (True, value) if distribution._contains(distribution.to_internal_repr(value)) else (False, None)
        except (TypeError, ValueError):
            return False, None

    def infer_relative_search_space(self, study, trial):
        return self._tpe.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        if trial.number == 0:
            return {}
        return self._tpe.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        if trial.number == 0:
            found, value = self._first_value(param_name, param_distribution)
            if found:
                return value
        return self._tpe.sample_independent(study, trial, param_name, param_distribution)

    def reseed_rng(self) -> None:
        self._tpe.reseed_rng()

    def after_trial(self, study, trial, state, values) -> None:
        self._tpe.after_trial(study, trial, state, values)
