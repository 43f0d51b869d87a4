"""Every mistake in the config is caught before any work: ``ncae-run`` as a user runs it (a
real process), one line, a non-zero exit, no traceback, no MLflow run, no data touched."""

import subprocess
from pathlib import Path

import mlflow
import pytest
from hydra import compose, initialize_config_module

from ncae_exp.config import validate_config
from ncae_exp.errors import ConfigError

from conftest import NCAE_RUN, child_env, synthetic

SMALL = [*synthetic(), "model.hidden=[16]", "trainer.epochs=1"]


def run_cli(tmp_path, *overrides, timeout=300):
    return subprocess.run([NCAE_RUN, *overrides], cwd=tmp_path, env=child_env(tmp_path), capture_output=True,
                          text=True, timeout=timeout)


def snapshot(folder: Path) -> list:
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*"))


def runs_in_store(tmp_path) -> list:
    db = tmp_path / "mlflow.db"
    if not db.exists():
        return []
    client = mlflow.MlflowClient(f"sqlite:///{db}")
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


# Each row is a real ncae-run process (a few seconds each): the kinds of mistake, end to end.
BAD = [
    # typos, with the nearest valid key; with + they must not train with the default either
    (["model.hiden=[10]"], "unknown key model.hiden; did you mean model.hidden?"),
    (["+model.hiden=[10]"], "unknown key model.hiden; did you mean model.hidden?"),
    (["trainer.epoch=5"], "unknown key trainer.epoch; did you mean trainer.epochs?"),
    (["+sed=3"], "unknown key sed; did you mean seed?"),
    (["+modle.hidden=[10]"], "unknown key modle.hidden; did you mean model.hidden?"),
    # a wrong type, values out of range
    (["trainer.epochs=abc"], "trainer.epochs must be an integer, got 'abc'"),
    (["trainer.epochs=-1"], "trainer.epochs must be >= 1, got -1"),
    (["model.dropout=1.5"], "model.dropout must be in [0, 1), got 1.5"),
    (["model.batch_size=-1"], "model.batch_size and predict_batch_size must be >= 1, got -1"),
    (["split.train=0.5"], "split fractions must be >= 0, sum to 1"),
    (["dataset=synthetic", "dataset.n_users=-3"], "synthetic dataset: n_users must be a positive integer, got -3"),
    # unknown names
    (["dataset=nosuch"], "unknown dataset 'nosuch'; choose one of:"),
    (["model=nosuch"], "unknown model 'nosuch'; choose one of:"),
    # the compared model's settings are checked before the main model trains
    (["retrain=true", "compare_to=biasedmf", 'compare_overrides=["model.factors=0"]'],
     "compare_to=biasedmf: model.factors"),
]


