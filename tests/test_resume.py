"""Runs that survive: checkpoints and resume, truthful MLflow run states, results that outlive
the tracking server. Real processes throughout: ``ncae-run`` and ``ncae-runs`` as a user
runs them, signals sent to them, a real ``mlflow server`` killed under a run.
"""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import mlflow
import pytest

from ncae_exp.models.io import load_state

from conftest import BIN, NCAE_RUN, child_env, synthetic

NCAE_RUNS = str(BIN / "ncae-runs")
# Small enough for seconds, big enough that 16 epochs outlast the time a signal takes.
RUN = [*synthetic(300, 200, 20000), "model.hidden=[32]", "trainer.epochs=16"]

# The selected model's weights inside the run's MLflow model folder (models/mlflow_model.py).
SAVED_WEIGHTS = Path("model") / "artifacts" / "recommender" / "weights.npz"


def start(tmp_path, *args):
    return subprocess.Popen([NCAE_RUN, *args], cwd=tmp_path, env=child_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def signal_after(proc, marker: str, sig: int, count: int = 1, timeout: float = 300) -> str:
    """Send ``sig`` once ``marker`` has appeared ``count`` times in the output; the whole output."""
    seen, lines = 0, []
    for line in proc.stdout:
        lines.append(line)
        seen += marker in line
        if seen == count:
            proc.send_signal(sig)
            break
    lines.append(proc.stdout.read())
    proc.wait(timeout=timeout)
    return "".join(lines)


def ncae_run(tmp_path, *args, timeout=300):
    return subprocess.run([NCAE_RUN, *args], cwd=tmp_path, env=child_env(tmp_path), capture_output=True, text=True,
                          timeout=timeout)


def runs_of(uri):
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return client, runs


def results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


@pytest.mark.slow
def test_a_run_killed_after_its_4th_epoch_resumes_in_the_same_mlflow_run(tmp_path):
    # the uninterrupted run, meanwhile (no MLflow: the numbers do not depend on it; op
    # determinism on, which must not change CPU numbers either)
    reference = start(tmp_path, *RUN, "mlflow.enabled=false", "trainer.deterministic=true",
                      f"hydra.run.dir={tmp_path / 'reference'}")
    out, uri = tmp_path / "out", f"sqlite:///{tmp_path / 'mlflow.db'}"
    killed = start(tmp_path, *RUN, f"hydra.run.dir={out}")
    signal_after(killed, "epoch 4/16", signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    client, (run,) = runs_of(uri)
    assert run.info.status == "RUNNING"  # kill -9 leaves it so: nothing in the process can end it
    epoch = json.loads(str(load_state(out / "checkpoint" / "last.npz")["progress"][()]))["epoch"]
    assert 4 <= epoch < 16 and results(out)["status"] == "running"

    # the stale run is recognised: its process is gone
    stale = subprocess.run([NCAE_RUNS, "stale", "--tracking-uri", uri], cwd=tmp_path, env=child_env(tmp_path),
                           capture_output=True, text=True, timeout=120)
    assert stale.returncode == 0, stale.stderr
    assert run.info.run_id in stale.stdout and "is gone" in stale.stdout

    # the same command again: the same MLflow run goes on from the checkpoint
    again = ncae_run(tmp_path, *RUN, f"hydra.run.dir={out}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming from the checkpoint after epoch {epoch}/16" in again.stderr + again.stdout
    _, (resumed,) = runs_of(uri)
    assert resumed.info.run_id == run.info.run_id and resumed.info.status == "FINISHED"

    assert reference.wait(timeout=300) == 0, reference.stdout.read()[-3000:]
    assert "op determinism on" in reference.stdout.read()
    expected = results(tmp_path / "reference")
    assert resumed.data.metrics["test_rmse"] == expected["final"]["test_rmse"]
    assert results(out)["final"]["test_rmse"] == expected["final"]["test_rmse"]
    # every step of the curve, numbered on, equal to the uninterrupted run's
    by_step = {h["step"]: h["val_rmse"] for h in expected["history"]}
    logged = client.get_metric_history(run.info.run_id, "val_rmse")
    assert {m.step for m in logged} == set(range(18))  # epochs 0..16, then the selected model
    assert all(m.value == by_step[m.step] for m in logged if m.step <= 16)


def check_killed_with_results(client, run, out: Path) -> None:
    """A KILLED run whose folder and MLflow run hold the best model so far and the results."""
    assert run.info.status == "KILLED"
    record = results(out)
    assert record["status"] == "killed" and record["mlflow_run_id"] == run.info.run_id
    best = record["final"]["best_epoch"]
    assert len(record["history"]) >= 5 and record["final"]["val_rmse"] == record["history"][best]["val_rmse"]
    assert set(load_state(out / SAVED_WEIGHTS)) == set(load_state(out / "checkpoint" / "best.npz"))
    assert (out / "learning_curves.png").is_file()
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    artifacts |= {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert {"results.json", "learning_curves.png", "model/MLmodel", "model/artifacts"} <= artifacts


@pytest.mark.slow
def test_sigterm_ends_the_run_killed_with_the_best_model_and_results_and_resume_id_resumes_it(tmp_path):
    out, uri = tmp_path / "out", f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = start(tmp_path, *RUN, f"hydra.run.dir={out}")
    text = signal_after(proc, "epoch 4/16", signal.SIGTERM)
    assert proc.returncode == 143, text[-3000:]
    assert "Traceback" not in text and "ncae-run: interrupted (SIGTERM)" in text
    client, (run,) = runs_of(uri)
    check_killed_with_results(client, run, out)
    # resume=<run id> from another folder: the run's own comes from its ncae.output_dir tag
    again = ncae_run(tmp_path, *RUN, f"resume={run.info.run_id}", f"hydra.run.dir={tmp_path / 'elsewhere'}")
    assert again.returncode == 0, again.stderr[-3000:]
    _, (resumed,) = runs_of(uri)
    assert resumed.info.status == "FINISHED" and results(out)["status"] == "finished"
    assert {m.step for m in client.get_metric_history(run.info.run_id, "train_loss")} == set(range(17))


@pytest.mark.slow
def test_ctrl_c_ends_a_sweeps_parent_and_child_killed_and_the_rerun_resumes_the_sweep(tmp_path):
    sweep = ["-m", *RUN, "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = start(tmp_path, *sweep)
    text = signal_after(proc, "epoch 4/16", signal.SIGINT, count=2)  # in the second job
    assert proc.returncode == 130, text[-3000:]
    assert "Traceback" not in text and "ncae-run: interrupted (Ctrl-C)" in text
    client, runs = runs_of(uri)
    states = {r.info.run_name: r.info.status for r in runs}
    parent = next(r for r in runs if r.data.tags.get("ncae.sweep") == "true")
    assert states == {parent.info.run_name: "KILLED", "seed=0": "FINISHED", "seed=1": "KILLED"}
    check_killed_with_results(client, next(r for r in runs if r.info.run_name == "seed=1"), tmp_path / "sweep" / "1")

    again = ncae_run(tmp_path, *sweep)
    assert again.returncode == 0, again.stderr[-3000:]
    text = again.stderr + again.stdout
    assert "reopened: finished jobs are skipped" in text and "has finished already" in text
    _, runs = runs_of(uri)
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)
    (parent,) = [r for r in runs if r.data.tags.get("ncae.sweep") == "true"]
    assert parent.data.metrics["n_children"] == 2


@pytest.mark.slow
def test_an_exception_ends_the_run_failed_with_its_reason(tmp_path):
    out, uri = tmp_path / "out", f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = ncae_run(tmp_path, *RUN[:4], "model=biasedmf", "model.learning_rate=1000", "trainer.epochs=3",
                    f"hydra.run.dir={out}")
    assert proc.returncode == 2 and "training loss became nan" in proc.stderr
    _, (run,) = runs_of(uri)
    assert run.info.status == "FAILED"
    assert run.data.tags["ncae.error"] == "training loss became nan at epoch 1; lower model.learning_rate"
    assert results(out)["status"] == "failed" and results(out)["error"] == run.data.tags["ncae.error"]


def test_stale_running_runs_are_listed_and_marked_killed(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    client = mlflow.MlflowClient(uri)
    exp = client.create_experiment("ncae-explicit")
    gone = subprocess.Popen(["true"])
    gone.wait()
    now = int(time.time())
    here = {"ncae.host": socket.gethostname(), "ncae.attempt_start": str(now)}
    dead = client.create_run(exp, run_name="dead", tags={**here, "ncae.pid": str(gone.pid)}).info.run_id
    alive = client.create_run(exp, run_name="alive", tags={**here, "ncae.pid": str(os.getpid())}).info.run_id
    idle = client.create_run(exp, run_name="idle", start_time=(now - 7300) * 1000,
                             tags={"ncae.host": "elsewhere", "ncae.pid": "1", "ncae.heartbeat": str(now - 7200)})
    idle = idle.info.run_id
    client.set_terminated(client.create_run(exp, run_name="over").info.run_id, "FINISHED")

    def stale(*args):
        proc = subprocess.run([NCAE_RUNS, "stale", "--tracking-uri", uri, *args], cwd=tmp_path,
                              env=child_env(tmp_path), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    listed = stale()
    assert dead in listed and alive not in listed and idle not in listed and "1 other RUNNING run" in listed
    assert client.get_run(dead).info.status == "RUNNING"  # listing changes nothing
    marked = stale("--older-than", "60", "--mark-killed")
    assert dead in marked and idle in marked and "2 RUNNING run(s) marked KILLED" in marked
    status = {r: client.get_run(r).info.status for r in (dead, alive, idle)}
    assert status == {dead: "KILLED", alive: "RUNNING", idle: "KILLED"}
    assert "process" in client.get_run(dead).data.tags["ncae.marked_killed"]


@pytest.mark.slow
def test_a_dead_tracking_server_costs_no_result(tmp_path, start_mlflow_server):
    server = start_mlflow_server()
    out = tmp_path / "out"
    proc = start(tmp_path, *RUN, f"mlflow.tracking_uri={server.uri}", f"hydra.run.dir={out}")
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "epoch 2/16" in line:
            server.kill()  # the whole server, as a crashed host would
    assert proc.wait(timeout=300) == 0, "".join(lines)[-3000:]
    text = "".join(lines)
    warnings = [line for line in text.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "stopped answering (connection refused)" in warnings[0], warnings
    record = results(out)
    assert record["status"] == "finished" and len(record["history"]) == 17 and "test_rmse" in record["final"]
    assert (out / SAVED_WEIGHTS).is_file()
    # what reached the store: the run, still RUNNING, its first epochs
    store = mlflow.MlflowClient(server.store)
    (run,) = store.search_runs([e.experiment_id for e in store.search_experiments()])
    assert run.info.run_id == record["mlflow_run_id"] and run.info.status == "RUNNING"
    assert {m.step for m in store.get_metric_history(run.info.run_id, "val_rmse")} <= set(range(4))
