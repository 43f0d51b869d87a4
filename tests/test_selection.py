"""The paper's protocol after selection (protocols/selection.py): retrain on training ∪
validation for the selected epochs, test, repeat over seeds, compare with a paired t-test."""

import numpy as np
import pytest
from omegaconf import OmegaConf

from ncae_exp.data.synthetic import generate_synthetic
from ncae_exp.errors import ConfigError
from ncae_exp.protocols.explicit import ExplicitProtocol
from ncae_exp.protocols.implicit import ImplicitProtocol
from ncae_exp.protocols.selection import Candidate, check_settings, repeat_seeds, summarise
from ncae_exp.training.trainer import Trainer

from test_cli import NCAE_RUN, SMALL, error_line, run_cli  # noqa: F401

RATIO = OmegaConf.create({"kind": "ratio", "train": 0.8, "val": 0.1, "test": 0.1})
LOO = OmegaConf.create({"kind": "leave_one_out", "min_interactions": 3, "keep_share": 1.0})


@pytest.fixture(scope="module")
def data():
    return generate_synthetic(n_users=200, n_items=150, n_ratings=6000, seed=1)


def test_explicit_merge_trains_on_the_union_and_tests_the_same_pairs(data, tmp_path):
    plain, merged = ExplicitProtocol(), ExplicitProtocol()
    a = plain.split(data, RATIO, 3, tmp_path)
    b = merged.split(data, RATIO, 3, tmp_path, merge_validation=True)
    val = plain.data_split.val
    assert b.train.nnz == a.train.nnz + len(val) == a.stats["n_train"] + a.stats["n_val"]
    assert b.stats["n_train"] == b.train.nnz and b.stats["n_val"] == 0
    # every validation rating is now a training rating with its value
    assert np.allclose(np.asarray(b.train[val.users, val.items]).ravel(), val.values)
    t1, t2 = plain.data_split.test, merged.data_split.test
    assert np.array_equal(t1.users, t2.users) and np.array_equal(t1.values, t2.values)

    class Mean:  # predicts 3.0 everywhere: evaluate() must have no validation metric left
        def predict(self, users, items):
            return np.full(len(users), 3.0)

    assert "val_rmse" not in merged.evaluate(Mean()) and "val_rmse" in plain.evaluate(Mean())


def test_explicit_merge_without_validation_is_refused(data, tmp_path):
    no_val = OmegaConf.create({"kind": "ratio", "train": 0.9, "val": 0.0, "test": 0.1})
    with pytest.raises(ConfigError, match="no validation set"):
        ExplicitProtocol().split(data, no_val, 0, tmp_path, merge_validation=True)
    with pytest.raises(ConfigError, match="needs a validation set"):
        check_settings(True, 5, None, no_val)


def test_implicit_merge_puts_the_validation_item_in_the_input(tmp_path):
    implicit = generate_synthetic(n_users=200, n_items=150, n_ratings=6000, seed=1)
    implicit.rating_scale = None
    plain, merged = ImplicitProtocol(), ImplicitProtocol()
    a = plain.split(implicit, LOO, 2, tmp_path)
    b = merged.split(implicit, LOO, 2, tmp_path, merge_validation=True)
    split = plain.data_split
    assert b.train.nnz == a.train.nnz + len(split.val_items)
    assert np.all(np.asarray(b.train[split.val_users, split.val_items]).ravel() == 1.0)
    assert np.array_equal(merged.data_split.test_items, split.test_items)
    assert merged.evaluate(object()) == {}


class EpochModel:
    """A model whose state is the number of its epochs: what the trainer runs, keeps and
    restores. ``calls`` counts every ``train_epoch``, restores notwithstanding."""

    iterative = True

    def __init__(self):
        self.epoch = self.calls = 0

    def before_fit(self, log):
        return {}

    def training_loss(self):
        return 1.0

    def train_epoch(self):
        self.epoch += 1
        self.calls += 1
        return 1.0

    def get_state(self):
        return self.epoch

    def set_state(self, state):
        self.epoch = state


def test_fixed_trainer_runs_exactly_the_selected_epochs():
    from ncae_exp.tracking.base import MemoryTracker

    model = EpochModel()
    fit = Trainer.fixed(7).fit(model, lambda m: {}, MemoryTracker())
    assert model.calls == 7 and fit.epochs_run == 7
    model = EpochModel()
    assert Trainer.fixed(0).fit(model, lambda m: {}, MemoryTracker()).epochs_run == 0 and model.calls == 0
    with pytest.raises(ConfigError):
        Trainer.fixed(-1)


