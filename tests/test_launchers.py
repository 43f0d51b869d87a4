"""Sweeps under other Hydra launchers: joblib (parallel local processes), submitit (local
executor here; Slurm on a cluster), with the MLflow parent/child runs intact.

Real processes throughout: ``ncae-run`` as a user runs it, a real ``mlflow server``.
"""

import json
import subprocess
import sys
import textwrap

import mlflow
import pytest
from omegaconf import OmegaConf

from ncae_exp.errors import TrackingError
from ncae_exp.tracking.sweep import (
    PARENT_ENV,
    PARENT_FILE,
    PARENT_URI_ENV,
    SWEPT_KEYS_ENV,
    SweepParent,
    find_parent,
    fixed_overrides,
    write_parent_file,
)

from conftest import NCAE_RUN, NOT_INHERITED, child_env, synthetic

TINY = [*synthetic(), "model.hidden=[16]", "trainer.epochs=1"]


def ncae_run(tmp_path, *args, env_extra=None, timeout=600):
    return subprocess.run([NCAE_RUN, *args], cwd=tmp_path, env=child_env(tmp_path, env_extra), capture_output=True,
                          text=True, timeout=timeout)


def sweep_runs(uri):
    """(the one parent, its children, every run) of the ncae-explicit experiment in ``uri``."""
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("ncae-explicit")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("ncae.sweep") == "true"]
    assert len(parents) == 1, [r.info.run_name for r in runs]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    return client, parents[0], children, runs


@pytest.fixture
def clean_env(monkeypatch):
    """No sweep parent in this process's environment (restored afterwards)."""
    for key in NOT_INHERITED:
        monkeypatch.setenv(key, "")  # records the original value, so it is restored
        monkeypatch.delenv(key)


@pytest.fixture
def mlflow_server(start_mlflow_server):
    """The URI of a real tracking server on 127.0.0.1 (SQLite store and proxied artifacts in
    tmp_path: tests/conftest.py)."""
    return start_mlflow_server().uri


# --- how a job finds its parent ---------------------------------------------------------


def test_a_job_without_the_env_var_finds_its_parent_in_the_sweep_dir(tmp_path, clean_env):
    assert find_parent(tmp_path) is None  # no file, no environment: not part of a sweep
    parent = SweepParent("abc123", "http://tracking:5000", ["seed"])
    path = write_parent_file(tmp_path / "sweep", parent)
    assert path == tmp_path / "sweep" / PARENT_FILE
    assert json.loads(path.read_text()) == {"run_id": "abc123", "tracking_uri": "http://tracking:5000",
                                            "swept_keys": ["seed"]}
    assert [p.name for p in path.parent.iterdir()] == [PARENT_FILE], "no temp file left behind"
    assert find_parent(tmp_path / "sweep") == parent
    assert find_parent(str(tmp_path / "sweep")) == parent  # HydraConfig gives a str
    assert find_parent() is None  # outside a sweep only the environment counts


def test_the_env_var_comes_first(tmp_path, clean_env, monkeypatch):
    write_parent_file(tmp_path, SweepParent("from-file", "sqlite:////a.db", ["seed"]))
    monkeypatch.setenv(PARENT_ENV, "from-env")
    monkeypatch.setenv(PARENT_URI_ENV, "http://tracking:5000")
    monkeypatch.setenv(SWEPT_KEYS_ENV, "model,seed")
    assert find_parent(tmp_path) == SweepParent("from-env", "http://tracking:5000", ["model", "seed"])


def test_an_unreadable_parent_file_is_a_one_line_error(tmp_path, clean_env):
    (tmp_path / PARENT_FILE).write_text("{not json")
    with pytest.raises(TrackingError, match="cannot read the sweep's parent run"):
        find_parent(tmp_path)


def test_fixed_overrides_are_what_the_sweep_did_not_vary():
    command_line = ["dataset=lastfm", "seed=0,1", "+experiment=fig5", "~trainer.patience", "model.hidden=[16,8]"]
    assert fixed_overrides(command_line, ["seed"]) == {"dataset": "lastfm", "experiment": "fig5",
                                                       "model.hidden": "[16,8]"}


