"""The console: progress bars on a terminal, plain lines elsewhere, the run's and the sweep's
summary tables, and what the MLflow UI shows (experiment description, saved view, run names)."""

import io
import json
import logging
import subprocess

import mlflow
import numpy as np

from conftest import NCAE_RUN, Scripted, child_env, synthetic
from ncae_exp.tracking.base import MemoryTracker
from ncae_exp.tracking.dashboard import (KIND_TAG, NOTE_TAG, PRIMARY_METRIC_TAG, VIEW_KEY, VIEW_TAG_PREFIX,
                                         describe_experiment, readable_run_name)
from ncae_exp.tracking.run_summary import job_line, run_link, summary_table, where_in_mlflow
from ncae_exp.tracking.sweep_summary import JobRow, collect_jobs, sort_jobs, sweep_table
from ncae_exp.training.progress import FitProgress
from ncae_exp.training.trainer import Trainer


def _fit(epochs=3):
    model = Scripted()
    return Trainer(epochs=epochs, select="val_rmse").fit(model, lambda m: {"val_rmse": 1.0 / (m.epoch + 1)},
                                                         MemoryTracker())


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_without_a_terminal_every_epoch_is_one_plain_line(caplog, monkeypatch):
    monkeypatch.delenv("NCAE_PROGRESS", raising=False)
    with caplog.at_level(logging.INFO, logger="ncae_exp.training.trainer"):
        _fit(3)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["0/3", "1/3", "2/3", "3/3"]
    assert not FitProgress("val_rmse", stream=io.StringIO()).enabled  # a pipe or a file: no bar


def test_on_a_terminal_a_bar_shows_the_metric_the_best_epoch_and_the_eta(monkeypatch):
    monkeypatch.delenv("NCAE_PROGRESS", raising=False)
    screen = FakeTerminal()
    with FitProgress("val_rmse", "min", stream=screen) as bar:
        assert bar.enabled
        bar.start(5, done=2)  # resumed after epoch 2: the bar starts there
        for epoch, value in ((3, 0.95), (4, 0.97)):
            bar.epoch(epoch, {"val_rmse": value}, 3, 0.95)
    text = screen.getvalue()
    assert "train:" in text and "4/5" in text and "2/5" in text
    assert "val_rmse 0.9700 · best 0.9500 @ 3" in text
    assert "<" in text.split("4/5", 1)[1]  # tqdm's [elapsed<remaining] estimate
    monkeypatch.setenv("NCAE_PROGRESS", "plain")
    assert not FitProgress("val_rmse", stream=FakeTerminal()).enabled


def test_the_run_summary_is_a_table_with_an_integer_epoch_the_folder_and_the_run_link(tmp_path):
    final = {"test_rmse": 0.91391, "val_rmse": 0.90442, "best_epoch": 57.0, "epochs_run": 100.0,
             "epoch_seconds": 0.812, "fit_seconds": 92.31, "checkpoint_seconds": 0.07}
    uri = "http://127.0.0.1:5000"
    assert run_link(uri, "3", "abc") == "http://127.0.0.1:5000/#/experiments/3/runs/abc"
    assert run_link("https://me:secret@mlflow.example/", "3", "abc") == "https://me:***@mlflow.example/#/experiments/3/runs/abc"
    text = summary_table("ncae on ml-100k (explicit) finished:", final, tmp_path, "val_rmse", "min",
                         where_in_mlflow(uri, "3", "abc"))
    lines = text.splitlines()
    assert lines[0] == "ncae on ml-100k (explicit) finished:"
    assert "selected epoch  57 of 100, by val_rmse (minimised)" in text and "57.0000" not in text
    assert any(line.split() == ["rmse", "0.9044", "0.9139"] for line in lines)
    assert f"output folder   {tmp_path}" in text
    assert "MLflow run      http://127.0.0.1:5000/#/experiments/3/runs/abc" in text
    assert all(len(line) < 160 for line in lines)
    # a local store: the run id and how to open the UI
    rows = dict(where_in_mlflow(f"sqlite:///{tmp_path}/m.db", "1", "abc"))
    assert rows["MLflow run"].startswith("abc in sqlite:///") and "/#/experiments/1/runs/abc" in rows["open it"]


def test_a_retrained_run_reports_means_and_stds():
    final = {"test_rmse": 0.9226, "test_rmse_std": 0.0109, "val_rmse": 0.9044, "repeats": 5.0,
             "retrain_epochs": 57.0, "best_epoch": 57.0, "epochs_run": 100.0, "compare_test_rmse": 0.9058,
             "compare_test_rmse_std": 0.0062, "ttest_p_test_rmse": 0.004}
    text = summary_table("t", final, "out", "val_rmse", "min")
    assert "5 seeds × 57 epochs" in text
    row = next(line for line in text.splitlines() if line.strip().startswith("rmse"))
    assert "0.9226 ± 0.0109" in row and "0.9058 ± 0.0062" in row and "0.004" in row
    assert job_line("job 2/3 (#1 l2=0.1)", final, "val_rmse") == (
        "job 2/3 (#1 l2=0.1) finished: best epoch 57, val_rmse 0.9044, test_rmse 0.9226 ± 0.0109")


def _row(num, value=None, status="finished", key="val_rmse", error=None):
    final = {} if value is None else {key: value, "best_epoch": 4.0}
    return JobRow(num, f"x={num}", status, final, error)