def test_summary_means_stds_and_paired_test():
    from scipy import stats

    main = Candidate("ncae", None, 12, results=[{"seed": s, "test_rmse": v} for s, v in zip(range(3), [0.90, 0.92, 0.91])])
    other = Candidate("biasedmf", None, 30, results=[{"seed": s, "test_rmse": v} for s, v in zip(range(3), [0.93, 0.935, 0.94])])
    out = summarise(main, other)
    assert out["test_rmse"] == pytest.approx(0.91) and out["test_rmse_std"] == pytest.approx(0.01)
    assert out["compare_test_rmse"] == pytest.approx(0.935) and out["repeats"] == 3 and out["retrain_epochs"] == 12
    ref = stats.ttest_rel([0.90, 0.92, 0.91], [0.93, 0.935, 0.94])
    assert out["ttest_p_test_rmse"] == pytest.approx(ref.pvalue) and out["ttest_diff_test_rmse"] == pytest.approx(-0.025)


def test_settings_are_checked():
    assert repeat_seeds(4, 3) == [4, 5, 6]
    with pytest.raises(ConfigError, match="repeats must be"):
        check_settings(True, 0, None)
    check_settings(False, 5, None)  # ignored with a warning: retrain=false switches the protocol off
    with pytest.raises(ConfigError, match="retrain=true"):
        check_settings(False, 1, "biasedmf")


@pytest.mark.parametrize("overrides,expected", [
    (["repeats=0", "retrain=true"], "repeats must be"),
    (["retrain=true", "split=ratio_90_10"], "needs a validation set"),
    (["retrain=true", "compare_to=nosuch"], "unknown model 'nosuch'"),
    (["retrain=true", "compare_to=ease"], "runs under protocol=implicit"),
])
def test_bad_retrain_settings_are_one_line_errors(tmp_path, overrides, expected):
    proc = run_cli(tmp_path, *SMALL, *overrides, "mlflow.enabled=false")
    assert expected in error_line(proc)
    assert not (tmp_path / "data" / "processed").exists(), "refused before any data is read"


@pytest.mark.slow
def test_retrain_with_repeats_and_compare_end_to_end(tmp_path):
    """One command: select NCAE's epoch on validation, retrain on train+val for 3 seeds, the
    same for BiasedMF, paired t-test. Sizes show the union; nothing selects on test."""
    import mlflow
    from scipy import stats

    proc = run_cli(tmp_path, *SMALL, "retrain=true", "repeats=3", "compare_to=biasedmf",
                   'compare_overrides=["model.factors=4"]')
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (exp,) = [e for e in client.search_experiments() if e.name == "ncae-explicit"]
    runs = client.search_runs([exp.experiment_id])
    (top,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    kids = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == top.info.run_id]
    assert all(r.info.status == "FINISHED" for r in runs)
    repeats = {(r.data.tags["model"], int(r.data.tags["seed"])): r for r in kids if r.data.tags["ncae.stage"] == "retrain"}
    assert set(repeats) == {(m, s) for m in ("ncae", "biasedmf") for s in (0, 1, 2)}
    (sel,) = [r for r in kids if r.data.tags["ncae.stage"] == "selection"]
    assert sel.data.tags["model"] == "biasedmf" and sel.data.params["model.factors"] == "4"
    m, p = top.data.metrics, top.data.params
    # The union: each repeat trains on its split's training + validation ratings.
    n_train, n_val = int(p["split.n_train"]), int(p["split.n_val"])
    r0 = repeats[("ncae", 0)]
    assert int(r0.data.params["split.n_train"]) == n_train + n_val and r0.data.params["split.n_val"] == "0"
    assert r0.data.params["split.merged_validation"] == "True"
    # Retrained for the epoch chosen on validation (no val metric exists in a repeat).
    assert m["retrain_epochs"] == m["best_epoch"]
    assert all(r.data.metrics["epochs_run"] == m["best_epoch"] for k, r in repeats.items() if k[0] == "ncae")
    assert not any(k.startswith("val_") for r in repeats.values() for k in r.data.metrics)
    ours = [repeats[("ncae", s)].data.metrics["test_rmse"] for s in range(3)]
    theirs = [repeats[("biasedmf", s)].data.metrics["test_rmse"] for s in range(3)]
    assert m["test_rmse"] == pytest.approx(np.mean(ours)) and m["test_rmse_std"] == pytest.approx(np.std(ours, ddof=1))
    assert m["compare_test_rmse"] == pytest.approx(np.mean(theirs))
    assert m["ttest_p_test_rmse"] == pytest.approx(stats.ttest_rel(ours, theirs).pvalue)
    assert len(set(ours)) == 3, "each seed is its own split and initialisation"
    artifacts = {a.path for a in client.list_artifacts(top.info.run_id)}
    assert {"repeats.md", "repeats.json", "results.json"} <= artifacts
    # The run's model is the base seed's retrained one: serving rebuilds training ∪ validation.
    from ncae_exp.serving.rebuild import rebuild

    loaded = rebuild(tmp_path / "out" / "model" / "artifacts" / "recommender", str(tmp_path / "data"))
    assert loaded.train.nnz == n_train + n_val
    protocol = ExplicitProtocol()
    protocol.split(loaded.data, loaded.cfg.split, 0, tmp_path / "data", merge_validation=True)
    rebuilt = protocol.evaluator.evaluate(loaded.model, protocol.data_split.test, "test")["test_rmse"]
    assert rebuilt == pytest.approx(repeats[("ncae", 0)].data.metrics["test_rmse"], abs=1e-6)


