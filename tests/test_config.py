"""Every option of every config group composes and resolves, from the installed package."""

from importlib import resources

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

CONF = resources.files("ncae_exp") / "conf"
GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir())


def _options(group):
    return sorted(p.name[: -len(".yaml")] for p in (CONF / group).iterdir() if p.name.endswith(".yaml"))


def _contains(big, small):
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and _contains(big[k], v) for k, v in small.items())
    return big == small


def _compose(overrides):
    with initialize_config_module(config_module="ncae_exp.conf", version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def test_groups_are_the_contracts():
    for group in ("protocol", "dataset", "model", "pretrain", "split", "trainer", "mlflow", "paths", "experiment"):
        assert group in GROUPS
    assert set(_options("dataset")) == {
        "ml-100k", "ml-1m", "ml-10m", "ml-latest-small", "lastfm", "delicious", "synthetic",
    }


@pytest.mark.parametrize(
    "group,option", [(g, o) for g in GROUPS for o in _options(g)], ids=lambda v: str(v)
)
def test_every_option_composes_and_resolves(group, option):
    override = f"+experiment={option}" if group == "experiment" else f"{group}={option}"
    cfg = _compose([override])
    resolved = OmegaConf.to_container(cfg, resolve=True)
    if group != "experiment":
        path = CONF / group / f"{option}.yaml"
        raw = OmegaConf.to_container(OmegaConf.load(path))
        raw.pop("defaults", None)
        if group == "model":
            # a model file has its own defaults (the protocol's feedback node, a parent model)
            assert cfg.model._target_ and _contains(OmegaConf.to_container(cfg.model), raw)
        elif path.read_text().startswith("# @package _global_"):
            # a global option (a protocol) sets keys across groups: each must land as written
            for key, value in raw.items():
                if key == "hydra":  # compose() leaves Hydra's own node out; see the hparams_search test
                    continue
                assert _contains(OmegaConf.to_container(cfg[key]), value), key
        else:
            assert OmegaConf.to_container(cfg[group]) == raw
    for key in ("protocol", "dataset", "split", "model", "pretrain", "trainer", "mlflow", "paths", "seed"):
        assert key in resolved


def test_defaults_are_the_explicit_ml100k_slice():
    cfg = _compose([])
    assert cfg.protocol.name == "explicit" and cfg.dataset.name == "ml-100k" and cfg.model.name == "ncae"
    assert cfg.pretrain.name == "none" and cfg.trainer.batch_size is None and cfg.model.batch_size == 128
    assert cfg.model.feedback._target_.endswith("ExplicitFeedback") and cfg.objective == "val_rmse"
    assert cfg.split.kind == "ratio" and (cfg.split.train, cfg.split.val, cfg.split.test) == (0.8, 0.1, 0.1)


def test_implicit_protocol_picks_its_own_defaults_and_overrides_still_win():
    cfg = _compose(["protocol=implicit"])
    assert cfg.dataset.name == "lastfm" and cfg.split.kind == "leave_one_out"
    assert cfg.model.based == "user" and list(cfg.model.hidden) == [128] and cfg.trainer.epochs == 30
    assert cfg.objective == "val_hr_at_100" and cfg.protocol.mode == "max"
    assert 50 in cfg.protocol.cutoffs and 100 in cfg.protocol.cutoffs
    assert cfg.model.feedback._target_.endswith("ImplicitFeedback") and cfg.model.feedback.omega == 0.25
    assert "alpha" not in cfg.model.feedback  # explicit-only settings do not leak into implicit
    cfg = _compose(["protocol=implicit", "dataset=ml-100k", "model.hidden=[64]", "trainer.epochs=3"])
    assert cfg.dataset.name == "ml-100k" and list(cfg.model.hidden) == [64] and cfg.trainer.epochs == 3


def test_paper_experiment_overrides(monkeypatch):
    cfg = _compose(["+experiment=paper_ml10m"])
    assert cfg.dataset.name == "ml-10m" and list(cfg.model.hidden) == [500, 500]
    assert cfg.model.based == "item" and cfg.model.l2 == 0.0002 and cfg.trainer.epochs == 60


def test_paper_model_under_each_protocol():
    cfg = _compose(["model=ncae_paper"])
    assert cfg.model.name == "ncae" and list(cfg.model.hidden) == [500, 500] and cfg.model.l2 == 0.0002
    cfg = _compose(["model=ncae_paper", "protocol=implicit"])  # protocol_model/implicit_ncae_paper.yaml
    assert cfg.model.based == "user" and list(cfg.model.hidden) == [128] and cfg.model.l2 == 0.01
    assert cfg.model.feedback.omega == 0.5 and cfg.trainer.epochs == 30
    cfg = _compose(["+experiment=fig9"])
    assert cfg.model.feedback.omega == 0.5


def _yaml_files(group):
    return sorted((CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group", ["protocol", "experiment"])
def test_protocols_and_experiments_never_write_model_keys(group):
    """A model's settings live in its own config (or a protocol_model specialisation):
    protocol and experiment files select a model config, they never set model.* keys."""
    for path in _yaml_files(group):
        raw = OmegaConf.to_container(OmegaConf.load(path))
        assert "model" not in raw, f"{path.name} sets model keys"


def test_every_model_config_has_a_target():
    for path in _yaml_files("model"):
        cfg = _compose([f"model={path.stem}"])
        assert cfg.model._target_, path.name


def test_env_overrides_data_dir_and_tracking_uri(monkeypatch):
    monkeypatch.setenv("NCAE_DATA_DIR", "/somewhere/data")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    cfg = _compose([])
    assert cfg.paths.data_dir == "/somewhere/data"
    assert cfg.mlflow.tracking_uri == "http://tracking.example:5000"
    monkeypatch.delenv("NCAE_DATA_DIR")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    cfg = _compose([])
    assert cfg.paths.data_dir == "data" and cfg.mlflow.tracking_uri == "sqlite:///mlflow.db"


def test_trainer_batch_size_replaces_the_models_own():
    from ncae_exp.pipeline import resolve

    cfg = resolve(_compose([]))
    assert cfg.model.batch_size == 128 and cfg.model.seed == 0  # interpolations resolved
    cfg = resolve(_compose(["trainer.batch_size=32", "seed=4"]))
    assert cfg.model.batch_size == 32 and cfg.model.seed == 4 and cfg.model.pretrain.name == "none"


def test_swept_keys_are_what_differs_between_jobs(monkeypatch):
    from ncae_exp.tracking.sweep import SWEPT_KEYS_ENV, child_run_name, swept_keys

    keys = swept_keys(["+experiment=table3", "dataset=synthetic", "seed=1,2", "model.hidden=[16,8]",
                       "model.l2=range(1,3)"], {"model": "ncae,ease"})
    assert keys == ["model", "seed", "model.l2"]
    monkeypatch.setenv(SWEPT_KEYS_ENV, ",".join(keys))
    assert child_run_name(["+experiment=table3", "dataset=synthetic", "seed=2", "model=ease"]) == "seed=2,model=ease"
    monkeypatch.delenv(SWEPT_KEYS_ENV)
    assert child_run_name(["seed=2"]) is None


@pytest.mark.parametrize("path", sorted((CONF / "hparams_search").glob("*.yaml")), ids=lambda p: p.stem)
def test_each_search_space_names_real_keys_and_holds_the_defaults(path):
    """hparams_search/<model>_<protocol>.yaml: Optuna, the protocol's direction, and a space
    over keys the model really has, wide around each default (log ranges span >= 100x)."""
    import re

    model, protocol = path.stem.rsplit("_", 1)
    with initialize_config_module(config_module="ncae_exp.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"hparams_search={path.stem}"], return_hydra_config=True)
    assert cfg.protocol.name == protocol and cfg.hydra.runtime.choices.model == model
    sweeper = cfg.hydra.sweeper
    assert "optuna" in sweeper._target_.lower()
    assert sweeper.direction == {"min": "minimize", "max": "maximize"}[cfg.protocol.mode]
    assert sweeper.params, "an empty search space"
    # trial 0 is the defaults (hparams_search.py), so the search never ends below them
    assert sweeper.sampler._target_ == "ncae_exp.hparams_search.DefaultsFirstSampler"
    for key, space in sweeper.params.items():
        default = OmegaConf.select(cfg, key, default="<missing>")
        assert default != "<missing>", f"{path.name}: {key} is not a key of model={model}"
        default = OmegaConf.to_container(default) if OmegaConf.is_config(default) else default
        interval = re.search(r"interval\(([^,]+),\s*([^)]+)\)", space)
        if interval:
            low, high = float(interval.group(1)), float(interval.group(2))
            assert low <= float(default) <= high or float(default) == 0.0, f"{key}: {default} outside {space}"
            if "log" in space:
                assert high / low >= 100, f"{key}: {space} spans less than two orders of magnitude"
        else:
            assert space.startswith("choice("), space
            assert str(default).replace(" ", "") in space.replace(" ", ""), f"{key}: default {default} not in {space}"


@pytest.mark.parametrize("override,expected", [
    ("+model.regster=true", "unknown key model.regster; did you mean model.register?"),
    ("+model.register_nme=recs", "unknown key model.register_nme; did you mean model.register_name?"),
    ("+model.nosuch=1", "register, register_name"),  # listed among the model's keys
])
def test_a_typo_of_a_publishing_key_names_it(override, expected):
    """model.register / register_name are every model's keys too (config/schema.py
    ModelPublishConf): a typo of one is refused with the nearest, as for the class's own."""
    from ncae_exp.config.validate import validate_config
    from ncae_exp.errors import ConfigError

    cfg = _compose(["model=pop", "protocol=implicit", override])
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert expected in str(err.value)
    validate_config(_compose(["model=pop", "protocol=implicit", "model.register=true", "model.register_name=recs"]))