@pytest.mark.parametrize("overrides,expected", BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_config_is_refused_before_any_work(tmp_path, overrides, expected):
    data = tmp_path / "data"
    (data / "raw").mkdir(parents=True)
    (data / "raw" / "README").write_text("hand-placed archives go here\n")
    before = snapshot(data)
    proc = run_cli(tmp_path, *overrides, f"hydra.run.dir={tmp_path / 'out'}")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert [line for line in lines if "error" in line.lower()] == [lines[-1]], proc.stderr[-3000:]
    assert lines[-1].startswith("ncae-run: error: ") and expected in lines[-1], lines[-1]
    assert not runs_in_store(tmp_path), "no MLflow run may exist"
    assert snapshot(data) == before, "the data folder must be left as it was"
    assert not (tmp_path / "out" / "results.json").exists()


def test_an_experiment_key_of_a_swept_group_composes(tmp_path):
    """fig5 sweeps the pretrain group; pretrain.epochs_per_stage (README) is set without ++."""
    proc = run_cli(tmp_path, "+experiment=fig5", "pretrain.epochs_per_stage=1", "--cfg", "job")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "epochs_per_stage: 1" in proc.stdout


@pytest.fixture(scope="module")
def hydra_conf():
    with initialize_config_module(config_module="ncae_exp.conf", version_base="1.3"):
        yield lambda overrides: compose(config_name="config", overrides=overrides)


CONF = Path(__file__).resolve().parents[1] / "src" / "ncae_exp" / "conf"
IMPLICIT_ONLY = {"lastfm", "delicious", "leave_one_out", "ease", "pop", "wmf", "eals", "bpr", "ncf", "multvae"}


def _option_overrides(group: str, option: str) -> list[str]:
    if group == "experiment":
        return [f"+experiment={option}"]
    if group == "protocol_model":
        protocol, model = option.split("_", 1)
        return [f"protocol={protocol}", f"model={model}"]
    extra = ["protocol=implicit"] if option in IMPLICIT_ONLY else []
    if group == "pretrain" and option not in ("none", "sus"):
        extra.append("model.hidden=[8,8]")  # these schedules pre-train a second hidden layer
    return [*extra, f"{group}={option}"]


OPTIONS = [(g.name, p.stem) for g in sorted(CONF.iterdir()) if g.is_dir() and g.name != "hydra"
           for p in sorted(g.glob("*.yaml"))]


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_passes_validation(hydra_conf, group, option):
    """Every key a config file sets is in the schema (config/schema.py, or the class of a
    ``_target_``): a key added to a YAML file must be declared there too."""
    validate_config(hydra_conf(_option_overrides(group, option)))


@pytest.mark.slow
def test_a_mistake_in_a_sweep_job_is_reported_and_the_others_run(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(tmp_path, "-m", *SMALL, "model.dropout=1.5,0.5", f"hydra.sweep.dir={sweep}", timeout=600)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "ncae-run: error: job #0 model.dropout=1.5: model.dropout must be in [0, 1), got 1.5" in lines
    assert lines[-1].startswith("ncae-run: error: 1 job of the sweep failed: #0 model.dropout=1.5:"), lines[-1]
    runs = runs_in_store(tmp_path)
    (parent,) = [r for r in runs if r.data.tags.get("ncae.sweep") == "true"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    # the bad job never created a run; the good one trained to the end
    assert [(r.info.run_name, r.info.status) for r in children] == [("model.dropout=0.5", "FINISHED")]
    assert parent.info.status == "FAILED"
    assert parent.data.tags["ncae.failed_jobs"] == "#0 model.dropout=1.5: model.dropout must be in [0, 1), got 1.5"
    assert parent.data.metrics["n_failed_jobs"] == 1 and parent.data.metrics["n_children"] == 1


# The same checks in-process (fast): every node's keys, types and values.
MISTAKES = [
    (["++model.feedback.alpah=2"], "unknown key model.feedback.alpah; did you mean model.feedback.alpha?"),
    (["+trainer.epoch=5"], "unknown key trainer.epoch; did you mean trainer.epochs?"),
    (["+dataset.nusers=10"], "unknown key dataset.nusers; dataset has: name, url"),
    (["+protocol.foo=1"], "unknown key protocol.foo; protocol has: log_test_rmse, log_train_rmse, mode, name, select"),
    (["+pretrain.frist=supervised"], "unknown key pretrain.frist; did you mean pretrain.first?"),
    (["protocol=implicit", "+split.keep_shrae=0.5"], "unknown key split.keep_shrae; did you mean split.keep_share?"),
    (["model.hidden=500"], "model.hidden must be a list of integers, got 500"),
    (["model.l2=abc"], "model.l2 must be a number, got 'abc'"),
    (["mlflow.enabled=maybe"], "mlflow.enabled must be true or false, got 'maybe'"),
    (["retrain=1"], "retrain must be true or false, got 1"),
    (["trainer.patience=0"], "trainer.patience must be >= 1 or null, got 0"),
    (["trainer.batch_size=-8"], "trainer.batch_size must be >= 1 or null, got -8"),
    (["trainer.device=tpu"], "trainer.device must be auto, cpu or gpu, got 'tpu'"),
    (["seed=-1"], "seed must be >= 0, got -1"),
    (["repeats=0"], "repeats must be >= 1, got 0"),
    (["retrain=true", "split=ratio_90_10"], "retrain=true needs a validation set"),
    (["pretrain=sus", "pretrain.epochs_per_stage=0"], "pretrain.epochs_per_stage must be >= 1, got 0"),
    (["pretrain=uu"], "pretrain=uu pre-trains hidden layer 2, but model.hidden has one layer"),
    (["dataset.name=nosuch"], "unknown dataset 'nosuch'; choose one of:"),
    (["split=ml100k_canonical", "split.fold=7"], "ml-100k canonical fold must be 1..5, got 7"),
    (["split=ml100k_canonical", "dataset=ml-1m"], "canonical folds exist only for ml-100k"),
    (["protocol=implicit", "split.keep_share=0"], "the kept share of training data must be in (0, 1], got 0"),
    (["protocol=implicit", "split=ratio_80_10_10"], "protocol=implicit needs split=leave_one_out"),
    (["split=leave_one_out"], "split=leave_one_out is the implicit protocol's split"),
    (["dataset=lastfm"], "use protocol=implicit"),
    (["model=ease"], "runs under protocol=implicit"),
    (["model=biasedmf", "pretrain=sus"], "pretrain=sus applies to NCAE only"),
    (["protocol=implicit", "model=ease", "trainer.batch_size=4"], "trainer.batch_size: model 'ease' has no mini-batches"),
    (["protocol.select=test_rmse"], "protocol.select must be a validation metric"),
    (["retrain=true", "repeats=2", "compare_to=nosuch"], "compare_to=nosuch: unknown model 'nosuch'; choose one of:"),
]


@pytest.mark.parametrize("overrides,expected", MISTAKES, ids=[" ".join(o) for o, _ in MISTAKES])
def test_mistakes_are_one_line_errors(hydra_conf, overrides, expected):
    from ncae_exp.errors import NcaeError

    with pytest.raises(NcaeError) as err:
        validate_config(hydra_conf(overrides))
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_validation_reports_the_compared_model_by_name(hydra_conf):
    cfg = hydra_conf(["model=biasedmf", "model.factors=0"])
    with pytest.raises(ConfigError, match=r"^compare_to=biasedmf: model.factors"):
        validate_config(cfg, "compare_to=biasedmf")