def test_the_sweep_table_puts_the_best_job_first_by_the_protocols_direction():
    rows = [_row(0, 0.93), _row(1, 0.91), _row(2, status="failed", error="model.dropout must be in [0, 1)"),
            _row(3, 0.92)]
    assert [r.num for r in sort_jobs(rows, "val_rmse", "min")] == [1, 3, 0, 2]
    hr = [_row(0, 0.50, key="val_hr_at_100"), _row(1, 0.55, key="val_hr_at_100"),
          _row(2, 0.60, status="killed", key="val_hr_at_100")]  # killed: its value is not a result
    assert [r.num for r in sort_jobs(hr, "val_hr_at_100", "max")] == [1, 0, 2]
    text = sweep_table(rows, "val_rmse", "min", ["parent run: http://h/#/experiments/1/runs/p"])
    lines = text.splitlines()
    assert lines[0] == "sweep summary: 4 jobs (3 finished, 1 failed), best first by val_rmse (minimised)"
    assert lines[1].split()[:3] == ["job", "overrides", "val_rmse"]
    assert lines[2].split()[:3] == ["#1", "x=1", "0.9100"] and lines[2].split()[3] == "4"
    assert lines[5].split()[:2] == ["#2", "x=2"] and "failed: model.dropout must be in [0, 1)" in lines[5]
    assert lines[-1] == "  parent run: http://h/#/experiments/1/runs/p"


def test_the_sweep_table_reads_the_jobs_from_the_sweep_folder(tmp_path):
    for num, overrides, record in (
        (0, ["model.l2=0.1", "seed=0"], {"status": "finished", "final": {"val_rmse": 0.95, "test_rmse": 0.96}}),
        (1, ["model.l2=0.01", "seed=0"], {"status": "finished", "final": {"val_rmse": 0.90, "test_rmse": 0.97}}),
        (2, ["model.l2=bad", "seed=0"], None),
    ):
        (tmp_path / str(num) / ".hydra").mkdir(parents=True)
        (tmp_path / str(num) / ".hydra" / "overrides.yaml").write_text("\n".join(f"- {o}" for o in overrides))
        if record:
            (tmp_path / str(num) / "results.json").write_text(json.dumps(record))
    (tmp_path / "failed_jobs").mkdir()
    (tmp_path / "failed_jobs" / "2.json").write_text(json.dumps({"num": 2, "job": "#2 model.l2=bad",
                                                                 "error": "model.l2 must be a number"}))
    rows = collect_jobs(tmp_path, ["model.l2"])
    assert [(r.num, r.name, r.status) for r in sort_jobs(rows, "val_rmse", "min")] == [
        (1, "model.l2=0.01", "finished"), (0, "model.l2=0.1", "finished"), (2, "model.l2=bad", "failed")]


def test_the_experiment_gets_a_description_a_saved_view_and_keeps_a_hand_edited_note(tmp_path):
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.create_experiment("ncae-implicit")
    describe_experiment(client, exp, "implicit", "val_hr_at_100", "max", [50, 100])
    tags = client.get_experiment(exp).tags
    note = tags[NOTE_TAG]
    assert "protocol `implicit`" in note and "HR@M" in note and "validation only" in note
    assert "`val_hr_at_100` (maximised)" in note and f"viewStateShareKey={VIEW_KEY}" in note
    view = json.loads(tags[VIEW_TAG_PREFIX + VIEW_KEY])
    state = json.loads(view["state"])
    assert view["name"] and state["selectedColumns"][0] == "metrics.`val_hr_at_100`"
    assert state["orderByKey"] == "metrics.`val_hr_at_100`" and state["orderByAsc"] is False
    assert tags[KIND_TAG] == "custom_model_development" and tags[PRIMARY_METRIC_TAG] == "val_hr_at_100"
    client.set_experiment_tag(exp, NOTE_TAG, "my own notes")
    describe_experiment(client, exp, "implicit", "val_hr_at_100", "max", [50, 100])
    assert client.get_experiment(exp).tags[NOTE_TAG] == "my own notes"


def test_run_names_say_model_dataset_and_overrides():
    assert readable_run_name("ncae", "ml-100k", ["model.hidden=[500]", "model.l2=0.01", "dataset=ml-100k",
                                                 "hydra.run.dir=x", "mlflow.tracking_uri=y", "seed=3"]) == (
        "ncae ml-100k hidden=[500] l2=0.01 seed=3")
    assert readable_run_name("ncae", "lastfm", []) == "ncae lastfm"
    # a leaf shared by two keys keeps its group
    assert readable_run_name("ncae", "x", ["model.l2=1", "pretrain.l2=2"]) == "ncae x model.l2=1 pretrain.l2=2"


def test_ncae_run_without_a_terminal_prints_epoch_lines_and_the_summary_table(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([NCAE_RUN, *synthetic(), "model.hidden=[8]", "trainer.epochs=2", "mlflow.enabled=false",
                           f"hydra.run.dir={out}"], cwd=tmp_path, env=child_env(tmp_path), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout + proc.stderr
    assert "epoch 2/2" in text and "\r" not in text  # plain lines, no bar
    assert "ncae on synthetic (explicit) finished:" in text
    assert "selected epoch  " in text and f"output folder   {out}" in text
    assert "best_epoch=" not in text and ".0000 of" not in text


def test_ranking_metrics_are_a_grid_of_cutoffs():
    final = {f"{s}_{m}_at_{c}": 0.1 * c / 50 for s in ("val", "test") for m in ("hr", "ndcg") for c in (50, 100)}
    lines = summary_table("t", {**final, "best_epoch": 3.0}, "out", "val_hr_at_100", "max").splitlines()
    assert lines[2].split() == ["metric", "@50", "@100"]
    assert [line.split()[:2] for line in lines[3:7]] == [["val", "hr"], ["val", "ndcg"], ["test", "hr"],
                                                        ["test", "ndcg"]]
    assert lines[5].split()[2:] == ["0.1000", "0.2000"]