def test_the_sweep_callback_records_the_parent_and_its_fixed_overrides(tmp_path):
    """on_multirun_start in a process of its own (it sets this process's MLflow state)."""
    script = textwrap.dedent(f"""
        import json, os
        from omegaconf import OmegaConf
        from ncae_exp.tracking.sweep import MlflowSweepCallback, close_parent, find_parent
        cfg = OmegaConf.create({{
            "mlflow": {{"enabled": True, "tracking_uri": "sqlite:///store.db", "experiment_name": "ncae-explicit"}},
            "protocol": {{"name": "explicit", "select": "val_rmse", "mode": "min"}}, "dataset": {{"name": "lastfm"}},
            "model": {{"name": "ncae"}},
            "hydra": {{"sweep": {{"dir": "sweep"}}, "sweeper": {{"params": None}},
                      "overrides": {{"task": ["dataset=lastfm", "model.l2=0.005,0.01", "trainer.epochs=3"]}}}},
        }})
        MlflowSweepCallback().on_multirun_start(cfg)
        env = os.environ.pop("NCAE_MLFLOW_PARENT_RUN_ID")
        print(json.dumps({{"env": env, "found": find_parent("sweep").__dict__}}))
        os.environ["NCAE_MLFLOW_PARENT_RUN_ID"] = env
        close_parent("FINISHED")
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=child_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    assert out["found"] == {"run_id": out["env"], "tracking_uri": uri, "swept_keys": ["model.l2"]}
    assert (tmp_path / "sweep" / PARENT_FILE).stat().st_mode & 0o077 == 0, "the URI may hold a password"
    run = mlflow.MlflowClient(uri).get_run(out["env"])
    assert run.info.status == "FINISHED" and run.data.tags["ncae.sweep"] == "true"
    assert run.data.params == {"dataset": "lastfm", "trainer.epochs": "3"}  # not the swept model.l2


# --- launcher configs -------------------------------------------------------------------


def hydra_cfg(tmp_path, *overrides):
    proc = ncae_run(tmp_path, *overrides, "--cfg", "hydra", timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return OmegaConf.create(proc.stdout).hydra


def test_slurm_launcher_composes_from_our_config_dir(tmp_path):
    cfg = hydra_cfg(tmp_path, "hydra/launcher=slurm", "hydra.launcher.partition=cpu")
    launcher = cfg.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert cfg.runtime.choices["hydra/launcher"] == "slurm"
    # our settings on top of the plugin's submitit_slurm, which supplies the rest
    settings = (launcher.timeout_min, launcher.cpus_per_task, launcher.mem_gb, launcher.array_parallelism)
    assert settings == (240, 4, 16, 16)
    assert launcher.partition == "cpu" and launcher.setup == ["export TF_CPP_MIN_LOG_LEVEL=2"]
    assert launcher.signal_delay_s == 120 and launcher.max_num_timeout == 0 and "qos" in launcher


def test_joblib_launcher_composes(tmp_path):
    launcher = hydra_cfg(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2").launcher
    assert launcher._target_ == "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    assert launcher.n_jobs == 2


# --- sweeps end to end ------------------------------------------------------------------


@pytest.mark.slow
def test_joblib_sweep_logs_parent_and_children_to_a_tracking_server(tmp_path, mlflow_server):
    sweep_dir = tmp_path / "sweep"
    proc = ncae_run(tmp_path, "-m", *TINY, "seed=0,1,2,3", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                    f"hydra.sweep.dir={sweep_dir}", f"mlflow.tracking_uri={mlflow_server}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout + proc.stderr
    client, parent, children, runs = sweep_runs(mlflow_server)
    assert len(runs) == 5 and len(children) == 4, "exactly one parent and a child per job"
    assert parent.info.status == "FINISHED" and all(r.info.status == "FINISHED" for r in children)
    assert sorted(r.info.run_name for r in children) == [f"seed={s}" for s in range(4)]
    assert all(0.3 < r.data.metrics["val_rmse"] < 2.5 and "test_rmse" in r.data.metrics for r in children)
    assert parent.data.metrics["n_children"] == 4
    assert parent.data.metrics["best_val_rmse"] == min(r.data.metrics["val_rmse"] for r in children)
    # the parent shows what the sweep held fixed; the swept seed is the children's
    p = parent.data.params
    assert p["dataset"] == "synthetic" and p["model.hidden"] == "[16]" and p["trainer.epochs"] == "1"
    assert p["mlflow.tracking_uri"] == mlflow_server and "seed" not in p
    # artifacts went through the server into its artifact store
    assert "results.json" in {a.path for a in client.list_artifacts(children[0].info.run_id)}
    assert any((tmp_path / "server-artifacts").rglob("results.json"))
    recorded = json.loads((sweep_dir / PARENT_FILE).read_text())
    assert recorded == {"run_id": parent.info.run_id, "tracking_uri": mlflow_server, "swept_keys": ["seed"]}


@pytest.mark.slow
def test_submitit_jobs_without_the_environment_find_the_parent_in_the_sweep_dir(tmp_path):
    """As on another machine: the jobs start with neither the parent's id nor the tracking URI
    in their environment (the launcher's setup lines unset them), so each job's own
    mlflow.tracking_uri falls back to ./mlflow.db; they read mlflow_parent.json instead and
    log to the parent's store."""
    store = tmp_path / "store"
    store.mkdir()
    uri = f"sqlite:///{store / 'parent.db'}"
    unset = f"unset {PARENT_ENV} {PARENT_URI_ENV} {SWEPT_KEYS_ENV} MLFLOW_TRACKING_URI"
    sweep_dir = tmp_path / "sweep"
    proc = ncae_run(tmp_path, "-m", *TINY, "seed=0,1", "hydra/launcher=submitit_local",
                    f"+hydra.launcher.setup=[{unset}]", f"hydra.sweep.dir={sweep_dir}",
                    env_extra={"MLFLOW_TRACKING_URI": uri})
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, parent, children, runs = sweep_runs(uri)
    assert len(runs) == 3 and parent.info.status == "FINISHED"
    assert sorted(r.info.run_name for r in children) == ["seed=0", "seed=1"]  # swept keys from the file
    assert all(r.info.status == "FINISHED" and "val_rmse" in r.data.metrics for r in children)
    assert all(r.data.params["mlflow.tracking_uri"] == uri for r in children)
    assert parent.data.params["dataset"] == "synthetic" and "seed" not in parent.data.params
    assert not (tmp_path / "mlflow.db").exists(), "the jobs' own default store was never used"
    for job in ("0", "1"):
        assert f"logging to the sweep parent's store {uri}" in (sweep_dir / job / "cli.log").read_text()
