"""``ncae-run`` as a user runs it: the installed console script, in a scratch directory."""

import subprocess

import mlflow
import numpy as np
import pytest

from conftest import BIN, NCAE_RUN, child_env, synthetic

SMALL = [*synthetic(), "model.hidden=[16]", "trainer.epochs=3"]  # SMALL[:4]: the data alone


def run_cli(tmp_path, *overrides, env_extra=None, timeout=300):
    return subprocess.run(
        [NCAE_RUN, *overrides, f"hydra.run.dir={tmp_path / 'out'}"],
        cwd=tmp_path,
        env=child_env(tmp_path, env_extra),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def error_line(proc):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines and lines[-1].startswith("ncae-run: error: "), proc.stderr
    errors = [line for line in lines if "error" in line.lower()]
    assert len(errors) == 1, proc.stderr
    return lines[-1]


@pytest.mark.slow
def test_end_to_end_run_is_logged_to_mlflow(tmp_path):
    proc = run_cli(tmp_path, "protocol=explicit", *SMALL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    db = tmp_path / "mlflow.db"
    assert db.is_file(), "default store is a SQLite file in the working directory"
    client = mlflow.MlflowClient(f"sqlite:///{db}")
    (exp,) = [e for e in client.search_experiments() if e.name == "ncae-explicit"]
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED"
    m, p, t = run.data.metrics, run.data.params, run.data.tags
    assert 0.3 < m["test_rmse"] < 2.5 and 0.3 < m["val_rmse"] < 2.5
    assert m["epoch_seconds"] > 0 and m["fit_seconds"] >= m["epoch_seconds"]
    assert t["protocol"] == "explicit" and t["dataset"] == "synthetic" and t["model"] == "ncae"
    assert p["model.hidden"] == "[16]" and p["trainer.epochs"] == "3" and p["model.batch_size"] == "128"
    assert p["data.n_ratings"] == "3000" and int(p["split.n_test"]) == 300
    loss = client.get_metric_history(run.info.run_id, "train_loss")
    assert sorted(x.step for x in loss) == [0, 1, 2, 3]
    val = {x.step: x.value for x in client.get_metric_history(run.info.run_id, "val_rmse")}
    assert set(val) == {0, 1, 2, 3, 4}  # epochs 0..3, then the selected model at step 4
    assert val[4] == min(val[s] for s in range(4)) == m["val_rmse"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "results.json", "learning_curves.png"} <= artifacts
    assert "metrics_vs_m.png" not in artifacts  # explicit runs have no ranking metrics
    assert (tmp_path / "out" / "results.json").is_file()
    assert "epoch 3/3" in proc.stderr + proc.stdout


# Bad data, unknown dataset / model, an unreachable store, a missing archive offline: the table
# of bad inputs in tests/test_bad_input.py (no run created, data and store left as they were).
@pytest.mark.parametrize(
    "overrides,expected",
    [
        (["trainer.nosuchkey=3"], "trainer.nosuchkey"),
        (["trainer.epochs=0"], "trainer.epochs"),
        (["model.based=diagonal"], "model.based"),
        (["split.train=0.5"], "split fractions"),
        (["pretrain=nosuch"], "unknown pretrain 'nosuch'"),
        (["protocol=implicit", "protocol.activity_buckets=[5,1]"], "protocol.activity_buckets must be >= 2 increasing"),
    ],
)
def test_bad_config_is_one_line_error(tmp_path, overrides, expected):
    proc = run_cli(tmp_path, *SMALL, *overrides, "mlflow.enabled=false")
    assert expected in error_line(proc)


@pytest.mark.parametrize(
    "overrides,expected",
    [
        (["model=ease"], "runs under protocol=implicit"),
        (["model=biasedmf", "pretrain=sus"], "applies to NCAE only"),
        (["model=biasedmf", "model.factors=0"], "model.factors"),
        (["model=biasedmf", "trainer.batch_size=0"], "batch_size"),
    ],
)
def test_bad_model_choice_is_one_line_error(tmp_path, overrides, expected):
    proc = run_cli(tmp_path, *SMALL[:4], "trainer.epochs=1", *overrides, "mlflow.enabled=false")
    assert expected in error_line(proc)
    assert not (tmp_path / "data" / "processed").exists(), "refused before any data is read"


def test_env_tracking_uri_is_honoured(tmp_path):
    proc = run_cli(tmp_path, *SMALL, "trainer.epochs=1", env_extra={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/elsewhere.db"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "elsewhere.db").is_file() and not (tmp_path / "mlflow.db").exists()


def test_implicit_only_dataset_refused_by_explicit_protocol(tmp_path):
    proc = run_cli(tmp_path, "protocol=explicit", "dataset=lastfm", "mlflow.enabled=false")
    assert "protocol=implicit" in error_line(proc)
    assert not (tmp_path / "data" / "raw").exists(), "must refuse before downloading anything"


@pytest.mark.slow
def test_sweep_has_one_parent_run_with_a_child_per_job(tmp_path):
    proc = run_cli(tmp_path, "-m", *[o for o in SMALL if not o.startswith("trainer.epochs")],
                   "trainer.epochs=1", "seed=1,2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (exp,) = [e for e in client.search_experiments() if e.name == "ncae-explicit"]
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("ncae.sweep") == "true"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.params["seed"] for r in children) == ["1", "2"]
    assert sorted(r.info.run_name for r in children) == ["seed=1", "seed=2"]
    # the best child is chosen on validation (protocol.select, protocol.mode), never on test
    best = min(children, key=lambda r: r.data.metrics["val_rmse"])
    assert parent.data.metrics["best_val_rmse"] == pytest.approx(best.data.metrics["val_rmse"])
    assert parent.data.tags["ncae.best_child"] == best.info.run_id
    assert not [k for k in parent.data.metrics if k.startswith("best_test")]
    assert parent.data.metrics["n_children"] == 2
    assert "sweep_children.csv" in {a.path for a in client.list_artifacts(parent.info.run_id)}


@pytest.mark.slow
def test_pretraining_series_and_epoch_zero_after_pretraining(tmp_path):
    proc = run_cli(tmp_path, *SMALL, "model.hidden=[16,12]", "pretrain=sus", "pretrain.epochs_per_stage=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.data.params["pretrain.name"] == "sus" and run.data.metrics["pretrain_seconds"] > 0
    for series in ("pretrain_sr_loss", "pretrain_dr_loss", "pretrain_v_loss"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, series)] == [1, 2]
    # step 0 of the fine-tuning curves is the pre-trained model, logged after the V stage
    v_last = max(m.timestamp for m in client.get_metric_history(run.info.run_id, "pretrain_v_loss"))
    (val0,) = [m for m in client.get_metric_history(run.info.run_id, "val_rmse") if m.step == 0]
    assert val0.timestamp >= v_last


@pytest.mark.slow
def test_implicit_end_to_end(tmp_path):
    proc = run_cli(tmp_path, "protocol=implicit", *SMALL[:4], "model.hidden=[16]", "trainer.epochs=2",
                   "protocol.activity_buckets=[1,20,.inf]")
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (exp,) = [e for e in client.search_experiments() if e.name == "ncae-implicit"]
    (run,) = client.search_runs([exp.experiment_id])
    m, p = run.data.metrics, run.data.params
    assert run.data.tags["protocol"] == "implicit"
    for cut in (50, 100, 150, 200, 250):
        for name in (f"test_hr_at_{cut}", f"test_ndcg_at_{cut}", f"val_hr_at_{cut}", f"val_ndcg_at_{cut}"):
            assert 0.0 <= m[name] <= 1.0, name
    assert m["test_hr_at_50"] <= m["test_hr_at_100"] <= m["test_hr_at_250"]
    assert int(p["split.n_test"]) + int(p["split.n_users_too_few"]) == 120
    assert p["model.based"] == "user" and p["model_info.loss_path"] == "dense"  # tanh output
    # Table 4 option: per-bucket test metrics, user counts that add up, the markdown artifact
    n_low, n_high = int(p["buckets.n_users_1_20"]), int(p["buckets.n_users_20_inf"])
    assert n_low + n_high == int(p["split.n_test"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"activity_buckets.md", "metrics_vs_m.png", "learning_curves.png"} <= artifacts
    assert (tmp_path / "out" / "metrics_vs_m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if n_low:
        assert 0.0 <= m["test_hr_at_100_users_1_20"] <= 1.0
    hr = {x.step: x.value for x in client.get_metric_history(run.info.run_id, "val_hr_at_100")}
    assert set(hr) == {0, 1, 2, 3} and hr[3] == max(hr[s] for s in range(3))


def test_implicit_protocol_refuses_explicit_splits_and_pretraining(tmp_path):
    proc = run_cli(tmp_path, "protocol=implicit", *SMALL, "split=ratio_80_10_10", "mlflow.enabled=false")
    assert "split=leave_one_out" in error_line(proc)
    proc = run_cli(tmp_path, "protocol=implicit", *SMALL, "pretrain=sus", "mlflow.enabled=false")
    assert "pretrain=none" in error_line(proc)


@pytest.mark.slow
def test_recommend_from_a_logged_model(tmp_path):
    from omegaconf import OmegaConf

    from ncae_exp.data.loader import load_dataset
    from ncae_exp.serving.rebuild import download_model, rebuild

    assert run_cli(tmp_path, *SMALL).returncode == 0
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    # an MLflow model, with the weights and the config that rebuilds it among its artifacts
    assert {"model/MLmodel", "model/artifacts"} <= {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert {"model/artifacts/recommender/weights.npz", "model/artifacts/recommender/config.yaml"} <= {
        a.path for a in client.list_artifacts(run.info.run_id, "model/artifacts/recommender")
    }
    env = child_env(tmp_path)
    rec = str(BIN / "ncae-recommend")
    proc = subprocess.run([rec, f"run_id={run.info.run_id}", "user=3", "k=7"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    header, *lines = proc.stdout.strip().splitlines()
    assert header.split() == ["rank", "item", "score"]  # an aligned table (synthetic items have no names)
    rows = [line.split() for line in lines]
    assert [int(r[0]) for r in rows] == list(range(1, 8))
    items, scores = [int(r[1]) for r in rows], [float(r[2]) for r in rows]
    assert scores == sorted(scores, reverse=True) and len(set(items)) == 7
    cfg = OmegaConf.load(tmp_path / "out" / "model" / "artifacts" / "recommender" / "config.yaml")
    data = load_dataset(cfg.dataset, tmp_path / "data")
    user = int(np.searchsorted(data.user_ids, 3))
    rated = set(data.item_ids[data.matrix.indices[data.matrix.indptr[user]:data.matrix.indptr[user + 1]]])
    assert not rated & set(items)
    # the logged weights reproduce the trained model's predictions exactly
    saved = download_model(run.info.run_id, uri, tmp_path / "dl") / "artifacts" / "recommender"
    loaded = rebuild(saved, str(tmp_path / "data"))
    best = loaded.model.score_items(np.array([user]))[0]
    best[list(np.searchsorted(data.item_ids, sorted(rated)))] = -np.inf
    assert int(data.item_ids[np.argmax(best)]) == items[0]
    bad = subprocess.run([rec, "run_id=nope", "user=3"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("ncae-recommend: error:")


def test_help_describes_this_tool(tmp_path):
    proc = subprocess.run([NCAE_RUN, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ncae-run: train and evaluate NCAE") and "powered by Hydra" not in proc.stdout
    assert "model: " in proc.stdout and "ncae_paper" in proc.stdout and "protocol: explicit, implicit" in proc.stdout


def test_recommend_help(tmp_path):
    rec = str(BIN / "ncae-recommend")
    proc = subprocess.run([rec, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: ncae-recommend run_id=")


@pytest.mark.slow
def test_table3_compares_ncae_and_the_explicit_baselines_in_one_sweep(tmp_path):
    proc = run_cli(tmp_path, "+experiment=table3", *SMALL[:4], "trainer.epochs=2", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    (parent,) = [r for r in runs if r.data.tags.get("ncae.sweep") == "true"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    # each child is named by what differs between the jobs: its model
    assert sorted(r.info.run_name for r in children) == sorted(
        f"model={m}" for m in ("ncae_paper", "ncae_paper_sus", "biasedmf", "alswr", "autorec", "cfn")
    )
    assert all(r.info.status == "FINISHED" and 0.3 < r.data.metrics["test_rmse"] < 4.5 for r in children)
    assert {r.data.tags["model"] for r in children} == {"ncae", "ncae_pretrained", "biasedmf", "alswr", "autorec", "cfn"}
    # the parent is tagged and named with the swept models, not the base config's
    assert parent.data.tags["model"] == "ncae_paper,ncae_paper_sus,biasedmf,alswr,autorec,cfn"
    assert parent.info.run_name.startswith("sweep ncae_paper,ncae_paper_sus,biasedmf,alswr,autorec,cfn on synthetic ")
    # and carries the comparison report of its children
    assert "report/comparison.md" in {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    # NCAE* pre-trained (its stage series), NCAE did not
    pre = {r.data.tags["model"]: "pretrain_seconds" in r.data.metrics for r in children}
    assert pre["ncae_pretrained"] and not pre["ncae"]


@pytest.mark.slow
def test_optuna_search_is_a_sweep_with_the_studys_best_on_the_parent(tmp_path):
    proc = run_cli(tmp_path, "hparams_search=biasedmf_explicit", "hydra.sweeper.n_trials=3", *SMALL[:4],
                   "trainer.epochs=2", f"hydra.sweep.dir={tmp_path / 'sweep'}", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    (parent,) = [r for r in runs if r.data.tags.get("ncae.sweep") == "true"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 3 and all(r.info.status == "FINISHED" for r in children)
    # the objective is validation RMSE, minimised; the parent holds the study's best
    best = min(children, key=lambda r: r.data.metrics["val_rmse"])
    assert parent.data.metrics["best_val_rmse"] == pytest.approx(best.data.metrics["val_rmse"])
    for key in ("model.factors", "model.learning_rate", "model.l2", "model.l2_bias"):
        assert parent.data.params[f"best_params.{key}"] == best.data.params[key]
    assert "optimization_results.yaml" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    # children are named by the sampled values only
    assert all(r.info.run_name.startswith("model.factors=") for r in children)


def test_optuna_direction_must_follow_the_protocol(tmp_path):
    proc = run_cli(tmp_path, "hparams_search=ease_implicit", "protocol=explicit", *SMALL[:4], "mlflow.enabled=false")
    assert "hydra.sweeper.direction=maximize" in error_line(proc)


def test_an_unexpected_failure_is_one_line_too(tmp_path):
    """Not a config error of ours (here Hydra's own ValueError): still one line, exit 1, and
    a pointer to the traceback."""
    proc = run_cli(tmp_path, "-m", "--cfg", "job")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert lines[-1].startswith("ncae-run: error: ValueError: Only one of") and "HYDRA_FULL_ERROR=1" in lines[-1]