@pytest.mark.slow
def test_optuna_search_then_retrain_of_its_best_trial(tmp_path):
    """One command: a 3-trial Optuna search on validation, then its best trial (by val_rmse)
    retrained over 2 seeds on the parent, with ALS-WR through the same seeds; the parent's
    model is the retrained one, an MLflow model, registered with model.register=true."""
    import mlflow
    import pandas as pd

    proc = run_cli(tmp_path, "-m", "hparams_search=biasedmf_explicit", "model=biasedmf", "hydra.sweeper.n_trials=3",
                   *SMALL[:4], "trainer.epochs=2", "retrain=true", "repeats=2", "compare_to=alswr",
                   "model.register=true", "model.register_name=tuned-biasedmf")
    assert proc.returncode == 0, proc.stderr[-3000:]
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(store)
    (exp,) = [e for e in client.search_experiments() if e.name == "ncae-explicit"]
    runs = client.search_runs([exp.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("ncae.sweep") == "true"]
    kids = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    trials = [r for r in kids if "ncae.stage" not in r.data.tags]
    assert len(trials) == 3 and parent.info.status == "FINISHED"
    assert not any("ncae.stage" in r.data.tags for r in runs if r.data.tags.get("mlflow.parentRunId") in
                   {t.info.run_id for t in trials}), "trials of a search only select; they do not retrain"
    best = min(trials, key=lambda r: r.data.metrics["val_rmse"])
    t = parent.data.tags
    assert t["ncae.best_child"] == t["ncae.retrained_child"] == best.info.run_id
    assert parent.data.metrics["best_val_rmse"] == best.data.metrics["val_rmse"]
    repeats = [r for r in kids if r.data.tags.get("ncae.stage") == "retrain"]
    ours = sorted((int(r.data.tags["seed"]), r.data.metrics["test_rmse"]) for r in repeats if r.data.tags["model"] == "biasedmf")
    assert [s for s, _ in ours] == [0, 1]
    assert parent.data.metrics["test_rmse"] == pytest.approx(np.mean([v for _, v in ours]))
    assert parent.data.metrics["retrain_epochs"] == best.data.metrics["best_epoch"]
    # the best trial's sampled settings are the retrained ones
    r0 = next(r for r in repeats if r.data.tags["model"] == "biasedmf")
    for key in ("model.factors", "model.l2", "model.learning_rate"):
        assert r0.data.params[key] == best.data.params[key]
    assert "ttest_p_test_rmse" in parent.data.metrics
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"repeats.md", "model", "optimization_results.yaml"} <= artifacts
    # The parent's model is the base seed's retrained one, as an MLflow model, registered
    # (after the trials' own versions), fit on that seed's training ∪ validation.
    assert "model/MLmodel" in {a.path for a in client.list_artifacts(parent.info.run_id, "model")}
    versions = client.search_model_versions("name='tuned-biasedmf'")
    assert {v.run_id for v in versions} == {parent.info.run_id, *(t.info.run_id for t in trials)}
    assert parent.data.tags["ncae.registered_model"] == f"tuned-biasedmf/{len(versions)}"
    mlflow.set_tracking_uri(store)
    try:
        served = mlflow.pyfunc.load_model(f"runs:/{parent.info.run_id}/model")
        top = served.predict(pd.DataFrame({"user": [3], "k": [5]}))
    finally:
        mlflow.set_tracking_uri(None)
    assert list(top["user"]) == [3] * 5 and list(top["rank"]) == [1, 2, 3, 4, 5]
    seed0 = next(r for r in repeats if r.data.tags["model"] == "biasedmf" and r.data.tags["seed"] == "0")
    assert served.unwrap_python_model().data.train.nnz == int(seed0.data.params["split.n_train"])


