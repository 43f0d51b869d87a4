"""The Optuna sampler of hparams_search/: trial 0 is the config's own values, then TPE."""

import optuna
import pytest
from omegaconf import OmegaConf

from ncae_exp.hparams_search import _SWEEP_CONFIG, DefaultsFirstSampler, SweepConfigCallback

SPACE = {
    "model.l2": optuna.distributions.LogUniformDistribution(1e-4, 1.0),
    "model.hidden": optuna.distributions.CategoricalDistribution(["[100]", "[500]", "[500,500]"]),
    "model.based": optuna.distributions.CategoricalDistribution(["item", "user"]),
    "model.factors": optuna.distributions.IntUniformDistribution(5, 50),
}


def _trials(sampler, n):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=sampler)
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append({name: trial._suggest(name, dist) for name, dist in SPACE.items()})
        study.tell(trial, 1.0 / (1 + len(out)))
    return out


def test_trial_zero_is_the_config_and_later_trials_search():
    first = {"model.l2": 0.01, "model.hidden": [500, 500], "model.based": "user", "model.factors": 20}
    trials = _trials(DefaultsFirstSampler(first=first, seed=0, n_startup_trials=2), 4)
    assert trials[0] == {"model.l2": 0.01, "model.hidden": "[500,500]", "model.based": "user", "model.factors": 20}
    assert len({t["model.l2"] for t in trials}) == 4, "the other trials are TPE's"


def test_values_outside_the_space_are_left_to_tpe():
    first = {"model.l2": 50.0, "model.hidden": [64], "model.based": "item"}
    (zero,) = _trials(DefaultsFirstSampler(first=first, seed=0), 1)
    assert 1e-4 <= zero["model.l2"] <= 1.0 and zero["model.hidden"] in ("[100]", "[500]", "[500,500]")
    assert zero["model.based"] == "item"


def test_the_sweep_callback_hands_over_the_composed_config():
    cfg = OmegaConf.create({"l2": 0.02, "model": {"l2": "${l2}", "hidden": [300]},
                            "hydra": {"run": {"dir": "${now:%H}"}}})
    SweepConfigCallback().on_multirun_start(cfg)
    assert _SWEEP_CONFIG["model.l2"] == 0.02 and _SWEEP_CONFIG["model.hidden"] == [300]  # resolved
    assert not any(k.startswith("hydra") for k in _SWEEP_CONFIG)
    (zero,) = _trials(DefaultsFirstSampler(seed=0), 1)
    assert zero["model.l2"] == pytest.approx(0.02)