def test_no_selection_path_reads_a_test_metric(tmp_path):
    """Every place that selects — the trainer's best epoch, a sweep's best child, the
    protocol's select — follows validation even where test disagrees, and refuses a test
    metric outright."""
    import mlflow

    from ncae_exp.tracking.base import MemoryTracker
    from ncae_exp.tracking.sweep import best_child

    # Trainer: val is best at epoch 2, test at epoch 3 (logged as a curve only).
    val = {0: 1.2, 1: 1.0, 2: 0.9, 3: 0.95}
    test = {0: 1.2, 1: 1.1, 2: 1.0, 3: 0.8}

    model = EpochModel()
    fit = Trainer(epochs=3, select="val_rmse", mode="min").fit(
        model, lambda m: {"val_rmse": val[m.epoch], "test_rmse": test[m.epoch]}, MemoryTracker())
    assert fit.best_epoch == 2 and model.epoch == 2

    # A sweep's best child: by validation, though another child has the better test value.
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'sel.db'}")
    exp = client.create_experiment("sel")
    parent = client.create_run(exp, tags={"ncae.sweep": "true"}).info.run_id
    ids = {}
    # "d" ties "a" on validation but started later: the earliest wins, as in Optuna.
    for i, (name, v, t) in enumerate([("d", 0.90, 0.80), ("a", 0.90, 0.95), ("b", 0.92, 0.85), ("c", 0.95, 0.99)]):
        start = 1_000_000 + (100 if name == "d" else i)
        run = client.create_run(exp, run_name=name, start_time=start, tags={"mlflow.parentRunId": parent}).info.run_id
        client.log_metric(run, "val_rmse", v)
        client.log_metric(run, "test_rmse", t)
        client.set_terminated(run)
        ids[name] = run
    assert best_child(client, parent, "val_rmse", "min").info.run_id == ids["a"]
    with pytest.raises(ValueError, match="validation"):
        best_child(client, parent, "test_rmse", "min")
    with pytest.raises(ConfigError, match="validation metric"):
        ExplicitProtocol(select="test_rmse")
    with pytest.raises(ConfigError, match="validation metric"):
        ImplicitProtocol(select="test_hr_at_100")


@pytest.mark.slow
def test_grid_sweep_with_retrain_reports_repeats_and_t_tests(tmp_path):
    """A grid over models with retrain=true: every job retrains over the same seeds, and the
    parent's comparison report uses each job's repeats as its samples (n = repeats), with
    the baseline chosen by the jobs' validation values and p from their paired test values."""
    import json

    import mlflow
    from scipy import stats

    proc = run_cli(tmp_path, "-m", "model=biasedmf,alswr", *SMALL[:4], "trainer.epochs=2", "retrain=true",
                   "repeats=3", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    (parent,) = [r for r in runs if r.data.tags.get("ncae.sweep") == "true"]
    jobs = {r.data.tags["model"]: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(jobs) == {"biasedmf", "alswr"}
    test = {m: {int(r.data.tags["seed"]): r.data.metrics["test_rmse"] for r in runs
                if r.data.tags.get("mlflow.parentRunId") == job.info.run_id} for m, job in jobs.items()}
    assert all(sorted(v) == [0, 1, 2] for v in test.values())
    report = json.loads((tmp_path / "sweep" / "report" / "comparison.json").read_text())
    groups = {g["label"]: g for g in report["groups"]}
    best = min(jobs, key=lambda m: jobs[m].data.metrics["val_rmse"])
    assert report["baseline"] == f"model={best}"
    other = ({"biasedmf", "alswr"} - {best}).pop()
    assert groups[f"model={other}"]["metrics"]["test_rmse"]["n"] == 3
    assert groups[f"model={other}"]["metrics"]["test_rmse"]["mean"] == pytest.approx(np.mean(list(test[other].values())))
    ref = stats.ttest_rel([test[other][s] for s in range(3)], [test[best][s] for s in range(3)])
    assert groups[f"model={other}"]["tests"]["test_rmse"]["p"] == pytest.approx(ref.pvalue)
